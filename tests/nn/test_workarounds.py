"""ms_gan.nn.workarounds: BatchNorm1d, LeakyReLU and divide against MindSpore's own ops and PyTorch."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

from ms_gan.nn import blocks, workarounds


@pytest.mark.parametrize("use_jit", [False, True])
def test_batch_norm_1d_equals_mindspores(use_jit):
    rng = np.random.default_rng(0)
    ours = blocks.batch_norm(16, momentum=0.8, eps=1e-3, dims=1)
    theirs = nn.BatchNorm1d(16, momentum=0.8, eps=1e-3)
    assert isinstance(ours, nn.BatchNorm1d)
    for cell in (ours, theirs):
        cell.gamma.set_data(Tensor(rng.uniform(0.5, 1.5, 16).astype(np.float32)))
        cell.beta.set_data(Tensor(rng.uniform(-1, 1, 16).astype(np.float32)))
        rng = np.random.default_rng(0)   # same values for both
    weights = Tensor(rng.standard_normal((8, 16)).astype(np.float32))

    def step_fn(cell):
        def loss(x):
            return (cell(x) * weights).sum()

        grad = ms.value_and_grad(loss, 0, cell.trainable_params())

        def step(x):
            return grad(x)

        return ms.jit(step) if use_jit else step

    ours.set_train(True)
    theirs.set_train(True)
    step_ours, step_theirs = step_fn(ours), step_fn(theirs)
    for i in range(2):   # two updates of the moving statistics
        x = Tensor((rng.standard_normal((8, 16)) * 3 + i).astype(np.float32))
        (l1, (dx1, dp1)), (l2, (dx2, dp2)) = step_ours(x), step_theirs(x)
        np.testing.assert_allclose(l1.asnumpy(), l2.asnumpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dx1.asnumpy(), dx2.asnumpy(), rtol=1e-4, atol=1e-5)
        for a, b in zip(dp1, dp2):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-5)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(ours, name).asnumpy(), getattr(theirs, name).asnumpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    assert not np.allclose(ours.moving_variance.asnumpy(), 1.0)
    ours.set_train(False)
    theirs.set_train(False)
    x = Tensor(rng.standard_normal((5, 16)).astype(np.float32))
    np.testing.assert_allclose(ours(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("slope", [0.2, 0.01, 0.0, 1.0, 0.3])
def test_leaky_relu_matches_torch_exactly(slope, use_jit):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    x[0, 0, 0, :3] = 0.0                       # exact zeros take the slope branch, as in torch
    dout = rng.standard_normal(x.shape).astype(np.float32)
    cell = workarounds.LeakyReLU(slope)

    def weighted(a, d):
        return (cell(a) * d).sum()

    def fwd_bwd(a, d):
        return cell(a), ms.grad(weighted, grad_position=0)(a, d)

    step = ms.jit(fwd_bwd) if use_jit else fwd_bwd
    y, dx = step(Tensor(x), Tensor(dout))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.leaky_relu(xt, slope)
    yt.backward(torch.tensor(dout))
    np.testing.assert_array_equal(y.asnumpy(), yt.detach().numpy())
    np.testing.assert_array_equal(dx.asnumpy(), xt.grad.numpy())
    np.testing.assert_array_equal(y.asnumpy(), nn.LeakyReLU(slope)(Tensor(x)).asnumpy())


def test_leaky_relu_backward_scale_is_exact_for_every_slope():
    """The backward relies on fl(fl(1 - s) + s) == 1 in float32; check it across [0, 1]."""
    slopes = np.concatenate([np.linspace(0, 1, 100001, dtype=np.float32),
                             np.float32([1e-8, 1e-3, 0.1, 0.2, 0.3, 0.7, 0.9999999])])
    one = np.float32(1.0)
    assert np.all((one - slopes) + slopes == one)


@pytest.mark.parametrize("slope", [-0.1, 1.5])
def test_leaky_relu_rejects_slopes_outside_unit_interval(slope):
    with pytest.raises(ValueError, match="slope"):
        workarounds.LeakyReLU(slope)


def test_divide_is_the_ieee_quotient_with_its_gradients():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 7)).astype(np.float32)
    y = (rng.uniform(0.5, 2.0, (6, 7)) * rng.choice([-1, 1], (6, 7))).astype(np.float32)
    s = np.float32(1.7)
    np.testing.assert_array_equal(workarounds.divide(Tensor(x), Tensor(y)).asnumpy(), x / y)
    np.testing.assert_array_equal(workarounds.divide(Tensor(x), Tensor(s)).asnumpy(), x / s)

    def total(a, b):
        return workarounds.divide(a, b).sum()

    dx, dy = ms.jit(ms.grad(total, grad_position=(0, 1)))(Tensor(x), Tensor(y))
    np.testing.assert_allclose(dx.asnumpy(), 1.0 / y, rtol=1e-6)
    np.testing.assert_allclose(dy.asnumpy(), -x / (y * y), rtol=1e-5)
