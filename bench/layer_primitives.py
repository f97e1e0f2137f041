"""Where a conv layer's time goes: oneDNN's primitives (and reorders) vs everything around them.

    python bench/layer_primitives.py [--preset dcgan64] [--batch 64] [--repeats 10] [--threads N]

Each big convolution layer of the preset (>= 1 GFLOP forward) does forward+backward of sum(layer(x) * dy),
the same work as ``bench/kernel_layers.py``'s fwd+bwd column: once in a worker process on the ms_gan kernels
(one compiled graph per layer, under the trainer's quiet waiter) and once in a worker on PyTorch eager, each
with ``ONEDNN_VERBOSE=1``. Per call, the oneDNN time is the sum of the primitives' and reorders' own times that
oneDNN prints; the rest of the wall time is the framework's (launching ops, the product, the sum, their
gradients, allocation). The verbose printing itself costs both sides a little. Medians after two warm-up calls.
Same-kernel evidence for bench/NOTES.md attempts 65 and 67: both frameworks run the same oneDNN
implementations, so a gap per layer is outside the convolution.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MARK = "MS_GAN_LAYER_CALL"


def _worker(framework, preset, batch, repeats, threads):
    """Runs the layers, printing one MARK line (layer index, wall ms) after each call."""
    import numpy as np

    from bench.kernel_layers import _flops, _ms_layer, _torch_layer, _weighted_sum
    from bench.profile_layers import capture_layers

    layers = [L for L in capture_layers(preset, batch) if L["kind"] != "Dense"]
    import mindspore as ms
    import torch

    from ms_gan import kernels

    torch.set_num_threads(threads)
    kernels.set_threads(threads)
    for i, L in enumerate(layers):
        rng = np.random.default_rng(i)
        x_np = rng.standard_normal(L["input"]).astype(np.float32)
        if framework == "ms_gan":
            x = ms.Tensor(x_np)
            cell = _ms_layer(L, i, "custom_quiet")
            y_shape = tuple(cell(x).shape)
            if _flops(L, y_shape) < 1e9:
                continue
            dy = ms.Tensor(rng.standard_normal(y_shape).astype(np.float32))
            grad = kernels.quiet_waiter(ms.jit(ms.value_and_grad(_weighted_sum(cell), 0, cell.trainable_params())))

            def call(grad=grad, x=x, dy=dy):
                grad(x, dy)[0].asnumpy()
        else:
            mod = _torch_layer(L, x_np, threads)
            tx = torch.tensor(x_np, requires_grad=True)
            with torch.no_grad():
                y_shape = tuple(mod(tx).shape)
            if _flops(L, y_shape) < 1e9:
                continue
            tdy = torch.tensor(rng.standard_normal(y_shape).astype(np.float32))

            def call(mod=mod, tx=tx, tdy=tdy):
                tx.grad = None
                mod.zero_grad(set_to_none=True)
                (mod(tx) * tdy).sum().backward()
        for _ in range(repeats + 2):
            t0 = time.perf_counter()
            call()
            print(f"{MARK} {i} {L['net']}:{L['name']} {1000 * (time.perf_counter() - t0):.3f}", flush=True)


def _parse(stdout):
    """{layer: [(wall ms, oneDNN ms)]} from a worker's stdout."""
    calls, onednn = {}, 0.0
    for line in stdout.splitlines():
        if line.startswith("onednn_verbose") and ",exec," in line:
            onednn += float(line.rsplit(",", 1)[1])
        elif line.startswith(MARK):
            _, index, name, wall = line.split()
            calls.setdefault((int(index), name), []).append((float(wall), onednn))
            onednn = 0.0
    return calls


def main(argv=None):
    from bench.kernel_layers import parser

    ap = parser()
    ap.set_defaults(repeats=10)
    ap.add_argument("--worker", help=argparse.SUPPRESS)   # internal: one framework's run
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.preset, args.batch, args.repeats, args.threads)
        return 0
    env = dict(os.environ, ONEDNN_VERBOSE="1", MS_GAN_KERNELS="custom")
    results = {}
    for framework in ("ms_gan", "torch"):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--preset", args.preset,
               "--batch", str(args.batch), "--repeats", str(args.repeats), "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        results[framework] = _parse(done.stdout)
    rows = []
    for key in sorted(results["ms_gan"]):
        row = {"layer": key[1]}
        for framework in ("ms_gan", "torch"):
            calls = results[framework].get(key, [])[2:]
            row[f"{framework}_wall_ms"] = statistics.median(w for w, _ in calls)
            row[f"{framework}_onednn_ms"] = statistics.median(o for _, o in calls)
        rows.append(row)
    report = {"preset": args.preset, "batch": args.batch, "threads": args.threads, "repeats": args.repeats,
              "loadavg": os.getloadavg(), "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"layer_primitives_{args.preset}.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(markdown(report))
    return 0


def markdown(report):
    lines = [f"{report['preset']} batch {report['batch']}, {report['threads']} threads, forward+backward per call, "
             f"medians of {report['repeats']}, load average {report['loadavg'][0]:.1f}; ms (ONEDNN_VERBOSE on)", "",
             "| layer | ms_gan wall | ms_gan oneDNN | ms_gan outside | PyTorch wall | PyTorch oneDNN | PyTorch outside "
             "| wall ratio (PyTorch / ms_gan) | oneDNN ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        a, b = r["ms_gan_wall_ms"], r["ms_gan_onednn_ms"]
        c, d = r["torch_wall_ms"], r["torch_onednn_ms"]
        lines.append(f"| {r['layer']} | {a:.1f} | {b:.1f} | {a - b:.1f} | {c:.1f} | {d:.1f} | {c - d:.1f} "
                     f"| {c / a:.2f}x | {d / b:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
