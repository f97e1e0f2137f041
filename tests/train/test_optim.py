"""Our Adam equals PyTorch's (eps "torch") and TensorFlow's (eps "tf"), including beta1 = 0."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Parameter

from ms_gan.train.optim import Adam


def _run_ms(init, grads, **kw):
    p = Parameter(ms.Tensor(init.astype(np.float32)), name="w")
    opt = Adam([p], **kw)
    for g in grads:
        opt((ms.Tensor(g.astype(np.float32)),))
    return p.asnumpy(), int(opt.step.asnumpy())


def _reference(init, grads, lr, beta1, beta2, eps, mode):
    p, m, v = init.astype(np.float64), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if mode == "torch":
            p = p - lr / (1 - beta1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - beta2 ** t) + eps)
        else:
            p = p - lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (np.sqrt(v) + eps)
    return p


@pytest.mark.parametrize("mode", ["torch", "tf"])
@pytest.mark.parametrize("betas", [(0.0, 0.9), (0.5, 0.999)])
def test_adam_matches_reference_formula(mode, betas):
    rng = np.random.default_rng(0)
    init = rng.standard_normal(6)
    grads = [rng.standard_normal(6) * 10 ** rng.uniform(-4, 0) for _ in range(5)]
    got, step = _run_ms(init, grads, lr=1e-2, beta1=betas[0], beta2=betas[1], eps=1e-3, eps_mode=mode)
    assert step == 5
    np.testing.assert_allclose(got, _reference(init, grads, 1e-2, *betas, 1e-3, mode), rtol=1e-5, atol=1e-6)


def test_adam_matches_torch_optim_adam():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    init = rng.standard_normal(8)
    grads = [rng.standard_normal(8) for _ in range(4)]
    got, _ = _run_ms(init, grads, lr=4e-4, beta1=0.0, beta2=0.9, eps=1e-8, eps_mode="torch")
    w = torch.nn.Parameter(torch.tensor(init, dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=4e-4, betas=(0.0, 0.9), eps=1e-8)
    for g in grads:
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(got, w.detach().numpy(), rtol=1e-5, atol=1e-7)
