"""PyTorch reference vs MindSpore, same weights (through the converter): G images, attention maps,
D outputs, and the BatchNorm / spectral-norm state a training forward writes."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindspore as ms  # noqa: E402

from ms_gan import presets  # noqa: E402
from ms_gan.reference import harness as h  # noqa: E402

TOL = 1e-5
# Documented exceptions (see the parity table in the README): MindSpore 2.10's CPU BatchNorm computes
# the training-mode batch variance with up to ~7e-6 relative error (float64 reference; torch float32:
# ~2e-7). On the sparse post-ReLU maps of dcgan128_rgb's G (normalised values up to ~35) that moves
# G's train-mode images by ~2e-5. Every other case meets TOL.
G_TOL = {("dcgan128_rgb", True): 5e-5}
BATCH = {"dcgan128_rgb": 2, "sagan64": 2}


def _tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _max_diff(torch_out, ms_out):
    return [float(np.abs(t.detach().numpy() - m.asnumpy()).max()) for t, m in zip(_tuple(torch_out), _tuple(ms_out))]


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", presets.names())
def test_forward_parity(name, train):
    # Train mode without dropout (masks cannot match across frameworks); eval mode keeps the real rate.
    p = h.parity_preset(presets.get(name)) if train else presets.get(name)
    tG, tD = h.torch_pair(p, seed=11)
    G, D = h.ms_pair(p, tG, tD)
    n = BATCH.get(name, 4)
    rng = np.random.default_rng(5)
    z = rng.standard_normal((n, p.z_dim)).astype(np.float32)
    x = rng.uniform(-1, 1, (n, p.channels, p.image_size, p.image_size)).astype(np.float32)
    # conditional presets: class labels beside the noise / images (every class-dependent table is randomised)
    y = rng.integers(0, p.num_classes, n) if p.num_classes else None
    t_y = () if y is None else (torch.from_numpy(y),)
    m_y = () if y is None else (ms.Tensor(y.astype(np.int32)),)
    for net in (tG, tD):
        net.train(train)
    G.set_train(train)
    D.set_train(train)
    with torch.no_grad():
        t_g, t_d = tG(torch.from_numpy(z), *t_y), tD(torch.from_numpy(x), *t_y)
    m_g, m_d = G(ms.Tensor(z), *m_y), D(ms.Tensor(x), *m_y)
    assert [tuple(o.shape) for o in _tuple(m_g)] == [tuple(o.shape) for o in _tuple(t_g)]
    assert [tuple(o.shape) for o in _tuple(m_d)] == [tuple(o.shape) for o in _tuple(t_d)]
    assert tuple(_tuple(m_d)[0].shape) == (n, 1)
    g_diff, d_diff = _max_diff(t_g, m_g), _max_diff(t_d, m_d)
    # State written by the forward: BN running statistics (train mode), spectral-norm u and v.
    g_state, g_where = h.state_diff(p, G, "G", tG)
    d_state, d_where = h.state_diff(p, D, "D", tD)
    print(f"PARITY forward {name} {'train' if train else 'eval'}: G {g_diff} D {d_diff} "
          f"state G {g_state:.2e} D {d_state:.2e}")
    assert max(g_diff) < G_TOL.get((name, train), TOL), f"G outputs (image, attention maps) differ by {g_diff}"
    assert max(d_diff) < TOL, f"D outputs differ by {d_diff}"
    assert g_state < TOL, f"G state differs by {g_state} at {g_where}"
    assert d_state < TOL, f"D state differs by {d_state} at {d_where}"
    if train and any(k.endswith("running_var") for k in tG.state_dict()):
        # torch's running_var takes the unbiased batch variance: check MindSpore does the same.
        assert any(float((v - 1).abs().max()) > 0.01 for k, v in tG.state_dict().items() if k.endswith("running_var"))


def test_generators_tanh_is_accurate_where_images_saturate():
    """MindSpore 2.10's CPU tanh kernel errs by up to 1e-4 for |x| in [3, 5] (it even returns
    1.0000098 at x = 5); ms_gan.nn.workarounds.Tanh, used by every G, must not."""
    from mindspore import ops

    from ms_gan.nn.workarounds import Tanh

    x = np.linspace(-12, 12, 8001).astype(np.float32)
    exact = np.tanh(x.astype(np.float64))
    ours = Tanh()(ms.Tensor(x)).asnumpy()
    assert np.abs(ours - exact).max() < 1e-6
    assert ours.max() <= 1.0 and ours.min() >= -1.0
    kernel_err = np.abs(ops.tanh(ms.Tensor(x)).asnumpy() - exact).max()
    print(f"MindSpore's own CPU tanh: max error {kernel_err:.2e}")
