"""What one training iteration of cdcgan_digits8 costs against dcgan_digits8's, interleaved in one process.

    python bench/cdcgan_iteration_cost.py [--repeats 16] [--iterations 50]

Variants: ``dcgan_digits8``; ``conditional`` (dcgan_digits8 --conditional: class embedding and projection);
``cdcgan_digits8`` (the preset: also the mode-seeking term and the EMA of G). Each repeat times
``--iterations`` compiled iterations (batch 16, the trainer's own input draws) of every variant in turn, so
load from other processes hits all alike; the first 2 repeats (compilation, warm-up) are dropped. Prints the
median ms per iteration and the per-repeat ratio to dcgan_digits8 (median and range). One thread.
"""
import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=50)
    args = ap.parse_args()

    import time

    import mindspore as ms

    from ms_gan import device, presets
    from ms_gan.models import build
    from ms_gan.train.ema import EMA
    from ms_gan.train.optim import Adam
    from ms_gan.train.steps import build_steps
    from ms_gan.train.trainer import iteration_inputs

    device.setup("CPU", mode="graph", threads=1, seed=0)
    variants = {"dcgan_digits8": presets.get("dcgan_digits8"),
                "conditional": presets.override(presets.get("dcgan_digits8"), conditional=True, num_classes=10),
                "cdcgan_digits8": presets.get("cdcgan_digits8")}
    engines = {}
    for name, p in variants.items():
        G, D = build(p, 0)
        G.set_train(True)
        D.set_train(True)
        opt_g = Adam(G.trainable_params(), p.lr_g, p.beta1_g, p.beta2_g, p.adam_eps, p.adam_eps_mode, prefix="opt_g")
        opt_d = Adam(D.trainable_params(), p.lr_d, p.beta1_d, p.beta2_d, p.adam_eps, p.adam_eps_mode, prefix="opt_d")
        engines[name] = (p, build_steps(p, G, D, opt_g, opt_d, ema=EMA(G, p.ema) if p.ema else None))
    rng = np.random.default_rng(0)
    real = ms.Tensor(rng.uniform(-1, 1, (16, 1, 8, 8)).astype(np.float32))
    labels = {"real_classes": ms.Tensor(rng.integers(0, 10, 16).astype(np.int32))}
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (p, steps) in engines.items():
            t = time.perf_counter()
            for i in range(args.iterations):
                inputs = iteration_inputs(rng, 16, p, steps)
                steps.run(i, rng, real, *inputs, **(labels if p.num_classes else {})).asnumpy()
            times[name].append(time.perf_counter() - t)
    for name in variants:
        ms_per = np.asarray(times[name][2:]) / args.iterations * 1e3
        print(f"{name}: {np.median(ms_per):.2f} ms/iteration median (min {ms_per.min():.2f})")
    base = np.asarray(times["dcgan_digits8"][2:])
    for name in ("conditional", "cdcgan_digits8"):
        r = np.asarray(times[name][2:]) / base
        print(f"{name} / dcgan_digits8 per repeat: median {np.median(r):.3f}, range {r.min():.3f}-{r.max():.3f}")


if __name__ == "__main__":
    main()
