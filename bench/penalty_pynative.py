"""One D update with WGAN-GP: graph mode against PyNative with the penalty's input gradient compiled
(ms_gan.nn.workarounds.compiled_in_pynative) and eager (MindSpore's wrong second derivative, for the time
only), and PyNative without a penalty; interleaved in one process, medians.

    python bench/penalty_pynative.py [--preset dcgan_digits8] [--batch 16] [--repeats 15]

The update is the preset's first D update that judges fakes (``d_fake`` or ``d``), from the PyTorch
reference's random weights, on uniform random images (bench/NOTES.md, "Issue 15: penalties in PyNative").
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dcgan_digits8")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)

    import mindspore as ms

    from ms_gan import presets
    from ms_gan.reference import harness as h
    from ms_gan.train import penalties
    from ms_gan.train.steps import DRAWS_PER_IMAGE

    base = presets.get(args.preset)
    loss = {"loss": "bce_logits"} if base.loss == "bce" else {}
    token = "d_fake" if "d_fake" in base.steps else "d"
    rng = np.random.default_rng(5)
    shape = (args.batch, base.channels, base.image_size, base.image_size)
    real, fake = (ms.Tensor(rng.uniform(-1, 1, shape).astype(np.float32)) for _ in range(2))
    draws = ms.Tensor(rng.random((args.batch, DRAWS_PER_IMAGE), dtype=np.float32))
    variants = {}
    for label, gp, use_jit, compiled in (("graph, GP", 10.0, True, True),
                                         ("PyNative, GP, input gradient compiled", 10.0, False, True),
                                         ("PyNative, GP, input gradient eager (wrong)", 10.0, False, False),
                                         ("PyNative, no penalty", 0.0, False, True)):
        p = presets.override(h.parity_preset(base), gp=gp, **loss)
        tG, tD = h.torch_pair(p, seed=3)
        G, D = h.ms_pair(p, tG, tD)
        kept = penalties.compiled_in_pynative
        if not compiled:
            penalties.compiled_in_pynative = lambda fn: fn
        steps, _, _ = h.ms_training(p, G, D, use_jit=use_jit)
        penalties.compiled_in_pynative = kept
        if token == "d_fake":
            call = (lambda s: lambda: s.d_fake(fake, real, draws))(steps)
        else:
            call = (lambda s: lambda: s.d(real, fake, True, draws, draws))(steps)
        t = time.perf_counter()
        call()[0].asnumpy()
        print(f"{label}: first call {time.perf_counter() - t:.2f} s", flush=True)
        variants[label] = call
    times = {label: [] for label in variants}
    for _ in range(args.repeats):
        for label, call in variants.items():
            t = time.perf_counter()
            call()[0].asnumpy()
            times[label].append(time.perf_counter() - t)
    print(f"{args.preset} {token} batch {args.batch}, median of {args.repeats} (load {os.getloadavg()[0]:.1f}):")
    for label, values in times.items():
        print(f"  {label:45s} {1000 * float(np.median(values)):8.1f} ms")


if __name__ == "__main__":
    main()
