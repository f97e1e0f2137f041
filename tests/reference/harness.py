"""Glue for the parity tests: the same weights, batch and noise in PyTorch and MindSpore."""
import dataclasses

import numpy as np
import torch

from ms_gan import convert
from tests.reference import torch_models as tm


def parity_preset(preset):
    """The preset as the parity tests run it: dropout off, since PyTorch and MindSpore
    cannot draw the same dropout masks (eval-mode parity covers the real rate)."""
    return dataclasses.replace(preset, dropout=0.0) if preset.dropout else preset


def torch_pair(preset, seed=0):
    """(G, D) PyTorch reference nets with non-trivial random values in every tensor."""
    torch.manual_seed(seed)  # spectral norm's initial u, v
    G, D = tm.build(preset)
    gen = torch.Generator().manual_seed(seed + 1)
    tm.randomize(G, gen)
    tm.randomize(D, gen)
    return G, D


def ms_pair(preset, tG, tD):
    """MindSpore (G, D) holding the PyTorch nets' values, through the converter."""
    (G, D), _ = convert.torch_to_ms(preset, tG.state_dict(), tD.state_dict())
    return G, D


def ms_training(preset, G, D, use_jit=True):
    """Optimizers and step functions exactly as ms_gan.train.trainer.Trainer builds them."""
    from ms_gan.train.optim import Adam
    from ms_gan.train.steps import build_steps

    G.set_train(True)
    D.set_train(True)
    p = preset
    opt_g = Adam(G.trainable_params(), p.lr_g, p.beta1_g, p.beta2_g, p.adam_eps, p.adam_eps_mode, prefix="opt_g")
    opt_d = Adam(D.trainable_params(), p.lr_d, p.beta1_d, p.beta2_d, p.adam_eps, p.adam_eps_mode, prefix="opt_d")
    return build_steps(p, G, D, opt_g, opt_d, use_jit=use_jit), opt_g, opt_d


def ms_iteration(preset, steps, real, noises):
    """One iteration in the trainer's token order (Trainer.fit's inner loop), with given noise.

    Returns [(token, total, loss_real, loss_fake)] / [("g", loss)] like the torch Recipe.
    """
    import mindspore as ms

    noises = list(noises)
    real = ms.Tensor(real)
    out = []
    fake = None
    for token in preset.steps:
        if token == "g":
            g_loss, _ = steps.g(ms.Tensor(noises.pop(0)))
            out.append(("g", float(g_loss.asnumpy())))
            continue
        if token in ("d", "d_fake"):
            fake = steps.generate(ms.Tensor(noises.pop(0)))
        if token == "d":
            res = steps.d(real, fake)
        elif token == "d_fake":
            res = steps.d_fake(fake)
        else:
            res = steps.d_real(real)
        total, loss_real, loss_fake = (float(v.asnumpy()) for v in res[:3])
        out.append((token, total, loss_real, loss_fake))
    return out


def state_diff(preset, ms_net, role, torch_net):
    """Largest |ms - torch| over every tensor of the torch state_dict (params and buffers)."""
    prefix = preset.param_prefixes[0 if role == "G" else 1]
    mine = convert.ms_to_torch_state(ms_net, prefix, preset.name, role)
    ref = torch_net.state_dict()
    worst, where = 0.0, None
    for key, value in ref.items():
        if key.endswith("num_batches_tracked"):
            continue
        d = float((mine[key].double() - value.double()).abs().max())
        if d > worst:
            worst, where = d, key
    return worst, where


def batch(preset, n, seed):
    """A real batch in [-1, 1] and the iteration's noise, both float32."""
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1, 1, (n, preset.channels, preset.image_size, preset.image_size)).astype(np.float32)
    return real, tm.noise_plan(preset, n, rng)
