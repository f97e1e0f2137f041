"""Losses on hand-computed values, and the L2 penalty's exact contribution."""
import math

import numpy as np
import pytest

import mindspore as ms

from ms_gan import presets
from ms_gan.models import build
from ms_gan.train.losses import LossFamily, bce, bce_with_logits, hinge_d_fake, hinge_d_real, hinge_g, l2_half
from ms_gan.train.optim import Adam
from ms_gan.train.steps import build_steps


def T(values):
    return ms.Tensor(np.asarray(values, dtype=np.float32))


def test_bce_on_probabilities():
    # -(log 0.8 + log(1-0.4)) / 2 for targets 1, 0
    got = float(bce(T([0.8, 0.4]), T([1.0, 0.0])).asnumpy())
    assert got == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2, rel=1e-6)
    # saturated probabilities stay finite: log clamped at -100 like torch.nn.BCELoss
    assert float(bce(T([0.0]), T([1.0])).asnumpy()) == pytest.approx(100.0)


def test_bce_with_logits_is_stable():
    x = [2.0, -1.0, 50.0, -50.0]
    t = [1.0, 0.0, 0.0, 1.0]
    expected = np.mean([math.log1p(math.exp(-2.0)), math.log1p(math.exp(-1.0)), 50.0, 50.0])
    assert float(bce_with_logits(T(x), T(t)).asnumpy()) == pytest.approx(expected, rel=1e-6)


def test_hinge_losses_by_hand():
    real, fake = T([2.0, 0.5, -1.0]), T([-2.0, 0.0, 1.5])
    assert float(hinge_d_real(real).asnumpy()) == pytest.approx((0 + 0.5 + 2.0) / 3)
    assert float(hinge_d_fake(fake).asnumpy()) == pytest.approx((0 + 1.0 + 2.5) / 3)
    assert float(hinge_g(fake).asnumpy()) == pytest.approx(-(-2.0 + 0.0 + 1.5) / 3)
    family = LossFamily("hinge")
    assert family.threshold == 0.0 and LossFamily("bce").threshold == 0.5


def test_l2_half_is_tf_l2_loss():
    assert float(l2_half([T([[1.0, 2.0]]), T([3.0])]).asnumpy()) == pytest.approx((1 + 4 + 9) / 2)


@pytest.mark.parametrize("use_jit", [False, True])
def test_mnist28_l2_penalty_changes_d_loss_by_exactly_the_expected_amount(use_jit):
    p = presets.get("dcgan_mnist28")
    G, D = build(p, seed=0)
    G.set_train(True)
    D.set_train(True)
    w2 = D.conv2.weight
    w3 = D.conv3.weight
    rng = np.random.default_rng(0)
    w2.set_data(T(rng.normal(0, 0.1, w2.shape)))
    w3.set_data(T(rng.normal(0, 0.1, w3.shape)))
    expected = 0.001 * (np.sum(w2.asnumpy().astype(np.float64) ** 2) / 2 + np.sum(w3.asnumpy().astype(np.float64) ** 2) / 2)
    opt_g = Adam(G.trainable_params(), 1e-4, prefix="og")
    opt_d = Adam(D.trainable_params(), 1e-4, prefix="od")
    steps = build_steps(p, G, D, opt_g, opt_d, use_jit=use_jit)
    real = T(rng.uniform(-1, 1, (4, 1, 28, 28)))
    fake = T(rng.uniform(-1, 1, (4, 1, 28, 28)))
    total, loss_real, loss_fake, _, _ = (float(v.asnumpy()) for v in steps.d(real, fake))
    assert total - (loss_real + loss_fake) == pytest.approx(expected, rel=1e-4)
    assert expected > 0.01


@pytest.mark.parametrize("use_jit", [False, True])
def test_bce_gradient_is_finite_and_torch_like_when_d_saturates(use_jit):
    """Autodiff of clamp(log p) gives inf * 0 = NaN at p = 0 or 1; torch's BCELoss gives
    (p - t) / max(p (1 - p), 1e-12) / N. A NaN here killed dcgan_digits8 after a few epochs."""
    p = np.array([0.0, 1.0, 0.3, 0.999999], np.float32)
    t = np.array([1.0, 0.0, 1.0, 1.0], np.float32)

    def f(x):
        return bce(x, T(t))

    fn = ms.value_and_grad(f)
    value, grad = (ms.jit(fn) if use_jit else fn)(T(p))
    expected = (p.astype(np.float64) - t) / np.maximum(p * (1.0 - p), 1e-12) / len(p)
    assert np.all(np.isfinite(grad.asnumpy()))
    np.testing.assert_allclose(grad.asnumpy(), expected, rtol=1e-5)
    assert float(value.asnumpy()) == pytest.approx((100 + 100 - math.log(0.3) - math.log(0.999999)) / 4, rel=1e-6)


def test_bce_propagates_nan_instead_of_hiding_it():
    assert math.isnan(float(bce(T([float("nan")]), T([1.0])).asnumpy()))


# ---------------------------------------------------------------------------- the loss registry

def _softplus(x):
    return np.logaddexp(0.0, x)


# name -> NumPy float64 (D real term, D fake term, G term), written from the papers' formulas
NUMPY_LOSSES = {
    "bce_logits": (lambda o: np.mean(_softplus(-o)), lambda o: np.mean(_softplus(o)), lambda o: np.mean(_softplus(-o))),
    "ns": (lambda o: np.mean(_softplus(-o)), lambda o: np.mean(_softplus(o)), lambda o: np.mean(_softplus(-o))),
    "hinge": (lambda o: np.mean(np.maximum(1 - o, 0)), lambda o: np.mean(np.maximum(1 + o, 0)), lambda o: -np.mean(o)),
    "lsgan": (lambda o: 0.5 * np.mean((o - 1) ** 2), lambda o: 0.5 * np.mean(o ** 2), lambda o: 0.5 * np.mean((o - 1) ** 2)),
    "wasserstein": (lambda o: -np.mean(o), lambda o: np.mean(o), lambda o: -np.mean(o)),
    "bce": (lambda p: -np.mean(np.log(p)), lambda p: -np.mean(np.log(1 - p)), lambda p: -np.mean(np.log(p))),
}


@pytest.mark.parametrize("name", sorted(NUMPY_LOSSES))
def test_every_loss_matches_its_formula(name):
    from ms_gan.train.objective import LOSSES

    assert set(LOSSES) == set(NUMPY_LOSSES)
    rng = np.random.default_rng(1)
    out = rng.uniform(0.02, 0.98, (6, 1)) if name == "bce" else rng.normal(0, 3, (6, 1))
    family = LossFamily(name)
    for term, ref in zip((family.d_real, family.d_fake, family.g), NUMPY_LOSSES[name]):
        assert float(term(T(out)).asnumpy()) == pytest.approx(ref(out.astype(np.float32).astype(np.float64)),
                                                              rel=1e-5, abs=1e-6)
    assert family.threshold == (0.5 if name in ("bce", "lsgan") else 0.0)


@pytest.mark.parametrize("name", ["dcgan_digits8", "mlp_mnist", "dcgan128_rgb"])
def test_a_logit_loss_takes_d_before_its_sigmoid(name):
    base = presets.get(name)
    hinge = presets.override(base, loss="hinge")
    assert base.d_output == "prob" and hinge.d_output == "logit"
    x = T(np.random.default_rng(0).normal(0, 1, (2, base.channels, base.image_size, base.image_size)))
    probs = build(base, seed=0)[1](x).asnumpy()
    logits = build(hinge, seed=0)[1](x).asnumpy()   # same seed: same weights, no sigmoid
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-logits.astype(np.float64))), probs, rtol=1e-5, atol=1e-7)


def test_bce_on_a_logit_d_is_refused_and_batchnorm_families_are_known():
    from mindspore import nn

    from ms_gan.errors import UserError
    from ms_gan.train.objective import D_WITH_BATCHNORM

    with pytest.raises(UserError, match="--loss bce_logits"):
        presets.override(presets.get("dcgan64"), loss="bce")
    for p in presets.PRESETS.values():
        D = build(p, seed=0)[1]
        has_bn = any(isinstance(c, nn.layer.normalization._BatchNorm) for _, c in D.cells_and_names())
        assert has_bn == (p.family in D_WITH_BATCHNORM), p.name


def test_unknown_loss_and_bad_objective_values_are_user_errors():
    from ms_gan.errors import UserError

    p = presets.get("dcgan64")
    for bad, fragment in ((dict(loss="softmax"), "--loss"), (dict(gp=-1.0), "--gp"), (dict(n_critic=0), "--n-critic"),
                          (dict(diffaugment="color,flip"), "flip")):
        with pytest.raises(UserError, match=fragment):
            presets.override(p, **bad)


def test_n_critic_repeats_the_d_part_of_the_step_order():
    assert presets.override(presets.get("dcgan64"), n_critic=3).steps == ("d", "d", "d", "g")
    digits = presets.override(presets.get("dcgan_digits8"), n_critic=2)
    assert digits.steps == ("d_fake", "d_real", "d_fake", "d_real", "g") and digits.d_updates == 4
