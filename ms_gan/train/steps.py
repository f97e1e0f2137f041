"""The update functions of one GAN training iteration, built with ``mindspore.value_and_grad``.

:func:`build_steps` returns one callable per kind of update a preset's step order can
use. The same Python functions run eagerly (PyNative) or compiled by
``mindspore.jit`` (graph mode); nothing else differs between the modes.

Every D update receives the fake images it judges, made beforehand by
``steps.generate`` (G in training mode, inside a compiled graph) or, for recipes whose
G makes D's fakes in inference mode (Keras ``predict``, the TF recipe's
``is_train=False``), by G in eval mode. Fakes therefore carry no gradient into G.
Networks may return ``(output, extra, ...)`` (SAGAN's attention maps): only the first
element enters the losses.

The objective beyond the article (:mod:`ms_gan.train.objective`) enters the same updates:
the chosen loss's terms; WGAN-GP in every update that judges fakes (``d``, ``d_fake``; the
interpolation needs the real batch too), R1 in every update that judges reals (``d``,
``d_real``), both on the images before augmentation; DiffAugment on every image D judges,
reals and fakes of the D updates and G's fakes in the G update, each batch with its own
draws. The draws (U(0, 1), :data:`DRAWS_PER_IMAGE` per image: GP's interpolation weight,
then :data:`ms_gan.train.augment.DRAWS`) come from the trainer's NumPy generator in
:meth:`Steps.run`, one tensor per iteration, so a resumed run repeats them. With none of it
on, every update computes exactly what it did before (the same graph, bit-identical).
"""
import numpy as np

import mindspore as ms
from mindspore import ops

from ms_gan import kernels
from ms_gan.models import primary
from ms_gan.train import augment, objective, penalties
from ms_gan.train.losses import LossFamily, l2_half

DRAWS_PER_IMAGE = 1 + augment.DRAWS   # column 0: GP's interpolation weight; then DiffAugment's


class Steps:
    """Holder of the update callables (attributes ``d``, ``d_real``, ``d_fake``, ``g``, ``generate``).

    Each D update returns ``(loss, loss_real, loss_fake, acc_real, acc_fake)`` and each
    G update ``(loss, acc_fooled)``, as MindSpore scalars, computed *before* the
    parameters change (as the articles record them). ``loss`` includes the penalties.
    """

    def run(self, step, rng, real, fake_inputs, z_g):
        """Iteration number ``step`` (0-based) with the random draws it needs taken from ``rng``."""
        return self._run(step, rng, real, fake_inputs, z_g)


def _maybe_jit(fn, use_jit):
    return kernels.quiet_waiter(ms.jit(fn)) if use_jit else fn


def build_steps(preset, G, D, opt_g, opt_d, use_jit=True, grad_reducer_g=None, grad_reducer_d=None, ema=None):
    """Compile the update functions of ``preset`` for networks G, D and their optimizers.

    Args:
        preset: the Preset (loss, L2 penalty, objective fields).
        G, D: the networks, in training mode.
        opt_g, opt_d: :class:`ms_gan.train.optim.Adam` over G's and D's trainable parameters.
        use_jit: compile with ``mindspore.jit`` (graph mode) or run eagerly (PyNative).
        grad_reducer_g, grad_reducer_d: ``nn.DistributedGradReducer`` for data-parallel runs
            (averages gradients across ranks before the optimizer), or None.
        ema: an :class:`ms_gan.train.ema.EMA` of G updated after every G update, or None.
    """
    loss = LossFamily(preset.loss)
    thr = loss.threshold
    penalty_params = [p for p in D.trainable_params()
                      if any(p.name.endswith("." + s) for s in preset.d_l2_params)]
    if len(penalty_params) != len(preset.d_l2_params):
        raise ValueError(f"preset {preset.name}: L2 penalty parameters {preset.d_l2_params} not all found in D")
    coef = float(preset.d_l2_coef)
    objective.check_penalties(preset, "graph" if use_jit else "pynative")
    gp_weight = float(preset.gp)
    r1_every = int(preset.r1_every)
    r1_weight = float(preset.r1) * 0.5 * r1_every   # gamma / 2, times k when applied every k iterations
    policies = preset.diffaugment
    randomized = bool(gp_weight or policies)
    diff_augment = augment.DiffAugment(policies, preset.image_size) if policies else None
    if gp_weight or r1_weight:
        penalties.make_twice_differentiable(D)
        d_input_grad = penalties.input_gradient(D)

    def penalty():
        if coef == 0.0:
            return 0.0
        return coef * l2_half(penalty_params)

    def acc_above(out):
        return ops.mean(ops.cast(out >= thr, ms.float32))

    def acc_below(out):
        return ops.mean(ops.cast(out < thr, ms.float32))

    def judge(x, draws):
        """D's output for images ``x``, augmented with ``draws`` (rows of the iteration's draws) if on."""
        if policies:
            x = diff_augment(x, draws[:, 1:])
        return primary(D(x))

    def with_gp(total, real, fake, draws_fake):
        if gp_weight:
            return total + penalties.gradient_penalty(d_input_grad, real, fake, draws_fake[:, 0], gp_weight)
        return total

    def with_r1(total, real, r1_now):
        if r1_weight and r1_now:
            return total + penalties.r1_penalty(d_input_grad, real, r1_weight)
        return total

    zero = ms.Tensor(0.0, ms.float32)

    def d_both_forward(real, fake, r1_now=True, draws_real=None, draws_fake=None):
        out_real = judge(real, draws_real)
        out_fake = judge(fake, draws_fake)
        loss_real = loss.d_real(out_real)
        loss_fake = loss.d_fake(out_fake)
        total = loss_real + loss_fake + penalty()
        total = with_r1(with_gp(total, real, fake, draws_fake), real, r1_now)
        return total, (loss_real, loss_fake, acc_above(out_real), acc_below(out_fake))

    def d_real_forward(real, r1_now=True, draws_real=None):
        out_real = judge(real, draws_real)
        loss_real = loss.d_real(out_real)
        return with_r1(loss_real + penalty(), real, r1_now), (loss_real, zero, acc_above(out_real), zero)

    def d_fake_forward(fake, real=None, draws_fake=None):
        out_fake = judge(fake, draws_fake)
        loss_fake = loss.d_fake(out_fake)
        return with_gp(loss_fake + penalty(), real, fake, draws_fake), (zero, loss_fake, zero, acc_below(out_fake))

    def g_forward(z, draws=None):
        out = judge(primary(G(z)), draws)
        return loss.g(out), acc_above(out)

    d_both_grad = ms.value_and_grad(d_both_forward, None, opt_d.params, has_aux=True)
    d_real_grad = ms.value_and_grad(d_real_forward, None, opt_d.params, has_aux=True)
    d_fake_grad = ms.value_and_grad(d_fake_forward, None, opt_d.params, has_aux=True)
    g_grad = ms.value_and_grad(g_forward, None, opt_g.params, has_aux=True)

    def d_update(grad_fn):
        """A D update: loss and gradients by ``grad_fn``, averaged across ranks if distributed, applied."""

        def update(*inputs):
            (total, aux), grads = grad_fn(*inputs)
            if grad_reducer_d is not None:
                grads = grad_reducer_d(grads)
            opt_d(grads)
            return total, aux[0], aux[1], aux[2], aux[3]

        return update

    d_step = d_update(d_both_grad)
    d_real_step = d_update(d_real_grad)
    d_fake_step = d_update(d_fake_grad)

    def g_step(z, draws=None):
        (total, acc), grads = g_grad(z, draws)
        if grad_reducer_g is not None:
            grads = grad_reducer_g(grads)
        opt_g(grads)
        if ema is not None:
            ema()
        return total, acc

    def generate_train(z):
        return ops.stop_gradient(primary(G(z)))

    def generate_eval(z):
        # Eager on purpose: toggling the training flag inside compiled graphs would need a
        # second compiled copy of G; this path is only for recipes that ask for it.
        G.set_train(False)
        fake = primary(G(z))
        G.set_train(True)
        return fake

    order = tuple(preset.steps)
    fakes_given = bool(preset.fake_for_d_eval_mode)
    # Rows of the iteration's draws, per update in step order: (real, fake) for "d", one batch otherwise.
    slots, n_slots = [], 0
    for token in order:
        width = 2 if token == "d" else 1
        slots.append(tuple(range(n_slots, n_slots + width)))
        n_slots += width
    slots = tuple(slots)

    def iteration(real, fake_inputs, z_g, draws=None, r1_now=True):
        """One whole iteration of the preset's step order in a single (compiled) call.

        ``fake_inputs`` stacks one entry per update that judges fakes: latent vectors
        (G makes the fakes here, in training mode) or, for eval-mode recipes, the fake
        images themselves. ``draws`` (batches, images, DRAWS_PER_IMAGE) holds the iteration's
        U(0, 1) numbers when GP or DiffAugment is on; ``r1_now`` says whether R1 applies.
        Returns every loss/accuracy as one 1-D tensor (one host copy).
        """
        n = real.shape[0]
        results = ()
        k = 0
        for i, token in enumerate(order):
            rows = () if draws is None else tuple(draws[s] for s in slots[i])
            if token == "g":
                g_loss, g_acc = g_step(z_g, *rows)
                results = results + (g_loss, g_acc)
                continue
            rows = tuple(r[:n] for r in rows)
            # Without the new options the updates get exactly their old inputs (the old graph).
            if token == "d_real":
                extra = () if draws is None and not r1_weight else (r1_now,) + rows
                results = results + d_real_step(real, *extra)
                continue
            fake = fake_inputs[k] if fakes_given else generate_train(fake_inputs[k])
            k += 1
            if token == "d":
                extra = () if draws is None and not r1_weight else (r1_now,) + rows
                results = results + d_step(real, fake, *extra)
            else:
                extra = () if draws is None and not gp_weight else (real,) + rows
                results = results + d_fake_step(fake, *extra)
        return ops.stack(results)

    steps = Steps()
    steps.iteration = _maybe_jit(iteration, use_jit)
    steps.fakes_given = fakes_given
    steps.d = _maybe_jit(d_step, use_jit)
    steps.d_real = _maybe_jit(d_real_step, use_jit)
    steps.d_fake = _maybe_jit(d_fake_step, use_jit)
    steps.g = _maybe_jit(g_step, use_jit)
    steps.generate = generate_eval if preset.fake_for_d_eval_mode else _maybe_jit(generate_train, use_jit)
    lazy_r1 = bool(r1_weight) and r1_every > 1

    def run(step, rng, real, fake_inputs, z_g):
        if not (randomized or lazy_r1):
            return steps.iteration(real, fake_inputs, z_g)
        draws = None
        if randomized:
            images = max(real.shape[0], z_g.shape[0])
            draws = ms.Tensor(rng.random((n_slots, images, DRAWS_PER_IMAGE), dtype=np.float32))
        return steps.iteration(real, fake_inputs, z_g, draws, step % r1_every == 0)

    steps._run = run
    return steps
