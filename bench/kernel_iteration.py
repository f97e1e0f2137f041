"""One preset's training iteration with ms_gan.kernels on and off and PyTorch, interleaved in one process;
plus what MindSpore's waiting main thread costs.

    python bench/kernel_iteration.py [--preset dcgan64] [--batch 64] [--repeats 7] [--threads 2]
                                     [--kernel-threads N] [--main-idle] [--variants on,off,torch]

Variants: ``on`` (kernels), ``off`` (MindSpore's convolutions), ``torch``, and ``on``'s graph run
differently: ``on-busy`` (without ``kernels.quiet_waiter``: the main thread keeps normal scheduling while it
waits), ``on-idle`` (SCHED_IDLE set here around the call, the attempt before quiet_waiter) and ``on-t1``
(the kernels' team of 1 thread).

Iterations run round-robin (on, off, torch, on, ...), so load from other processes hits all alike; medians.
Per MindSpore variant also: the Python main thread's CPU time per iteration (``time.thread_time``; MindSpore
busy-waits in ``AsyncRQueue::Wait`` while a gradient graph runs, bench/NOTES.md attempt 22) and the whole
process's CPU time. ``--kernel-threads`` sizes the kernels' OpenMP team apart from MindSpore's threads;
``--main-idle`` runs the main thread under SCHED_IDLE during the timed calls (Linux), so its spinning only
gets CPU nobody else wants.
"""
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.kernel_layers import parser  # noqa: E402
from bench.train_throughput import mindspore_iteration, torch_iteration  # noqa: E402


def _set_main_idle(on):
    """SCHED_IDLE (on) or SCHED_OTHER for the calling thread only (Linux: pid 0 = this thread)."""
    policy = os.SCHED_IDLE if on else os.SCHED_OTHER
    os.sched_setscheduler(0, policy, os.sched_param(0))


def main(argv=None):
    ap = parser()
    ap.add_argument("--kernel-threads", type=int, default=None)
    ap.add_argument("--main-idle", action="store_true")
    ap.add_argument("--variants", default="on,off,torch")
    args = ap.parse_args(argv)

    variants = args.variants.split(",")
    fns = {}
    for v in variants:
        if v == "torch":
            fns[v] = torch_iteration(args.preset, args.batch, args.threads)[0]
        elif v in ("on-idle", "on-t1", "on-busy"):
            continue   # below, from "on"'s compiled step
        else:
            os.environ["MS_GAN_KERNELS"] = "custom" if v == "on" else "native"
            fns[v] = mindspore_iteration(args.preset, args.batch, args.threads, "graph")[0]
            # Compile now: settings that kernels.configure makes for this mode (MS_DEV_SIDE_EFFECT_LOAD_ELIM)
            # are read when the graph compiles, and the next variant's setup changes them.
            fns[v]()
    if args.kernel_threads:
        from ms_gan import kernels

        kernels.set_threads(args.kernel_threads)
    from ms_gan import kernels

    threads = args.kernel_threads or args.threads
    if "on-t1" in variants:
        def one_thread(fn=fns["on"]):
            kernels.set_threads(1)
            try:
                fn()
            finally:
                kernels.set_threads(threads)
        fns["on-t1"] = one_thread
    if "on-busy" in variants:
        def busy(fn=fns["on"]):
            kernels.QUIET_WAIT["on"] = False
            try:
                fn()
            finally:
                kernels.QUIET_WAIT["on"] = True
        fns["on-busy"] = busy
    if "on-idle" in variants:
        fns["on-idle"] = fns["on"]
    for fn in fns.values():   # compile and warm up
        fn()
        fn()
    wall = {v: [] for v in fns}
    main_cpu = {v: [] for v in fns}
    proc_cpu = {v: [] for v in fns}
    for _ in range(args.repeats):
        for v, fn in fns.items():
            idle = (args.main_idle and v != "torch") or v == "on-idle"
            if idle:
                _set_main_idle(True)
            t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
            fn()
            t1, c1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
            if idle:
                _set_main_idle(False)
            wall[v].append(t1 - t0)
            main_cpu[v].append(c1 - c0)
            proc_cpu[v].append(p1 - p0)
    result = {"preset": args.preset, "batch": args.batch, "threads": args.threads,
              "kernel_threads": args.kernel_threads, "main_idle": args.main_idle,
              "isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "loadavg": os.getloadavg(), "variants": {}}
    for v in fns:
        med = statistics.median(wall[v])
        result["variants"][v] = {"median_ms": 1000 * med, "min_ms": 1000 * min(wall[v]),
                                 "main_thread_cpu_ms": 1000 * statistics.median(main_cpu[v]),
                                 "process_cpu_ms": 1000 * statistics.median(proc_cpu[v])}
    if "torch" in fns:
        for v in fns:
            result["variants"][v]["vs_torch"] = result["variants"]["torch"]["median_ms"] / result["variants"][v]["median_ms"]
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
