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
"""
import mindspore as ms
from mindspore import ops

from ms_gan import kernels
from ms_gan.models import primary
from ms_gan.train.losses import LossFamily, l2_half


class Steps:
    """Holder of the update callables (attributes ``d``, ``d_real``, ``d_fake``, ``g``, ``generate``).

    Each D update returns ``(loss, loss_real, loss_fake, acc_real, acc_fake)`` and each
    G update ``(loss, acc_fooled)``, as MindSpore scalars, computed *before* the
    parameters change (as the articles record them).
    """


def _maybe_jit(fn, use_jit):
    return kernels.quiet_waiter(ms.jit(fn)) if use_jit else fn


def build_steps(preset, G, D, opt_g, opt_d, use_jit=True, grad_reducer_g=None, grad_reducer_d=None, ema=None):
    """Compile the update functions of ``preset`` for networks G, D and their optimizers.

    Args:
        preset: the Preset (loss, L2 penalty).
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

    def penalty():
        if coef == 0.0:
            return 0.0
        return coef * l2_half(penalty_params)

    def acc_above(out):
        return ops.mean(ops.cast(out >= thr, ms.float32))

    def acc_below(out):
        return ops.mean(ops.cast(out < thr, ms.float32))

    zero = ms.Tensor(0.0, ms.float32)

    def d_both_forward(real, fake):
        out_real = primary(D(real))
        out_fake = primary(D(fake))
        loss_real = loss.d_real(out_real)
        loss_fake = loss.d_fake(out_fake)
        total = loss_real + loss_fake + penalty()
        return total, (loss_real, loss_fake, acc_above(out_real), acc_below(out_fake))

    def d_real_forward(real):
        out_real = primary(D(real))
        loss_real = loss.d_real(out_real)
        return loss_real + penalty(), (loss_real, zero, acc_above(out_real), zero)

    def d_fake_forward(fake):
        out_fake = primary(D(fake))
        loss_fake = loss.d_fake(out_fake)
        return loss_fake + penalty(), (zero, loss_fake, zero, acc_below(out_fake))

    def g_forward(z):
        out = primary(D(primary(G(z))))
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

    def g_step(z):
        (total, acc), grads = g_grad(z)
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

    def iteration(real, fake_inputs, z_g):
        """One whole iteration of the preset's step order in a single (compiled) call.

        ``fake_inputs`` stacks one entry per update that judges fakes: latent vectors
        (G makes the fakes here, in training mode) or, for eval-mode recipes, the fake
        images themselves. Returns every loss/accuracy as one 1-D tensor (one host copy).
        """
        results = ()
        k = 0
        for token in order:
            if token == "g":
                g_loss, g_acc = g_step(z_g)
                results = results + (g_loss, g_acc)
            elif token == "d_real":
                results = results + d_real_step(real)
            else:
                fake = fake_inputs[k] if fakes_given else generate_train(fake_inputs[k])
                k += 1
                if token == "d":
                    results = results + d_step(real, fake)
                else:
                    results = results + d_fake_step(fake)
        return ops.stack(results)

    steps = Steps()
    steps.iteration = _maybe_jit(iteration, use_jit)
    steps.fakes_given = fakes_given
    steps.d = _maybe_jit(d_step, use_jit)
    steps.d_real = _maybe_jit(d_real_step, use_jit)
    steps.d_fake = _maybe_jit(d_fake_step, use_jit)
    steps.g = _maybe_jit(g_step, use_jit)
    steps.generate = generate_eval if preset.fake_for_d_eval_mode else _maybe_jit(generate_train, use_jit)
    return steps
