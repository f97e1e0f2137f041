"""SpectralNorm against a NumPy power iteration, numpy SVD and torch.nn.utils.spectral_norm."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

from ms_gan.errors import UserError
from ms_gan.nn.spectral_norm import SpectralNorm, spectral_norm_sigmas

# name -> (MindSpore layer factory, torch layer factory or None, input shape, dim of the output axis)
LAYERS = {
    "conv_pad4": (lambda: nn.Conv2d(3, 6, 3, stride=2, pad_mode="pad", padding=(1, 0, 2, 1), has_bias=True),
                  None, (2, 3, 7, 6), 0),
    "conv_same_nobias": (lambda: nn.Conv2d(4, 6, (3, 2), stride=1, pad_mode="same", group=2, has_bias=False),
                         None, (2, 4, 5, 5), 0),
    "convt": (lambda: nn.Conv2dTranspose(5, 4, 4, stride=2, pad_mode="pad", padding=1, has_bias=True),
              lambda torch: torch.nn.ConvTranspose2d(5, 4, 4, stride=2, padding=1, bias=True), (2, 5, 4, 4), 1),
    "convt_valid_nobias": (lambda: nn.Conv2dTranspose(6, 3, 4, stride=1, pad_mode="valid", has_bias=False),
                           lambda torch: torch.nn.ConvTranspose2d(6, 3, 4, stride=1, padding=0, bias=False),
                           (2, 6, 1, 1), 1),
    "conv_torch": (lambda: nn.Conv2d(3, 8, 4, stride=2, pad_mode="pad", padding=1, has_bias=True),
                   lambda torch: torch.nn.Conv2d(3, 8, 4, stride=2, padding=1, bias=True), (2, 3, 8, 8), 0),
    "dense": (lambda: nn.Dense(7, 5, has_bias=True),
              lambda torch: torch.nn.Linear(7, 5, bias=True), (3, 7), 0),
    "dense_nobias": (lambda: nn.Dense(9, 4, has_bias=False), None, (3, 9), 0),
}
TORCH_LAYERS = [name for name, spec in LAYERS.items() if spec[1] is not None]


def np_matrix(w, dim):
    """The weight as torch's reshape_weight_to_matrix does it, in float64."""
    w = np.moveaxis(np.asarray(w, np.float64), dim, 0)
    return w.reshape(w.shape[0], -1)


def np_power_step(w, u, dim, n_iter=1, eps=1e-12):
    """Independent NumPy spectral norm: returns (W / sigma, u, v, sigma) after n_iter iterations."""
    mat = np_matrix(w, dim)
    u = np.asarray(u, np.float64)
    v = None
    for _ in range(n_iter):
        v = mat.T @ u
        v = v / max(np.linalg.norm(v), eps)
        u = mat @ v
        u = u / max(np.linalg.norm(u), eps)
    sigma = u @ mat @ v
    return np.asarray(w, np.float64) / sigma, u, v, sigma


def make(name, seed=0, **kwargs):
    """A SpectralNorm over a fresh layer of kind `name` with a seeded random weight, u and v."""
    make_layer, _, in_shape, dim = LAYERS[name]
    rng = np.random.default_rng(seed)
    layer = make_layer()
    layer.weight.set_data(Tensor(rng.standard_normal(layer.weight.shape).astype(np.float32)))
    if layer.has_bias:
        layer.bias.set_data(Tensor(rng.standard_normal(layer.bias.shape).astype(np.float32)))
    sn = SpectralNorm(layer, seed=rng, **kwargs)
    x = Tensor(rng.standard_normal(in_shape).astype(np.float32))
    return sn, x, dim


def plain_output(sn, weight, x):
    """The wrapped layer's own construct run with `weight` (the reference for SN's op)."""
    old = sn.layer.weight.asnumpy().copy()
    sn.layer.weight.set_data(Tensor(np.asarray(weight, np.float32)))
    try:
        return sn.layer(x).asnumpy()
    finally:
        sn.layer.weight.set_data(Tensor(old))


@pytest.mark.parametrize("name", list(LAYERS))
def test_one_training_step_matches_numpy(name):
    sn, x, dim = make(name)
    w = sn.layer.weight.asnumpy().copy()
    u0 = sn.weight_u.asnumpy().copy()
    assert sn.weight_u.shape == (np_matrix(w, dim).shape[0],)
    assert sn.weight_v.shape == (np_matrix(w, dim).shape[1],)
    assert np.linalg.norm(u0) == pytest.approx(1.0, abs=1e-6)
    w_sn, u1, v1, sigma = np_power_step(w, u0, dim)

    sn.set_train(True)
    out = sn(x).asnumpy()
    np.testing.assert_allclose(sn.weight_u.asnumpy(), u1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sn.weight_v.asnumpy(), v1, rtol=1e-6, atol=1e-6)
    assert sn.sigma_value() == pytest.approx(sigma, rel=1e-6)
    # Stored u, v are the updated ones and W did not change: the eval weight is the step's weight.
    np.testing.assert_allclose(sn.normalized_weight().asnumpy(), w_sn, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, plain_output(sn, w_sn, x), rtol=1e-5, atol=1e-5)


def test_convt_uses_output_dim():
    sn, _, _ = make("convt")
    in_ch, out_ch = sn.layer.weight.shape[:2]
    assert (sn.weight_u.shape, sn.weight_v.shape) == ((out_ch,), (in_ch * 16,))


@pytest.mark.parametrize("name", ["conv_torch", "convt", "dense"])
def test_sigma_converges_to_largest_singular_value(name):
    sn, x, dim = make(name, seed=3, n_power_iterations=5)
    sn.set_train(True)
    for _ in range(60):
        sn(x)
    top = np.linalg.svd(np_matrix(sn.layer.weight.asnumpy(), dim), compute_uv=False)[0]
    assert sn.sigma_value() == pytest.approx(top, rel=1e-3)
    # The normalised weight then has spectral norm 1.
    w_sn = sn.normalized_weight().asnumpy()
    assert np.linalg.svd(np_matrix(w_sn, dim), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-3)


def test_eval_mode_keeps_u_and_is_deterministic():
    sn, x, dim = make("conv_pad4")
    sn.set_train(True)
    sn(x)
    sn.set_train(False)
    u, v, sigma = sn.weight_u.asnumpy().copy(), sn.weight_v.asnumpy().copy(), sn.sigma_value()
    first = sn(x).asnumpy()
    second = sn(x).asnumpy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(sn.weight_u.asnumpy(), u)
    np.testing.assert_array_equal(sn.weight_v.asnumpy(), v)
    assert sn.sigma_value() == sigma
    w = sn.layer.weight.asnumpy()
    mat = np_matrix(w, dim)
    np.testing.assert_allclose(first, plain_output(sn, w / (u @ mat @ v), x), rtol=1e-5, atol=1e-5)
    # The same holds in graph mode (a jit wrapper compiled while the cell is in eval mode).
    graph_out = ms.jit(_call)(sn, x).asnumpy()
    np.testing.assert_allclose(graph_out, first, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(sn.weight_u.asnumpy(), u)


def _call(net, x):
    return net(x)


def test_zero_iterations_never_moves_u():
    sn, x, dim = make("dense", n_power_iterations=0)
    u, v = sn.weight_u.asnumpy().copy(), sn.weight_v.asnumpy().copy()
    sn.set_train(True)
    sn(x)
    np.testing.assert_array_equal(sn.weight_u.asnumpy(), u)
    mat = np_matrix(sn.layer.weight.asnumpy(), dim)
    assert sn.sigma_value() == pytest.approx(u @ mat @ v, rel=1e-6)


def test_explicit_initial_vectors_and_bad_arguments():
    layer = nn.Dense(4, 3)
    u = np.array([0.0, 3.0, 4.0]) / 5.0
    v = np.ones(4) / 2.0
    sn = SpectralNorm(layer, u_init=u, v_init=Tensor(v.astype(np.float32)))
    np.testing.assert_allclose(sn.weight_u.asnumpy(), u, atol=1e-7)
    np.testing.assert_allclose(sn.weight_v.asnumpy(), v, atol=1e-7)
    a = SpectralNorm(nn.Dense(4, 3), seed=5)
    b = SpectralNorm(nn.Dense(4, 3), seed=5)
    np.testing.assert_array_equal(a.weight_u.asnumpy(), b.weight_u.asnumpy())
    with pytest.raises(UserError):
        SpectralNorm(nn.Dense(4, 3), u_init=np.ones(4))
    with pytest.raises(UserError):
        SpectralNorm(nn.ReLU())
    with pytest.raises(UserError):
        SpectralNorm(nn.Dense(4, 3), n_power_iterations=-1)


@pytest.mark.parametrize("name", TORCH_LAYERS)
def test_gradients_and_state_match_torch(name):
    torch = pytest.importorskip("torch")
    _, make_torch, in_shape, dim = LAYERS[name]
    rng = np.random.default_rng(11)
    torch.manual_seed(0)
    t_layer = torch.nn.utils.spectral_norm(make_torch(torch).double())
    w0 = rng.standard_normal(tuple(t_layer.weight_orig.shape))
    b0 = rng.standard_normal(tuple(t_layer.bias.shape)) if t_layer.bias is not None else None
    with torch.no_grad():
        t_layer.weight_orig.copy_(torch.from_numpy(w0))
        if b0 is not None:
            t_layer.bias.copy_(torch.from_numpy(b0))
    layer = LAYERS[name][0]()
    layer.weight.set_data(Tensor(w0.astype(np.float32)))
    if b0 is not None:
        layer.bias.set_data(Tensor(b0.astype(np.float32)))
    # The MindSpore cell starts from torch's own random u, v buffers.
    sn = SpectralNorm(layer, u_init=t_layer.weight_u.numpy(), v_init=t_layer.weight_v.numpy())
    sn.set_train(True)
    t_layer.train()

    def loss_fn(x, r):
        out = sn(x)
        return (out * r).sum(), out

    grad_fn = ms.value_and_grad(loss_fn, None, [sn.layer.weight], has_aux=True)
    lr = 0.05
    for _ in range(4):
        x = rng.standard_normal(in_shape)
        t_w = t_layer.weight_orig.detach().numpy().copy()
        t_layer.zero_grad()
        t_out = t_layer(torch.from_numpy(x))
        r = rng.standard_normal(tuple(t_out.shape))
        (t_out * torch.from_numpy(r)).sum().backward()
        t_u = t_layer.weight_u.numpy().copy()
        t_v = t_layer.weight_v.numpy().copy()
        t_sigma = t_u @ np_matrix(t_w, dim) @ t_v

        (_, out), (grad,) = grad_fn(Tensor(x.astype(np.float32)), Tensor(r.astype(np.float32)))
        np.testing.assert_allclose(out.asnumpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(grad.asnumpy(), t_layer.weight_orig.grad.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(sn.weight_u.asnumpy(), t_u, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sn.weight_v.asnumpy(), t_v, rtol=1e-5, atol=1e-6)
        assert sn.sigma_value() == pytest.approx(t_sigma, rel=1e-6)
        # The same SGD step on both sides, so the next power iteration sees a new W.
        with torch.no_grad():
            t_layer.weight_orig -= lr * t_layer.weight_orig.grad
        sn.layer.weight.set_data(Tensor(t_layer.weight_orig.detach().numpy().astype(np.float32)))

    # Eval mode agrees too (torch uses its stored u, v without iterating).
    t_layer.eval()
    sn.set_train(False)
    x = rng.standard_normal(in_shape)
    np.testing.assert_allclose(sn(Tensor(x.astype(np.float32))).asnumpy(),
                               t_layer(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


class _TwoLayers(nn.Cell):
    """A small net with two SpectralNorm layers, to test naming, jit and checkpoints."""

    def __init__(self, seed):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.body = nn.SequentialCell([
            SpectralNorm(nn.Conv2dTranspose(4, 6, 4, stride=2, pad_mode="pad", padding=1, has_bias=False), seed=rng),
            nn.LeakyReLU(0.2),
            SpectralNorm(nn.Conv2d(6, 3, 3, stride=1, pad_mode="pad", padding=1, has_bias=True), seed=rng),
        ])
        self.head = SpectralNorm(nn.Dense(3 * 8 * 8, 1), seed=rng)
        for param in self.trainable_params():  # MindSpore's own init is not seeded here
            param.set_data(Tensor(0.2 * rng.standard_normal(param.shape).astype(np.float32)))

    def construct(self, x):
        y = self.body(x)
        return self.head(y.reshape(y.shape[0], -1))


def _net_state(net):
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def test_parameter_names_are_unique_and_prefixed():
    net = _TwoLayers(0)
    names = [p.name for p in net.get_parameters()]
    assert len(names) == len(set(names))
    assert {"body.0.layer.weight", "body.0.weight_u", "body.0.weight_v", "body.0.sigma",
            "body.2.layer.weight", "body.2.layer.bias", "head.layer.weight", "head.weight_u"} <= set(names)
    assert sorted(p.name for p in net.trainable_params()) == [
        "body.0.layer.weight", "body.2.layer.bias", "body.2.layer.weight", "head.layer.bias", "head.layer.weight"]
    sigmas = spectral_norm_sigmas(net)
    assert sorted(sigmas) == ["body.0", "body.2", "head"]
    assert sigmas["head"] == net.head.sigma_value()


def test_pynative_and_graph_training_agree():
    rng = np.random.default_rng(1)
    xs = [Tensor(rng.standard_normal((2, 4, 4, 4)).astype(np.float32)) for _ in range(3)]
    results = {}
    for mode in ("pynative", "graph"):
        net = _TwoLayers(0)
        net.set_train(True)
        opt = nn.SGD(net.trainable_params(), learning_rate=0.1)

        def loss_fn(x):
            return (net(x) ** 2).mean()

        grad_fn = ms.value_and_grad(loss_fn, None, opt.parameters)

        def step(x):
            loss, grads = grad_fn(x)
            opt(grads)
            return loss

        run = ms.jit(step) if mode == "graph" else step
        losses = [float(run(x).asnumpy()) for x in xs]
        results[mode] = (losses, _net_state(net))
    np.testing.assert_allclose(results["graph"][0], results["pynative"][0], rtol=1e-5)
    for name, value in results["pynative"][1].items():
        np.testing.assert_allclose(results["graph"][1][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    # u and v really moved during training.
    start = _net_state(_TwoLayers(0))
    for name in ("body.0.weight_u", "body.2.weight_u", "head.weight_v"):
        assert not np.allclose(results["graph"][1][name], start[name]), name


def test_graph_step_iterates_once_per_call():
    """value_and_grad inside jit must not run the assign twice (forward + backward)."""
    sn, x, dim = make("convt")
    sn.set_train(True)
    u0 = sn.weight_u.asnumpy().copy()
    w = sn.layer.weight.asnumpy().copy()

    def loss_fn(x):
        return (sn(x) ** 2).sum()

    grad_fn = ms.value_and_grad(loss_fn, None, [sn.layer.weight])

    def step(x):
        return grad_fn(x)

    _, (grad,) = ms.jit(step)(x)
    w_sn, u1, v1, sigma = np_power_step(w, u0, dim)
    np.testing.assert_allclose(sn.weight_u.asnumpy(), u1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sn.weight_v.asnumpy(), v1, rtol=1e-6, atol=1e-6)
    assert sn.sigma_value() == pytest.approx(sigma, rel=1e-6)
    assert np.abs(grad.asnumpy()).max() > 0


def test_checkpoint_round_trip_keeps_u(tmp_path):
    net = _TwoLayers(0)
    net.set_train(True)
    x = Tensor(np.random.default_rng(2).standard_normal((2, 4, 4, 4)).astype(np.float32))
    for _ in range(3):
        net(x)
    path = str(tmp_path / "sn.ckpt")
    ms.save_checkpoint(net, path)
    other = _TwoLayers(99)
    assert not np.allclose(other.head.weight_u.asnumpy(), net.head.weight_u.asnumpy())
    not_loaded, _ = ms.load_param_into_net(other, ms.load_checkpoint(path))
    assert not not_loaded
    for name, value in _net_state(net).items():
        np.testing.assert_array_equal(_net_state(other)[name], value, err_msg=name)
    net.set_train(False)
    other.set_train(False)
    np.testing.assert_array_equal(other(x).asnumpy(), net(x).asnumpy())
    assert spectral_norm_sigmas(other) == spectral_norm_sigmas(net)


def test_dense_with_activation_and_3d_input():
    layer = nn.Dense(6, 4, activation="relu")
    sn = SpectralNorm(layer, seed=0)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 6)).astype(np.float32))
    out = sn(x).asnumpy()  # eval mode: the stored u, v
    w_sn = sn.normalized_weight().asnumpy()
    np.testing.assert_allclose(out, plain_output(sn, w_sn, x), rtol=1e-6, atol=1e-6)
    assert out.shape == (2, 3, 4) and out.min() >= 0
