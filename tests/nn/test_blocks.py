"""ms_gan.nn.blocks: the BatchNorm1d rewrite against MindSpore's own nn.BatchNorm1d."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

from ms_gan.nn import blocks


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
