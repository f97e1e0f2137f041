"""Per-layer GFLOP/s of a preset's convolutions: MindSpore's own ops vs ms_gan.kernels vs PyTorch.

    python bench/kernel_layers.py [--preset dcgan64] [--batch 64] [--repeats 7] [--threads N]

All three run in ONE process and are timed interleaved (native, custom, torch, native, ...), so load
from other processes hits them alike. ``fwd`` = y = layer(x); ``fwd+bwd`` = y and the gradients of
sum(y * dy) for x and the weight, each in one ``mindspore.jit`` graph (value_and_grad) per layer.
FLOPs: 2 * N * O * C * KH * KW * OH * OW per pass (the transposed conv's counted on its input side),
3 passes for fwd+bwd. Medians; prints a markdown table and writes OUT/kernel_layers_<preset>.json.
"""
import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.profile_layers import capture_layers, lambda_free_forward  # noqa: E402
from bench.timing import torch_layer_calls  # noqa: E402


def _flops(L, y_shape):
    w = L["weight"]
    if L["kind"] == "Conv2d":   # output side: N * O * OH * OW outputs, C * KH * KW products each
        return 2.0 * y_shape[0] * w[0] * w[1] * w[2] * w[3] * y_shape[2] * y_shape[3]
    x = L["input"]              # transposed: each input pixel scatters Cout * KH * KW products per Cin
    return 2.0 * x[0] * x[1] * x[2] * x[3] * w[1] * w[2] * w[3]


def _ms_layer(L, i, variant):
    from ms_gan.nn import workarounds

    mode = "custom" if variant == "custom_quiet" else variant
    os.environ["MS_GAN_KERNELS"] = mode   # read when the layer is built
    cls = workarounds.Conv2d if L["kind"] == "Conv2d" else workarounds.Conv2dTranspose
    w = L["weight"]
    cin, cout = (w[1], w[0]) if L["kind"] == "Conv2d" else (w[0], w[1])
    kw = {"pad_mode": L["pad_mode"]}
    if L["pad_mode"] == "pad":
        kw["padding"] = tuple(L["padding"]) if isinstance(L["padding"], (list, tuple)) else L["padding"]
    cell = cls(cin, cout, w[2], stride=tuple(L["stride"]), has_bias=L["bias"], **kw)
    for prm in cell.trainable_params():
        prm.name = f"{variant}{i}.{prm.name}"
    cell.set_train(True)
    return cell


def _weighted_sum(cell):
    """sum(cell(x) * dy) as a named closure (jit parses neither lambdas nor default arguments)."""
    def loss(x, dy):
        return (cell(x) * dy).sum()
    return loss


def _torch_layer(L, x_np, threads):
    import torch

    w = L["weight"]
    pad = L["padding"] if L["pad_mode"] == "pad" else 0
    if isinstance(pad, (list, tuple)):
        pad = pad[0]
    if L["kind"] == "Conv2d":
        if L["pad_mode"] == "same":
            k, s, h = w[2], L["stride"][0], L["input"][2]
            pad = max((-(-h // s) - 1) * s + k - h, 0) // 2
        mod = torch.nn.Conv2d(w[1], w[0], w[2], stride=tuple(L["stride"]), padding=pad, bias=L["bias"])
    else:
        mod = torch.nn.ConvTranspose2d(w[0], w[1], w[2], stride=tuple(L["stride"]), padding=pad, bias=L["bias"])
    return mod


def parser():
    """The arguments the kernel benchmarks share: --preset, --batch, --repeats, --threads."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="dcgan64")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    return ap


def main(argv=None):
    ap = parser()
    ap.add_argument("--variants", default="native,custom,custom_quiet",
                    help="MindSpore variants beside torch (drop native without the AVX2 cap: reference kernel); "
                         "custom_quiet: the kernels with the trainer's quiet_waiter around each compiled call")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args(argv)

    import numpy as np

    layers = [L for L in capture_layers(args.preset, args.batch) if L["kind"] != "Dense"]
    import mindspore as ms
    import torch

    from ms_gan import device, kernels

    torch.set_num_threads(args.threads)
    device.current()["threads"]   # capture_layers set the device up (PyNative; jit below compiles)
    kernels.set_threads(args.threads)
    from mindspore import device_context   # noqa: F401
    rows = []
    for i, L in enumerate(layers):
        rng = np.random.default_rng(i)
        x_np = rng.standard_normal(L["input"]).astype(np.float32)
        x = ms.Tensor(x_np)
        fns = {}
        y_shape = None
        for variant in args.variants.split(","):
            # "custom_quiet": the kernels with the compiled calls wrapped as the trainer wraps its steps
            # (kernels.quiet_waiter: MindSpore's waiting main thread off the cores the kernels use)
            cell = _ms_layer(L, i, variant)
            y = cell(x)
            y_shape = y.shape
            dy = ms.Tensor(rng.standard_normal(y.shape).astype(np.float32))

            loss = _weighted_sum(cell)
            fwd = ms.jit(lambda_free_forward(cell))
            grad = ms.jit(ms.value_and_grad(loss, 0, cell.trainable_params()))
            if variant == "custom_quiet":
                fwd, grad = kernels.quiet_waiter(fwd), kernels.quiet_waiter(grad)
            fns[variant] = (lambda fwd=fwd: fwd(x).asnumpy(), lambda grad=grad, dy=dy: grad(x, dy)[0].asnumpy())
        mod = _torch_layer(L, x_np, args.threads)
        tx = torch.tensor(x_np, requires_grad=True)
        tdy = torch.tensor(rng.standard_normal(tuple(y_shape)).astype(np.float32))
        fns["torch"] = torch_layer_calls(mod, tx, tdy)
        times = {(m, p): [] for m in fns for p in (0, 1)}
        for rep in range(args.repeats + 2):
            for m, pair in fns.items():
                for p, fn in enumerate(pair):
                    t0 = time.perf_counter()
                    fn()
                    if rep >= 2:   # two warm-up rounds (compile, primitive creation)
                        times[(m, p)].append(time.perf_counter() - t0)
        flops = _flops(L, y_shape)
        row = {"net": L["net"], "name": L["name"], "kind": L["kind"], "input": L["input"], "weight": L["weight"],
               "gflop_fwd": flops / 1e9}
        for (m, p), ts in times.items():
            med = statistics.median(ts)
            row[f"{m}_{'fwd' if p == 0 else 'fwdbwd'}_ms"] = 1000 * med
            row[f"{m}_{'fwd' if p == 0 else 'fwdbwd'}_gflops"] = flops * (1 if p == 0 else 3) / med / 1e9
        rows.append(row)
        print(json.dumps(row), flush=True)
    load = os.getloadavg()
    report = {"preset": args.preset, "batch": args.batch, "threads": args.threads,
              "isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "loadavg": load, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    suffix = "" if (report["isa"] or "").upper() == "AVX2" else f"_{(report['isa'] or 'nocap').lower()}"
    with open(os.path.join(args.out, f"kernel_layers_{args.preset}{suffix}.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(markdown(report))


def markdown(report):
    rows = report["rows"]
    methods = [m for m in ("native", "custom", "custom_quiet", "torch") if rows and f"{m}_fwd_ms" in rows[0]]
    best = [m for m in ("custom_quiet", "custom") if m in methods][:1]
    head = [f"{m} {p}" for p in ("fwd", "fwd+bwd") for m in methods]
    ratio = [f"{best[0]}/torch fwd", f"{best[0]}/torch fwd+bwd"] if best else []
    lines = [f"{report['preset']} batch {report['batch']}, {report['threads']} threads, ONEDNN_MAX_CPU_ISA="
             f"{report['isa']}, load average {report['loadavg'][0]:.1f} (GFLOP/s; ms in brackets; ratios of "
             f"GFLOP/s)", "",
             "| net | layer | kind | input | weight | " + " | ".join(head + ratio) + " |",
             "|---|---|---|---|---|" + "---|" * (len(head) + len(ratio))]
    tot = {}
    for r in rows:
        cells = []
        for p in ("fwd", "fwdbwd"):
            for m in methods:
                cells.append(f"{r[f'{m}_{p}_gflops']:.0f} ({r[f'{m}_{p}_ms']:.1f})")
                tot[(m, p)] = tot.get((m, p), 0.0) + r[f"{m}_{p}_ms"]
        cells += [f"{r[f'torch_{p}_ms'] / r[f'{best[0]}_{p}_ms']:.2f}x" for p in ("fwd", "fwdbwd")] if best else []
        lines.append(f"| {r['net']} | {r['name']} | {r['kind']} | {'x'.join(map(str, r['input']))} "
                     f"| {'x'.join(map(str, r['weight']))} | " + " | ".join(cells) + " |")
    total = [f"{tot.get((m, p), 0):.1f}" for p in ("fwd", "fwdbwd") for m in methods]
    total += [f"{tot[('torch', p)] / tot[(best[0], p)]:.2f}x" for p in ("fwd", "fwdbwd")] if best else []
    lines.append("| total ms | | | | | " + " | ".join(total) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
