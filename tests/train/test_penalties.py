"""WGAN-GP and R1 against PyTorch (torch.autograd.grad with create_graph=True): the penalty's value and
D's parameter gradients in one D update, compiled (graph mode) and eager (PyNative, where the penalty's
input gradient is compiled: ms_gan.nn.workarounds.compiled_in_pynative), from identical weights and
batches; unconditional and conditional (projection) D."""
from unittest import mock

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindspore as ms  # noqa: E402
from mindspore import ops  # noqa: E402

from ms_gan import presets  # noqa: E402
from ms_gan.errors import UserError  # noqa: E402
from ms_gan.train import objective, penalties  # noqa: E402
from ms_gan.train.steps import DRAWS_PER_IMAGE  # noqa: E402
from ms_gan import convert  # noqa: E402
from ms_gan.reference import harness as h  # noqa: E402

LOSS_D_TERMS = {  # D's real and fake terms in PyTorch, for the losses used below
    "bce_logits": (lambda o: torch.nn.functional.softplus(-o).mean(), lambda o: torch.nn.functional.softplus(o).mean()),
    "hinge": (lambda o: torch.relu(1.0 - o).mean(), lambda o: torch.relu(1.0 + o).mean()),
    "wasserstein": (lambda o: -o.mean(), lambda o: o.mean()),
}


def _logit(tD, x, y=None):
    """The reference D's main output (for images of classes ``y``, if conditional); for the families that
    end in torch.sigmoid, the logit before it (the losses here take logits, as ms_gan's D gives them)."""
    with mock.patch.object(torch, "sigmoid", lambda t: t):
        out = tD(x) if y is None else tD(x, y)
    return out[0] if isinstance(out, tuple) else out


def _torch_input_grad(tD, x, y=None):
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(_logit(tD, x, y).sum(), x, create_graph=True)[0].flatten(1)


def _torch_update(p, tD, token, real, fake, alpha, r1_gain, y_real=None, y_fake=None):
    """D's loss of one update plus the penalties, backward; returns (total, penalty, {name: grad}).

    Conditional: reals and fakes judged as their own classes, GP's interpolates as the reals' classes."""
    d_real, d_fake = LOSS_D_TERMS[p.loss]
    real, fake = torch.from_numpy(real), torch.from_numpy(fake)
    if y_real is not None:
        y_real, y_fake = torch.from_numpy(y_real).long(), torch.from_numpy(y_fake).long()
    tD.zero_grad()
    terms = []
    if token in ("d", "d_real"):
        terms.append(d_real(_logit(tD, real, y_real)))
    if token in ("d", "d_fake"):
        terms.append(d_fake(_logit(tD, fake, y_fake)))
    penalty = 0.0
    if p.gp and token in ("d", "d_fake"):
        a = torch.from_numpy(alpha).view(-1, 1, 1, 1)
        g = _torch_input_grad(tD, a * real + (1.0 - a) * fake, y_real)
        penalty = penalty + p.gp * ((g.norm(2, dim=1) - 1.0) ** 2).mean()
    if p.r1 and token in ("d", "d_real") and r1_gain:
        g = _torch_input_grad(tD, real, y_real)
        penalty = penalty + p.r1 / 2.0 * r1_gain * (g * g).sum(1).mean()
    total = sum(terms) + penalty
    total.backward()
    return total.item(), float(torch.as_tensor(penalty).detach()), {n: t.grad.numpy() for n, t in tD.named_parameters()}


def _run(name, token, batch, mode, r1_now=True, **objective_fields):
    """One ``token`` D update in ``mode`` ('graph': compiled; 'pynative': eager) against PyTorch."""
    p = presets.override(h.parity_preset(presets.get(name)), **objective_fields)
    tG, tD = h.torch_pair(p, seed=3)
    G, D = h.ms_pair(p, tG, tD)
    steps, _, opt_d = h.ms_training(p, G, D, use_jit=mode == "graph")
    rng = np.random.default_rng(5)
    shape = (batch, p.channels, p.image_size, p.image_size)
    real = rng.uniform(-1, 1, shape).astype(np.float32)
    fake = rng.uniform(-1, 1, shape).astype(np.float32)
    draws = rng.random((batch, DRAWS_PER_IMAGE), dtype=np.float32)
    T = ms.Tensor
    y_real = y_fake = None
    if p.num_classes:   # two different label sets, so judging x_hat with the fakes' labels would fail
        y_real, y_fake = (rng.integers(0, p.num_classes, batch).astype(np.int32) for _ in range(2))
        assert np.any(y_real != y_fake)
        yr, yf = T(y_real), T(y_fake)
        if token == "d":
            out = steps.d(T(real), T(fake), r1_now, T(draws), T(draws), yr, yf)
        elif token == "d_fake":
            out = steps.d_fake(T(fake), T(real), T(draws), yf, yr)
        else:
            out = steps.d_real(T(real), r1_now, None, yr)
    elif token == "d":
        out = steps.d(T(real), T(fake), r1_now, T(draws), T(draws))
    elif token == "d_fake":
        out = steps.d_fake(T(fake), T(real), T(draws))
    else:
        out = steps.d_real(T(real), r1_now)
    total, loss_real, loss_fake = (float(v.asnumpy()) for v in out[:3])
    gain = p.r1_every if r1_now else 0
    t_total, t_penalty, t_grads = _torch_update(p, tD, token, real, fake, draws[:, 0], gain, y_real, y_fake)
    applied = bool(p.gp and token != "d_real") or bool(p.r1 and token != "d_fake" and r1_now)
    assert (t_penalty > 1e-3) if applied else (t_penalty == 0.0)   # the penalty is really there, or not
    np.testing.assert_allclose(total - loss_real - loss_fake, t_penalty, rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(total, t_total, rtol=2e-5, atol=1e-5)
    # Adam's first step leaves m = (1 - beta1) g: D's gradient as the compiled update computed it.
    # Tolerance: float32 rounding relative to the largest gradient (some are exactly zero in exact
    # arithmetic, e.g. the attention's query bias, which the softmax cancels, and come out as ~1e-11).
    torch_key = {param.name: key for key, param, kind, _ in convert._param_map(D, p.param_prefixes[1])}
    scale = max(float(np.abs(g).max()) for g in t_grads.values())
    checked = 0
    for param, m in zip(opt_d.params, opt_d.m):
        key = torch_key[param.name]
        ref = t_grads[key]
        grad = m.asnumpy().reshape(ref.shape) / (1.0 - p.beta1_d)
        np.testing.assert_allclose(grad, ref, rtol=1e-3, atol=1e-5 * scale, err_msg=key)
        checked += 1
    assert checked == len(t_grads)


MODES = ("graph", "pynative")


@pytest.mark.parametrize("mode", MODES)
def test_gp_dcgan_digits8_matches_torch(mode):
    """GP joins digits8's d_fake update (it needs the real batch for the interpolates)."""
    _run("dcgan_digits8", "d_fake", 4, mode, loss="bce_logits", gp=10.0)


@pytest.mark.parametrize("mode", MODES)
def test_gp_sagan64_matches_torch(mode):
    """SAGAN: spectral norm's power iteration and the attention blocks, differentiated twice."""
    _run("sagan64", "d", 2, mode, gp=10.0)


@pytest.mark.parametrize("mode", MODES)
def test_r1_dcgan64_matches_torch(mode):
    _run("dcgan64", "d", 2, mode, loss="wasserstein", r1=1000.0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("r1_now", [True, False])
def test_lazy_r1_dcgan_digits8_matches_torch(r1_now, mode):
    """R1 joins digits8's d_real update with the lazy gain k = 4 on the iterations it applies to, else nothing."""
    _run("dcgan_digits8", "d_real", 4, mode, r1_now=r1_now, loss="bce_logits", r1=50.0, r1_every=4)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("token, fields", [
    ("d_fake", dict(loss="bce_logits", gp=10.0)),
    ("d_real", dict(loss="hinge", r1=50.0)),
])
def test_penalties_of_the_conditional_digits8_match_torch(token, fields, mode):
    """Projection D: the input gradient of D(x, y) w.r.t. x with the labels fixed (GP: the reals' labels)."""
    _run("dcgan_digits8", token, 4, mode, conditional=True, num_classes=10, **fields)


@pytest.mark.parametrize("mode", MODES)
def test_gp_and_r1_of_the_conditional_dcgan64_match_torch(mode):
    """Conditional BN is in G only; D's projection reads the 4x4x512 map its MatMul head reads."""
    _run("dcgan64", "d", 2, mode, loss="wasserstein", gp=10.0, r1=100.0, conditional=True, num_classes=3)


def test_plain_attention_core_is_the_same_function():
    from ms_gan.nn.attention import AttentionCore

    rng = np.random.default_rng(0)
    q, k, v = (ms.Tensor(rng.standard_normal(s).astype(np.float32)) for s in ((2, 4, 16), (2, 4, 16), (2, 8, 16)))
    np.testing.assert_allclose(penalties.PlainAttentionCore()(q, k, v).asnumpy(),
                               AttentionCore()(q, k, v).asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fields, fragment", [
    (dict(preset="dcgan_digits8", gp=10.0), "add --loss bce_logits"),
    (dict(preset="dcgan128_rgb", loss="hinge", r1=1.0), "BatchNorm"),
])
def test_presets_that_cannot_take_a_penalty_are_refused(fields, fragment):
    fields = dict(fields)
    p = presets.override(presets.get(fields.pop("preset")), **fields)
    with pytest.raises(UserError, match=fragment.replace("-", r"\-")):
        objective.check_penalties(p)


def test_a_conditional_preset_takes_both_penalties():
    p = presets.override(presets.get("cdcgan_digits8"), loss="wasserstein", gp=10.0, r1=1.0)
    assert (p.gp, p.r1, p.num_classes) == (10.0, 1.0, 10)
    objective.check_penalties(p)


def _toy_penalty_gradient(middle, compiled):
    """d/dW2 of ||grad_x f||^2 for f(x) = sum(middle(2 x W1) W2) in PyNative (the default context mode)."""
    from ms_gan.nn.workarounds import compiled_in_pynative

    rng = np.random.default_rng(0)
    w1 = ms.Parameter(ms.Tensor(rng.standard_normal((4, 3)).astype(np.float32)), name="w1")
    w2 = ms.Parameter(ms.Tensor(rng.standard_normal((3, 1)).astype(np.float32)), name="w2")
    matmul = ops.MatMul()

    def net(x):
        return ops.sum(matmul(middle(matmul(x, w1) * 2.0), w2))

    input_grad = ms.grad(net, grad_position=0)
    if compiled:
        input_grad = compiled_in_pynative(input_grad)

    def squared_norm(x):
        g = input_grad(x)
        return ops.sum(g * g)

    x = ms.Tensor(rng.standard_normal((2, 4)).astype(np.float32))
    expected = 8.0 * 2 * (w1.asnumpy() @ w2.asnumpy()).ravel() @ w1.asnumpy()  # d/dw2 of 2 * 4 ||w1 w2||^2
    return ms.value_and_grad(squared_norm, None, [w2])(x)[1][0].asnumpy().ravel(), expected


def _reshaped(h):
    return ops.reshape(h, (2, 3))


def _transposed_twice(h):
    return ops.transpose(ops.transpose(h, (1, 0)), (1, 0))


@pytest.mark.parametrize("middle", [_reshaped, _transposed_twice])
def test_mindspore_pynative_still_drops_second_derivatives_through_views(middle):
    """Why PyNative compiles the penalty's input gradient (docs/mindspore_double_grad.md): eagerly, a
    backward that returns a view (Reshape's, Transpose's) is a constant to the outer derivative, so
    d/dW2 is 0. If the first assertion fails, MindSpore fixed it: drop workarounds.compiled_in_pynative."""
    assert ms.get_context("mode") == ms.PYNATIVE_MODE
    eager, expected = _toy_penalty_gradient(middle, compiled=False)
    assert np.all(eager == 0.0) and np.all(expected != 0.0)
    compiled, _ = _toy_penalty_gradient(middle, compiled=True)
    np.testing.assert_allclose(compiled, expected, rtol=1e-5)
    plain, _ = _toy_penalty_gradient(lambda h: h, compiled=False)   # no view in between: eager is right
    np.testing.assert_allclose(plain, expected, rtol=1e-5)
