"""Per-layer profile: forward and forward+backward time of every conv / transposed conv / dense
layer of a preset, in MindSpore (jit-compiled, one layer per graph) and PyTorch eager.

    python bench/profile_layers.py [--preset dcgan64] [--batch 64] [--repeats 5] [--frameworks ms,torch]

Input shapes are captured by running G and D once in PyNative with forward pre-hooks; each layer
is then timed alone: ``fwd`` = y = layer(x); ``fwd+bwd`` = gradients of sum(y * dy) with respect
to x and the weight (what one training step does per layer). Times are medians in ms.
Each framework runs in its own subprocess; ONEDNN_MAX_CPU_ISA and the threads are inherited.
Writes ``OUT/profile_<preset>.json`` and prints a markdown table.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.timing import timed, torch_layer_calls  # noqa: E402

KINDS = ("Conv2d", "Conv2dTranspose", "Dense")


def _median_ms(fn, repeats, warmup=2):
    # profile convention: warm-up calls excluded entirely (first call included in warmup)
    return 1000.0 * timed(fn, warmup + 1, repeats)[1]


def capture_layers(preset_name, batch):
    """[(net, name, kind, weight shape, stride, pad_mode, padding, has_bias, input shape)] in call order."""
    import numpy as np

    import ms_gan  # noqa: F401
    import mindspore as ms

    from ms_gan import device, presets
    from ms_gan.models import build, primary

    device.setup("CPU", mode="pynative")
    p = presets.get(preset_name)
    G, D = build(p, 0)
    found = []
    for tag, net in (("G", G), ("D", D)):
        for name, cell in net.cells_and_names():
            kind = type(cell).__name__
            if kind not in KINDS:
                continue

            def hook(c, inputs, tag=tag, name=name, kind=kind):
                found.append({"net": tag, "name": name, "kind": kind, "weight": list(c.weight.shape),
                              "stride": list(getattr(c, "stride", (1, 1))), "pad_mode": getattr(c, "pad_mode", None),
                              "padding": getattr(c, "padding", 0), "bias": c.has_bias,
                              "input": list(inputs[0].shape)})
            cell.register_forward_pre_hook(hook)
    z = ms.Tensor(np.random.default_rng(0).standard_normal((batch, p.z_dim)).astype(np.float32))
    primary(D(primary(G(z))))
    return found


def run_ms(layers, repeats):
    import numpy as np

    import ms_gan  # noqa: F401
    import mindspore as ms
    from mindspore import nn

    from ms_gan import device
    from ms_gan.nn import workarounds

    device.setup("CPU", mode="graph")
    out = []
    for i, L in enumerate(layers):
        rng = np.random.default_rng(i)
        x = ms.Tensor(rng.standard_normal(L["input"]).astype(np.float32))
        if L["kind"] == "Dense":
            cell = nn.Dense(L["weight"][1], L["weight"][0], has_bias=L["bias"])
        else:
            # The project's layers (ms_gan.nn.workarounds), so MS_GAN_CONV_IMPL selects the implementation.
            cls = workarounds.Conv2d if L["kind"] == "Conv2d" else workarounds.Conv2dTranspose
            w = L["weight"]
            cin, cout = (w[1], w[0]) if L["kind"] == "Conv2d" else (w[0], w[1])
            pad = L["padding"]
            kw = {"pad_mode": L["pad_mode"]}
            if L["pad_mode"] == "pad":
                kw["padding"] = tuple(pad) if isinstance(pad, (list, tuple)) else pad
            cell = cls(cin, cout, w[2], stride=tuple(L["stride"]), has_bias=L["bias"], **kw)
        for prm in cell.trainable_params():
            prm.name = f"l{i}.{prm.name}"
        y = cell(x)
        dy = ms.Tensor(rng.standard_normal(y.shape).astype(np.float32))

        def f(x, dy):
            return (cell(x) * dy).sum()

        fwd = ms.jit(lambda_free_forward(cell))
        grad = ms.jit(ms.value_and_grad(f, 0, cell.trainable_params()))
        out.append({"fwd_ms": _median_ms(lambda: fwd(x).asnumpy(), repeats),
                    "fwdbwd_ms": _median_ms(lambda: grad(x, dy)[0].asnumpy(), repeats)})
    return out


def lambda_free_forward(cell):
    """A named function (jit cannot parse lambdas) calling ``cell``."""
    def forward(x):
        return cell(x)
    return forward


def run_torch(layers, repeats, threads):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    out = []
    for i, L in enumerate(layers):
        rng = np.random.default_rng(i)
        x = torch.tensor(rng.standard_normal(L["input"]).astype(np.float32), requires_grad=True)
        w = L["weight"]
        if L["kind"] == "Dense":
            mod = torch.nn.Linear(w[1], w[0], bias=L["bias"])
        else:
            same = L["pad_mode"] == "same"
            pad = L["padding"] if L["pad_mode"] == "pad" else 0
            if isinstance(pad, (list, tuple)):
                pad = pad[0]  # asymmetric crops: the symmetric part is what costs
            if L["kind"] == "Conv2d":
                mod = torch.nn.Conv2d(w[1], w[0], w[2], stride=tuple(L["stride"]),
                                      padding="same" if same and L["stride"] == [1, 1] else pad, bias=L["bias"])
                if same and L["stride"] != [1, 1]:
                    k, s = w[2], L["stride"][0]
                    h = L["input"][2]
                    total = max((-(-h // s) - 1) * s + k - h, 0)
                    mod.padding = (total // 2, total // 2)
            else:
                mod = torch.nn.ConvTranspose2d(w[0], w[1], w[2], stride=tuple(L["stride"]), padding=pad, bias=L["bias"])
        with torch.no_grad():
            y = mod(x)
        dy = torch.tensor(rng.standard_normal(tuple(y.shape)).astype(np.float32))
        fwd, fwdbwd = torch_layer_calls(mod, x, dy)
        out.append({"fwd_ms": _median_ms(fwd, repeats), "fwdbwd_ms": _median_ms(fwdbwd, repeats)})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="dcgan64")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--frameworks", default="ms,torch")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--layers", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        with open(args.layers) as f:
            layers = json.load(f)
        res = run_ms(layers, args.repeats) if args.worker == "ms" else run_torch(layers, args.repeats, args.threads)
        print("RESULT " + json.dumps(res))
        return 0

    def spawn(extra):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__)] + extra, capture_output=True, text=True,
                              cwd=ROOT)
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[7:])
        raise RuntimeError(proc.stderr[-2000:])

    import tempfile
    code = ("import json,sys; sys.path.insert(0,%r); from bench.profile_layers import capture_layers; "
            "print('RESULT '+json.dumps(capture_layers(%r,%d)))" % (ROOT, args.preset, args.batch))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    layers = json.loads([l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][0][7:])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(layers, f)
    results = {}
    for fw in args.frameworks.split(","):
        results[fw] = spawn(["--worker", fw, "--layers", f.name, "--repeats", str(args.repeats),
                             "--threads", str(args.threads)])
    os.unlink(f.name)
    rows = ["| net | layer | kind | input | weight | " + " | ".join(
        f"{fw} fwd ms | {fw} fwd+bwd ms" for fw in results) + " | fwd+bwd ms/torch |",
        "|---|---|---|---|---|" + "---|---|" * len(results) + "---|"]
    totals = {fw: [0.0, 0.0] for fw in results}
    for i, L in enumerate(layers):
        cells = []
        for fw, r in results.items():
            cells += [f"{r[i]['fwd_ms']:.1f}", f"{r[i]['fwdbwd_ms']:.1f}"]
            totals[fw][0] += r[i]["fwd_ms"]
            totals[fw][1] += r[i]["fwdbwd_ms"]
        ratio = (f"{results['ms'][i]['fwdbwd_ms'] / results['torch'][i]['fwdbwd_ms']:.2f}"
                 if "ms" in results and "torch" in results else "-")
        rows.append(f"| {L['net']} | {L['name']} | {L['kind']} | {'x'.join(map(str, L['input']))} | "
                    f"{'x'.join(map(str, L['weight']))} | " + " | ".join(cells) + f" | {ratio} |")
    rows.append("| total | | | | | " + " | ".join(f"{t[0]:.1f} | {t[1]:.1f}" for t in totals.values()) + " | " +
                (f"{totals['ms'][1] / totals['torch'][1]:.2f}" if "ms" in totals and "torch" in totals else "-")
                + " |")
    table = "\n".join(rows) + "\n"
    os.makedirs(args.out, exist_ok=True)
    tag = os.environ.get("PROFILE_TAG", "")
    with open(os.path.join(args.out, f"profile_{args.preset}{tag}.json"), "w") as f:
        json.dump({"layers": layers, "results": results, "isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
                   "conv_impl": os.environ.get("MS_GAN_CONV_IMPL")}, f, indent=1)
    with open(os.path.join(args.out, f"profile_{args.preset}{tag}.md"), "w") as f:
        f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
