"""Generator inference images/s: the Cell (PyNative and jit-compiled) against its exported MindIR.

    python bench/inference_throughput.py [--preset all|NAME,...] [--batch 64] [--repeats 5] [--out bench/results]

For each preset a checkpoint is made by a 1-step training run (``ms-gan train --max-steps 1``),
exported with ``ms_gan.export.export(..., fmt="MINDIR")`` and loaded with
``ms_gan.generate.load_mindir``. Each preset runs in its own subprocess; times are medians of
``--repeats`` calls of one batch after warm-up, including the host copy of the images.
The exported graph is checked against the Cell (max |difference|). Writes
``OUT/inference_throughput.{json,md}``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.timing import timed  # noqa: E402


def worker(preset_name, batch, repeats, threads, tmp):
    run = os.path.join(tmp, "run")
    subprocess.run([sys.executable, "-m", "ms_gan", "train", "--preset", preset_name, "--max-steps", "1",
                    "--batch-size", "8", "--out", run, "--no-progress", "--threads", str(threads)],
                   check=True, capture_output=True, cwd=ROOT)
    import numpy as np

    import ms_gan  # noqa: F401
    import mindspore as ms

    from ms_gan import device
    from ms_gan.export import export
    from ms_gan.generate import load_generator, load_mindir, noise
    from ms_gan.models import primary

    device.setup("CPU", mode="pynative", threads=threads)
    t0 = time.perf_counter()
    info = export(run, fmt="MINDIR", out=os.path.join(tmp, "g.mindir"))
    export_s = time.perf_counter() - t0
    preset, G, _ = load_generator(run)
    mindir, _ = load_mindir(info["path"])
    z = ms.Tensor(noise(preset, batch, 0))

    def cell():
        return primary(G(z)).asnumpy()

    def forward(x):
        return primary(G(x))
    jitted = ms.jit(forward)

    def cell_jit():
        return jitted(z).asnumpy()

    def graph():
        return mindir(z).asnumpy()

    diff = float(np.max(np.abs(cell() - graph())))
    out = {"export_s": export_s, "max_abs_diff": diff, "mindir_bytes": os.path.getsize(info["path"])}
    for name, fn in (("cell_pynative", cell), ("cell_jit", cell_jit), ("mindir", graph)):
        first, med = timed(fn, 2, repeats)
        out[name] = {"first_call_s": first, "median_s": med, "images_per_s": batch / med}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="all")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        with tempfile.TemporaryDirectory() as tmp:
            print("RESULT " + json.dumps(worker(args.preset, args.batch, args.repeats, args.threads, tmp)))
        return 0
    from ms_gan import presets

    # "all": the article presets (a conditional one also needs class inputs, which these loops do not make)
    names = ([n for n in presets.names() if not presets.get(n).conditional] if args.preset == "all"
             else args.preset.split(","))
    results = {}
    for name in names:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--preset", name,
                               "--batch", str(args.batch), "--repeats", str(args.repeats),
                               "--threads", str(args.threads)], capture_output=True, text=True, cwd=ROOT)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        results[name] = json.loads(lines[0][7:]) if lines else {
            "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}
        print(name, json.dumps(results[name]), flush=True)
    rows = [f"Generator inference, batch {args.batch}, {args.threads} threads (images/s, median of {args.repeats}).",
            "", "| preset | Cell PyNative | Cell jit | MindIR | MindIR / Cell PyNative | MindIR / Cell jit | "
            "max abs diff |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {name} | error: {r['error']} | | | | | |")
            continue
        a, b, c = (r[k]["images_per_s"] for k in ("cell_pynative", "cell_jit", "mindir"))
        rows.append(f"| {name} | {a:.0f} | {b:.0f} | {c:.0f} | {c / a:.2f}x | {c / b:.2f}x | {r['max_abs_diff']:.1e} |")
    table = "\n".join(rows) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "inference_throughput.json"), "w") as f:
        json.dump({"batch": args.batch, "threads": args.threads, "results": results}, f, indent=2)
    with open(os.path.join(args.out, "inference_throughput.md"), "w") as f:
        f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
