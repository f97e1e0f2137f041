"""Glue for the parity tests: the same weights, batch and noise in PyTorch and MindSpore.

Imports torch at the top: only tests and benchmarks import it."""
import dataclasses
import inspect

import numpy as np
import torch

from ms_gan import convert
from ms_gan.reference import torch_models as tm


def parity_preset(preset):
    """The preset as the parity tests run it: dropout off, since PyTorch and MindSpore
    cannot draw the same dropout masks (eval-mode parity covers the real rate)."""
    from ms_gan.models import family_classes

    if "dropout" not in inspect.signature(family_classes(preset.family)[1]).parameters:
        return preset
    return dataclasses.replace(preset, d_options={**preset.d_options, "dropout": 0.0})


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


def ms_iteration(preset, steps, real, noises, classes=None):
    """One iteration exactly as Trainer.fit runs it, with the given noise (token order, G's last).

    Uses the fused ``steps.iteration`` when the engine has it (the trainer's path), else the
    separate update functions. ``classes`` (conditional models, see :func:`class_plan`): (real
    labels, labels of each fake batch (n_fake, B), G's labels). Returns [(token, total, loss_real,
    loss_fake)] / [("g", loss)] like the torch Recipe.
    """
    import mindspore as ms

    noises = list(noises)
    real = ms.Tensor(real)
    if hasattr(steps, "iteration"):
        labels = None if classes is None else tuple(ms.Tensor(np.asarray(y, np.int32)) for y in classes)
        fake_inputs = []
        for token in preset.steps:
            if token in ("d", "d_fake"):
                z = ms.Tensor(noises.pop(0))
                y = () if labels is None else (labels[1][len(fake_inputs)],)
                fake_inputs.append(steps.generate(z, *y) if steps.fakes_given else z)
        z_g = ms.Tensor(noises.pop(0))
        # mutable: a plain tuple of Tensors is a compile-time constant to mindspore.jit, so every new
        # batch of noise would recompile the whole iteration (~1.3 s each on dcgan_digits8).
        extra = () if labels is None else (None, True) + labels
        values = steps.iteration(real, ms.mutable(tuple(fake_inputs)), z_g, *extra).asnumpy()
        out, pos = [], 0
        for token in preset.steps:
            if token == "g":
                out.append(("g", float(values[pos])))
                pos += 2
            else:
                out.append((token,) + tuple(float(v) for v in values[pos:pos + 3]))
                pos += 5
        return out
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


def class_plan(preset, n, seed):
    """A conditional iteration's labels: (real (n,), each fake batch (n_fake, n), G's (n x g_batch_mult,))."""
    rng = np.random.default_rng([seed, 1])
    n_fake = sum(1 for t in preset.steps if t in ("d", "d_fake"))
    k = preset.num_classes
    return (rng.integers(0, k, n), rng.integers(0, k, (max(n_fake, 1), n)),
            rng.integers(0, k, n * preset.g_batch_mult))


def batch(preset, n, seed):
    """A real batch in [-1, 1] and the iteration's noise, both float32."""
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1, 1, (n, preset.channels, preset.image_size, preset.image_size)).astype(np.float32)
    return real, tm.noise_plan(preset, n, rng)


def update_diff(preset, ms_net, role, torch_net, torch_opt, cond=0.01):
    """Parameter differences after training, separating Adam's ill-conditioned elements.

    Adam's first steps move an element by about lr * sign(g) whatever |g| is, so where the
    exact gradient is (nearly) zero, e.g. cancelled between the real and fake halves of a hinge
    loss, float rounding decides the direction and the frameworks may differ by up to 2*lr.
    Elements whose torch first moment is below ``cond`` x the largest of their tensor are
    counted apart.

    Returns dict(max=largest |diff| over every tensor (buffers too), where=its tensor,
    max_conditioned=largest |diff| over the other elements, n_ill=count of ill-conditioned
    elements with |diff| > 1e-4, ill_max=largest |diff| among them, n=all elements,
    n_over=elements with |diff| > 1e-4).
    """
    prefix = preset.param_prefixes[0 if role == "G" else 1]
    mine = convert.ms_to_torch_state(ms_net, prefix, preset.name, role)
    params = dict(torch_net.named_parameters())
    res = dict(max=0.0, where=None, max_conditioned=0.0, n_ill=0, ill_max=0.0, n=0, n_over=0)
    for key, value in torch_net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        diff = (mine[key].double() - value.double()).abs()
        res["n"] += diff.numel()
        res["n_over"] += int((diff > 1e-4).sum())
        if float(diff.max()) > res["max"]:
            res["max"], res["where"] = float(diff.max()), key
        ill = torch.zeros_like(diff, dtype=torch.bool)
        if key in params and params[key] in torch_opt.state:
            st = torch_opt.state[params[key]]
            m = (st["exp_avg"] if "exp_avg" in st else st["m"]).abs().double()
            ill = (m < cond * float(m.max())) | (m < 1e-7)
        good = diff[~ill]
        if good.numel():
            res["max_conditioned"] = max(res["max_conditioned"], float(good.max()))
        bad = diff[ill & (diff > 1e-4)]
        res["n_ill"] += bad.numel()
        if bad.numel():
            res["ill_max"] = max(res["ill_max"], float(bad.max()))
    return res
