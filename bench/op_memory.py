"""Memory and time that single MindSpore CPU ops cost inside a compiled (graph-mode) function.

    python bench/op_memory.py [--ops all|NAME,...] [--out bench/results]

Each case runs in its own subprocess: a jit-compiled function chains N copies of one op on a
(64, 64, 32, 32) float32 tensor (16 MB; D's first activation in dcgan64 at batch 64), forward
only and forward+backward (``mindspore.grad``). Reported: RSS growth over the first call per
op instance (what the compiled graph keeps or peaks at, beyond the tensors themselves), and the
median time per op instance. Found with heaptrack on sagan64 (bench/NOTES.md, attempts 14-15):
MindSpore 2.10's ``Div`` kernel and the gradient of ``Maximum`` (which ``nn.LeakyReLU`` uses)
hold several tensor-sized buffers per graph node for the life of the graph; ``ms_gan`` uses
``RealDiv`` (``workarounds.divide``) and ``workarounds.LeakyReLU`` instead.

Writes ``OUT/op_memory.json`` and ``OUT/op_memory.md``.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SHAPE = (64, 64, 32, 32)
CHAIN = 5
CASES = {
    "div (x / s)": "div",
    "RealDiv (workarounds.divide)": "realdiv",
    "mul (x * s)": "mul",
    "nn.LeakyReLU(0.2)": "nn_lrelu",
    "workarounds.LeakyReLU(0.2)": "lrelu",
    "relu(x) - 0.2 relu(-x)": "relu_pair",
    "maximum(x, s)": "maximum",
    "x + mean over batch (broadcast add)": "bcast_add",
    "exp": "exp",
}


def _run_case(kind, which, repeats):
    """Executed in the subprocess: RSS growth and time of CHAIN ops of one kind, forward or forward+backward."""
    import time

    import numpy as np

    import ms_gan  # noqa: F401  (environment before MindSpore)
    import mindspore as ms
    from mindspore import nn, ops

    from ms_gan import device
    from ms_gan.nn import workarounds

    device.setup("CPU", mode="graph", threads=os.cpu_count() or 1)

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    nn_lrelu, ms_lrelu = nn.LeakyReLU(0.2), workarounds.LeakyReLU(0.2)
    scale = ms.Tensor(np.float32(1.01))

    def one(a):
        if kind == "div":
            return a / scale
        if kind == "realdiv":
            return workarounds.divide(a, scale)
        if kind == "mul":
            return a * scale
        if kind == "nn_lrelu":
            return nn_lrelu(a)
        if kind == "lrelu":
            return ms_lrelu(a)
        if kind == "relu_pair":
            return ops.relu(a) - 0.2 * ops.relu(-a)
        if kind == "maximum":
            return ops.maximum(a, scale)
        if kind == "bcast_add":
            return a + ops.mean(a, 0, keep_dims=True)
        return ops.exp(a * 0.1)

    def chain(a):
        for _ in range(CHAIN):
            a = one(a) * 1.01
        return (a * a).sum()

    x = ms.Tensor(np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32))
    fn = ms.jit(chain) if which == "forward" else ms.jit(ms.grad(chain))
    before = rss_mb()
    fn(x).asnumpy()
    grown = rss_mb() - before
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x).asnumpy()
        times.append(time.perf_counter() - t)
    return {"rss_mb_per_op": grown / CHAIN, "ms_per_op": float(np.median(times)) * 1e3 / CHAIN}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", default="all", help="'all' or comma-separated case keys: " + ",".join(CASES.values()))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--which", default="forward", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_run_case(args.worker, args.which, args.repeats)))
        return 0
    wanted = list(CASES.values()) if args.ops == "all" else args.ops.split(",")
    unknown = [k for k in wanted if k not in CASES.values()]
    if unknown:
        print(f"error: unknown op case(s) {unknown}; choose from {list(CASES.values())}", file=sys.stderr)
        return 2
    rows = []
    for label, key in CASES.items():
        if key not in wanted:
            continue
        data = {}
        for which in ("forward", "forward+backward"):
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", key, "--which", which,
                                   "--repeats", str(args.repeats)], capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(f"{label} ({which}): failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                break
            data[which] = json.loads(proc.stdout.strip().splitlines()[-1])
        if len(data) < 2:
            continue
        rows.append({"op": label, "key": key, **data})
        print(label, json.dumps(data), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "op_memory.json"), "w") as f:
        json.dump({"shape": SHAPE, "chain": CHAIN, "rows": rows}, f, indent=1)
    lines = [f"Per op instance in a jit-compiled chain of {CHAIN} on a {'x'.join(map(str, SHAPE))} float32 tensor "
             f"(16 MB); RSS growth over the first call (each column a fresh process), median time. "
             f"`python bench/op_memory.py`", "",
             "| op | forward MB | forward ms | forward+backward MB | forward+backward ms |", "|---|---|---|---|---|"]
    for r in rows:
        f, b = r["forward"], r["forward+backward"]
        lines.append(f"| {r['op']} | {f['rss_mb_per_op']:.1f} | {f['ms_per_op']:.1f} | "
                     f"{b['rss_mb_per_op']:.1f} | {b['ms_per_op']:.1f} |")
    with open(os.path.join(args.out, "op_memory.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
