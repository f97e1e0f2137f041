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

A conditional model (``preset.num_classes``, :mod:`ms_gan.nn.conditional`) takes int32 class
labels beside every input: the real batch's own labels, and for fakes labels drawn uniformly
from the trainer's generator (:func:`ms_gan.train.trainer.class_draws`); D judges each image
with the class it was made (or labelled) as. The penalties take D's input gradient with the labels
held fixed: R1 at the reals with their labels, GP at the interpolates with the reals' labels.

In PyNative the penalties' input gradient is compiled (:func:`ms_gan.nn.workarounds.compiled_in_pynative`):
MindSpore 2.10's eager second derivatives are wrong (docs/mindspore_double_grad.md).
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

    def run(self, step, rng, real, fake_inputs, z_g, fake_classes=None, real_classes=None):
        """Iteration number ``step`` (0-based) with the random draws it needs taken from ``rng``.

        Conditional models also take ``fake_classes`` ((n_fake_updates, B) labels of the fakes, G's
        labels) and ``real_classes`` (the real batch's labels), int32 tensors.
        """
        return self._run(step, rng, real, fake_inputs, z_g, fake_classes, real_classes)


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
    # G lives only inside this training run (networks for export, sampling and evaluation are built apart), so
    # its eval-mode passes may use the kernels too: dcgan128_rgb's eval-mode fakes for D took ~1.6 s of its
    # ~12.7 s iteration on MindSpore's plain-NCHW convolutions (bench/NOTES.md attempt 61).
    kernels.use_in_eval(G)
    loss = LossFamily(preset.loss)
    thr = loss.threshold
    penalty_params = [p for p in D.trainable_params()
                      if any(p.name.endswith("." + s) for s in preset.d_l2_params)]
    if len(penalty_params) != len(preset.d_l2_params):
        raise ValueError(f"preset {preset.name}: L2 penalty parameters {preset.d_l2_params} not all found in D")
    coef = float(preset.d_l2_coef)
    objective.check_penalties(preset)
    gp_weight = float(preset.gp)
    r1_every = int(preset.r1_every)
    r1_weight = float(preset.r1) * 0.5 * r1_every   # gamma / 2, times k when applied every k iterations
    policies = preset.diffaugment
    randomized = bool(gp_weight or policies)
    conditional = bool(preset.num_classes)
    diff_augment = augment.DiffAugment(policies, preset.image_size) if policies else None
    if gp_weight or r1_weight:
        penalties.make_twice_differentiable(D)
        d_input_grad = penalties.input_gradient(D, conditional, eager=not use_jit)

    def penalty():
        if coef == 0.0:
            return 0.0
        return coef * l2_half(penalty_params)

    def acc_above(out):
        return ops.mean(ops.cast(out >= thr, ms.float32))

    def acc_below(out):
        return ops.mean(ops.cast(out < thr, ms.float32))

    def judge(x, draws, y=None):
        """D's output for images ``x`` (of classes ``y``), augmented with ``draws`` (the iteration's rows) if on."""
        if policies:
            x = diff_augment(x, draws[:, 1:])
        if y is None:
            return primary(D(x))
        return primary(D(x, y))

    def make(z, y=None):
        if y is None:
            return primary(G(z))
        return primary(G(z, y))

    def with_gp(total, real, fake, draws_fake, y_real=None):
        if gp_weight:
            return total + penalties.gradient_penalty(d_input_grad, real, fake, draws_fake[:, 0], gp_weight, y_real)
        return total

    def with_r1(total, real, r1_now, y_real=None):
        if r1_weight and r1_now:
            return total + penalties.r1_penalty(d_input_grad, real, r1_weight, y_real)
        return total

    zero = ms.Tensor(0.0, ms.float32)
    mode_seeking = float(preset.mode_seeking)

    def diversity_loss(fake, z):
        """MSGAN's 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5) over the pairs (i, i + n/2) of G's batch
        (a conditional model draws the pairs' labels equal: :func:`ms_gan.train.trainer.class_draws`)."""
        h = z.shape[0] // 2
        ratio = ops.mean(ops.abs(fake[:h] - fake[h:2 * h])) / ops.mean(ops.abs(z[:h] - z[h:2 * h]))
        return 1.0 / (ratio + 1e-5)

    def d_both_forward(real, fake, r1_now=True, draws_real=None, draws_fake=None, y_real=None, y_fake=None):
        out_real = judge(real, draws_real, y_real)
        out_fake = judge(fake, draws_fake, y_fake)
        loss_real = loss.d_real(out_real)
        loss_fake = loss.d_fake(out_fake)
        total = loss_real + loss_fake + penalty()
        total = with_r1(with_gp(total, real, fake, draws_fake, y_real), real, r1_now, y_real)
        return total, (loss_real, loss_fake, acc_above(out_real), acc_below(out_fake))

    def d_real_forward(real, r1_now=True, draws_real=None, y_real=None):
        out_real = judge(real, draws_real, y_real)
        loss_real = loss.d_real(out_real)
        return with_r1(loss_real + penalty(), real, r1_now, y_real), (loss_real, zero, acc_above(out_real), zero)

    def d_fake_forward(fake, real=None, draws_fake=None, y_fake=None, y_real=None):
        out_fake = judge(fake, draws_fake, y_fake)
        loss_fake = loss.d_fake(out_fake)
        total = with_gp(loss_fake + penalty(), real, fake, draws_fake, y_real)
        return total, (zero, loss_fake, zero, acc_below(out_fake))

    def g_forward(z, draws=None, y=None):
        fake = make(z, y)
        out = judge(fake, draws, y)
        if mode_seeking:
            return loss.g(out) + mode_seeking * diversity_loss(fake, z), acc_above(out)
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

    def g_step(z, draws=None, y=None):
        (total, acc), grads = g_grad(z, draws, y)
        if grad_reducer_g is not None:
            grads = grad_reducer_g(grads)
        opt_g(grads)
        if ema is not None:
            ema()
        return total, acc

    def generate_train(z, y=None):
        return ops.stop_gradient(make(z, y))

    # Compiled at its first call, while G is in eval mode (the training flag cannot toggle inside a compiled
    # graph), and run under the quiet waiter like the updates, so MindSpore's busy-waiting caller leaves the
    # cores to the kernels (bench/NOTES.md attempts 60-61).
    make_eval = _maybe_jit(make, use_jit)

    def generate_eval(z, y=None):
        G.set_train(False)
        try:
            return make_eval(z) if y is None else make_eval(z, y)
        finally:
            G.set_train(True)

    order = tuple(preset.steps)
    fakes_given = bool(preset.fake_for_d_eval_mode)
    # Rows of the iteration's draws, per update in step order: (real, fake) for "d", one batch otherwise.
    slots, n_slots = [], 0
    for token in order:
        width = 2 if token == "d" else 1
        slots.append(tuple(range(n_slots, n_slots + width)))
        n_slots += width
    slots = tuple(slots)

    def iteration(real, fake_inputs, z_g, draws=None, r1_now=True, y_real=None, y_fake=None, y_g=None):
        """One whole iteration of the preset's step order in a single (compiled) call.

        ``fake_inputs`` stacks one entry per update that judges fakes: latent vectors
        (G makes the fakes here, in training mode) or, for eval-mode recipes, the fake
        images themselves. ``draws`` (batches, images, DRAWS_PER_IMAGE) holds the iteration's
        U(0, 1) numbers when GP or DiffAugment is on; ``r1_now`` says whether R1 applies.
        ``y_real``, ``y_fake`` (one row per fake entry), ``y_g``: class labels of a conditional model.
        Returns every loss/accuracy as one 1-D tensor (one host copy).
        """
        n = real.shape[0]
        results = ()
        k = 0
        for i, token in enumerate(order):
            rows = () if draws is None else tuple(draws[s] for s in slots[i])
            if token == "g":
                g_loss, g_acc = g_step(z_g, *(rows or (None,)), y_g) if conditional else g_step(z_g, *rows)
                results = results + (g_loss, g_acc)
                continue
            rows = tuple(r[:n] for r in rows)
            # Without the new options the updates get exactly their old inputs (the old graph).
            if token == "d_real":
                extra = () if draws is None and not r1_weight else (r1_now,) + rows
                if conditional:
                    extra = (r1_now,) + (rows or (None,)) + (y_real,)
                results = results + d_real_step(real, *extra)
                continue
            y = y_fake[k] if conditional else None
            if fakes_given:
                fake = fake_inputs[k]
            else:
                fake = generate_train(fake_inputs[k], y)
            k += 1
            if token == "d":
                extra = () if draws is None and not r1_weight else (r1_now,) + rows
                if conditional:
                    extra = (r1_now,) + (rows or (None, None)) + (y_real, y)
                results = results + d_step(real, fake, *extra)
            else:
                extra = () if draws is None and not gp_weight else (real,) + rows
                if conditional:   # the real labels: GP's interpolates are judged as the reals' classes
                    extra = (real,) + (rows or (None,)) + (y, y_real)
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

    def run(step, rng, real, fake_inputs, z_g, fake_classes=None, real_classes=None):
        if not (randomized or lazy_r1 or conditional):
            return steps.iteration(real, fake_inputs, z_g)
        draws = None
        if randomized:
            images = max(real.shape[0], z_g.shape[0])
            draws = ms.Tensor(rng.random((n_slots, images, DRAWS_PER_IMAGE), dtype=np.float32))
        if conditional:
            y_fake, y_g = fake_classes
            return steps.iteration(real, fake_inputs, z_g, draws, step % r1_every == 0, real_classes, y_fake, y_g)
        return steps.iteration(real, fake_inputs, z_g, draws, step % r1_every == 0)

    steps._run = run
    return steps
