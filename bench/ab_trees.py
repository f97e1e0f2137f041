"""One preset's training iteration from two source trees (before / after a change) and PyTorch,
interleaved: one worker process per variant, driven round-robin one iteration at a time, so load from
other processes hits all alike (the in-process harness, bench/kernel_iteration.py, cannot hold two versions
of ms_gan at once).

    python bench/ab_trees.py --before /path/to/old/tree [--after .] [--preset mlp_mnist] [--threads 1]
                             [--batch 64] [--repeats 60]

Per variant: median and min wall ms of the iteration as bench/train_throughput.py times it (host noise,
one fused call, one host copy), the mean process CPU ms per iteration, and PyTorch's median / its median.
Workers' environment is this process's (MS_GAN_KERNELS etc.); each imports ms_gan from its own tree. With
``--threads 1`` all three run on one core (``--cpu``), as a one-thread ``ms-gan train`` does.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r'''
import os, sys, time
tree, bench, kind, preset, batch, threads = sys.argv[1:7]
sys.path.insert(0, tree)
sys.path.insert(1, bench)
from bench.train_throughput import mindspore_iteration, torch_iteration
it = (torch_iteration(preset, int(batch), int(threads))[0] if kind == "torch"
      else mindspore_iteration(preset, int(batch), int(threads), "graph")[0])
for _ in range(3):
    it()
print("ready", flush=True)
for _ in sys.stdin:
    t0, c0 = time.perf_counter(), time.process_time()
    it()
    print(time.perf_counter() - t0, time.process_time() - c0, flush=True)
'''


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=ROOT)
    ap.add_argument("--preset", default="mlp_mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--cpu", type=int, default=None,
                    help="with --threads 1: the one core every worker runs on (default: the last usable core)")
    args = ap.parse_args(argv)
    pin = None
    if args.threads == 1:
        # Same core for all: ms_gan pins a one-thread run inside its affinity, PyTorch would otherwise roam.
        pin = {args.cpu if args.cpu is not None else sorted(os.sched_getaffinity(0))[-1]}
    variants = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after), "torch": ROOT}
    procs = {}
    for name, tree in variants.items():
        kind = "torch" if name == "torch" else "ms"
        # The worker's cwd is its tree, so `import ms_gan` and `bench` resolve there; bench/ from ROOT as a
        # fallback for a tree without this harness's helpers.
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", WORKER, tree, ROOT, kind, args.preset, str(args.batch), str(args.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tree,
            env=dict(os.environ, PYTHONPATH=tree), preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None)
    for name, p in procs.items():
        line = p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"worker {name} failed to start")
    wall = {k: [] for k in procs}
    cpu = {k: [] for k in procs}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for name, p in procs.items():
            p.stdin.write("go\n")
            p.stdin.flush()
            w, c = map(float, p.stdout.readline().split())
            wall[name].append(w)
            cpu[name].append(c)
    load.append(os.getloadavg()[0])
    for p in procs.values():
        p.stdin.close()
        p.wait()
    torch_med = statistics.median(wall["torch"])
    result = {"preset": args.preset, "threads": args.threads, "batch": args.batch, "repeats": args.repeats,
              "cpu": sorted(pin) if pin else None,
              "loadavg_1min_start_end": load, "variants": {}}
    for name in procs:
        med = statistics.median(wall[name])
        result["variants"][name] = {"median_ms": round(1000 * med, 2), "min_ms": round(1000 * min(wall[name]), 2),
                                    "mean_process_cpu_ms": round(1000 * statistics.mean(cpu[name]), 2),
                                    "vs_torch": round(torch_med / med, 3)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
