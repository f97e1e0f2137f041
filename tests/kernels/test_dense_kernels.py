"""ms_gan.kernels' Dense (+ activation) and BatchNorm1d operators (the MLP preset) against MindSpore's own
ops and PyTorch: outputs, input and parameter gradients, moving statistics; PyNative and graph mode; the
native fallback. Skipped with the reason when the kernels cannot be built here."""
import os

import numpy as np
import pytest

from ms_gan import kernels
from ms_gan.kernels import build
from tests.kernels.test_kernels import _rel, _with_kernels   # the conv kernels' tests' helpers

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def library():
    try:
        return str(build.library_path())
    except build.BuildUnavailable as exc:
        pytest.skip(f"ms_gan kernels unavailable: {str(exc).splitlines()[0]}")


@pytest.fixture(params=["pynative", "graph"])
def mode(request):
    from ms_gan import device

    device.setup("CPU", mode="graph")
    return request.param


def _grads(net, x, dy, mode):
    """(output, dx, parameter gradients) of sum(net(x) * dy), eagerly or under mindspore.jit."""
    import mindspore as ms
    from mindspore import ops

    def loss(x):
        return ops.sum(net(x) * dy)

    grad_fn = ms.value_and_grad(loss, 0, net.trainable_params())
    if mode == "graph":
        grad_fn = ms.jit(grad_fn)
    out = net(x).asnumpy()
    _, (dx, dws) = grad_fn(x)
    return out, dx.asnumpy(), [g.asnumpy() for g in dws]


ACTIVATIONS = ["none", "relu", "leaky", "tanh"]


def _activation(name):
    from mindspore import nn

    from ms_gan.nn import workarounds

    return {"none": None, "relu": nn.ReLU(), "leaky": workarounds.LeakyReLU(0.2), "tanh": workarounds.Tanh()}[name]


# mlp_mnist's Dense shapes (batch 64), plus an odd-sized one
SHAPES = [(64, 128, 256), (64, 1024, 784), (64, 784, 512), (64, 256, 1), (7, 5, 3)]


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dense_matches_native_and_torch(library, mode, act, shape):
    import mindspore as ms

    from ms_gan.nn.blocks import Dense

    n, k, o = shape
    on = _with_kernels("custom", Dense, k, o, _activation(act))
    off = _with_kernels("native", Dense, k, o, _activation(act))
    assert on.custom_dense is not None and off.custom_dense is None
    off.weight.set_data(on.weight.data.copy())
    off.bias.set_data(on.bias.data.copy())
    rng = np.random.default_rng(n * k + o)
    x = rng.standard_normal((n, k)).astype(np.float32)
    x[0, :] = 0.0   # a row of exact zeros: the activations' gradient at 0 (bias decides the sign)
    dy = rng.standard_normal((n, o)).astype(np.float32)
    for net in (on, off):
        net.set_train(True)
    y_on, dx_on, (dw_on, db_on) = _grads(on, ms.Tensor(x), ms.Tensor(dy), mode)
    y_off, dx_off, (dw_off, db_off) = _grads(off, ms.Tensor(x), ms.Tensor(dy), mode)

    tx = torch.tensor(x, requires_grad=True)
    lin = torch.nn.Linear(k, o)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(on.weight.asnumpy()))
        lin.bias.copy_(torch.tensor(on.bias.asnumpy()))
    fn = {"none": lambda v: v, "relu": torch.relu, "leaky": lambda v: torch.nn.functional.leaky_relu(v, 0.2),
          "tanh": torch.tanh}[act]
    ty = fn(lin(tx))
    (ty * torch.tensor(dy)).sum().backward()
    for ours, native, ref in ((y_on, y_off, ty.detach().numpy()), (dx_on, dx_off, tx.grad.numpy()),
                              (dw_on, dw_off, lin.weight.grad.numpy()), (db_on, db_off, lin.bias.grad.numpy())):
        assert ours.shape == ref.shape
        assert _rel(ours, ref) < 2e-5
        assert _rel(ours, native) < 2e-5


def _bn_pair(c):
    from ms_gan.models.mlp import BatchNorm1d

    on = _with_kernels("custom", BatchNorm1d, c)
    off = _with_kernels("native", BatchNorm1d, c)
    assert on.custom_bn is not None and off.custom_bn is None
    rng = np.random.default_rng(c)
    for a, b in zip(on.get_parameters(), off.get_parameters()):
        value = rng.uniform(0.5, 1.5, a.shape).astype(np.float32)
        a.set_data(type(a.data)(value))
        b.set_data(type(b.data)(value.copy()))
    return on, off


@pytest.mark.parametrize("c", [256, 1024, 3])
def test_batch_norm_matches_native_and_torch(library, mode, c):
    import mindspore as ms

    on, off = _bn_pair(c)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, c)) * 3 + 1).astype(np.float32)
    dy = rng.standard_normal((64, c)).astype(np.float32)
    gamma, beta = on.gamma.asnumpy(), on.beta.asnumpy()
    mean0, var0 = on.moving_mean.asnumpy().copy(), on.moving_variance.asnumpy().copy()
    for net in (on, off):
        net.set_train(True)
    y_on, dx_on, (dg_on, db_on) = _grads(on, ms.Tensor(x), ms.Tensor(dy), mode)
    y_off, dx_off, (dg_off, db_off) = _grads(off, ms.Tensor(x), ms.Tensor(dy), mode)

    bn = torch.nn.BatchNorm1d(c, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
        bn.running_mean.copy_(torch.tensor(mean0))
        bn.running_var.copy_(torch.tensor(var0))
    tx = torch.tensor(x, requires_grad=True)
    ty = bn(tx)
    (ty * torch.tensor(dy)).sum().backward()
    for ours, native, ref in ((y_on, y_off, ty.detach().numpy()), (dx_on, dx_off, tx.grad.numpy()),
                              (dg_on, dg_off, bn.weight.grad.numpy()), (db_on, db_off, bn.bias.grad.numpy())):
        assert _rel(ours, ref) < 1e-4
        assert _rel(ours, native) < 1e-4
    # moving statistics: _grads ran the forward twice (the output and the gradient), as both nets did
    assert _rel(on.moving_mean.asnumpy(), off.moving_mean.asnumpy()) < 1e-6
    assert _rel(on.moving_variance.asnumpy(), off.moving_variance.asnumpy()) < 1e-6
    assert not np.allclose(on.moving_mean.asnumpy(), mean0)
    # eval mode: the moving statistics, MindSpore's ops either way
    on.set_train(False)
    off.set_train(False)
    assert _rel(on(ms.Tensor(x)).asnumpy(), off(ms.Tensor(x)).asnumpy()) < 1e-6


def test_mlp_networks_match_native_in_graph_mode(library):
    """jit(value_and_grad) through mlp_mnist's G and D, kernels on vs off, from the same weights."""
    import mindspore as ms
    from mindspore import ops

    from ms_gan import device, presets
    from ms_gan.models import build as build_nets

    device.setup("CPU", mode="graph")
    p = presets.get("mlp_mnist")
    on = _with_kernels("custom", build_nets, p, 3)
    off = _with_kernels("native", build_nets, p, 3)
    assert on[0].dense1.custom_dense is not None and on[0].bn1.custom_bn is not None
    assert on[1].dense1.custom_dense is not None and off[1].dense1.custom_dense is None
    results = []
    for G, D in (on, off):
        G.set_train(True)
        D.set_train(True)
        z = ms.Tensor(np.random.default_rng(0).standard_normal((64, p.z_dim)).astype(np.float32))

        def loss(z):
            return ops.mean(D(G(z)) ** 2)

        value, grads = ms.jit(ms.value_and_grad(loss, None, G.trainable_params() + D.trainable_params()))(z)
        results.append((float(value.asnumpy()), [g.asnumpy() for g in grads],
                        [q.name for q in G.get_parameters()], G.bn3.moving_variance.asnumpy()))
    (v_on, g_on, names_on, mv_on), (v_off, g_off, names_off, mv_off) = results
    assert names_on == names_off   # checkpoints unchanged
    assert abs(v_on - v_off) < 1e-5 * abs(v_off)
    for a, b in zip(g_on, g_off):
        assert _rel(a, b) < 1e-4
    assert _rel(mv_on, mv_off) < 1e-6


def test_native_mode_and_use_native_keep_mindspore_ops(library):
    from ms_gan import presets
    from ms_gan.models import build as build_nets

    p = presets.get("mlp_mnist")
    G, D = _with_kernels("native", build_nets, p, 0)
    assert all(getattr(c, "custom_dense", None) is None and getattr(c, "custom_bn", None) is None
               for net in (G, D) for _, c in net.cells_and_names())
    G, D = _with_kernels("custom", build_nets, p, 0)
    assert G.dense4.custom_dense is not None
    kernels.use_native(G)
    assert all(getattr(c, "custom_dense", None) is None and getattr(c, "custom_bn", None) is None
               for _, c in G.cells_and_names())
    assert D.dense1.custom_dense is not None


def test_unsupported_activation_keeps_mindspore_ops(library):
    from mindspore import nn

    from ms_gan.nn.blocks import Dense

    layer = _with_kernels("custom", Dense, 4, 3, nn.Sigmoid())
    assert layer.custom_dense is None


_ITERATIONS = r'''
import sys, json
sys.path.insert(0, %(root)r)
import numpy as np
import ms_gan
from ms_gan import device, presets
from ms_gan.models import build
from ms_gan.train.optim import Adam
from ms_gan.train.steps import build_steps
from ms_gan.train.trainer import iteration_inputs
import mindspore as ms
p = presets.get(%(preset)r)
device.setup("CPU", mode="graph", threads=1)
G, D = build(p, 0)
G.set_train(True)
D.set_train(True)
opt_g = Adam(G.trainable_params(), p.lr_g, p.beta1_g, p.beta2_g, p.adam_eps, p.adam_eps_mode, prefix="opt_g")
opt_d = Adam(D.trainable_params(), p.lr_d, p.beta1_d, p.beta2_d, p.adam_eps, p.adam_eps_mode, prefix="opt_d")
steps = build_steps(p, G, D, opt_g, opt_d, use_jit=True)
rng = np.random.default_rng(0)
real = ms.Tensor(rng.uniform(-1, 1, (8, p.channels, p.image_size, p.image_size)).astype(np.float32))
out = [steps.run(i, rng, real, *iteration_inputs(rng, 8, p, steps)).asnumpy().tolist() for i in range(3)]
state = list(G.get_parameters()) + list(D.get_parameters()) + opt_g.state_parameters() + opt_d.state_parameters()
out += [q.asnumpy().ravel().tolist() for q in state]
print("RESULT" + json.dumps(out))
'''


@pytest.mark.parametrize("preset", ["mlp_mnist", "dcgan_digits8"])
def test_copy_elimination_keeps_training_bit_identical(library, preset):
    """kernels.configure's MS_DEV_SIDE_EFFECT_LOAD_ELIM=3 (no TensorMove snapshots of parameters before
    their in-place updates) trains exactly as MindSpore's default level 1: losses, parameters and optimizer
    state after 3 iterations, bit for bit; and configure sets it with the kernels on, not with them off."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    code = _ITERATIONS % {"root": ROOT, "preset": preset}
    results = []
    for level in ("1", "3"):
        env = dict(os.environ, **{kernels.LOAD_ELIM_ENV: level, kernels.ENV: "custom"})
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(done.stdout.split("RESULT", 1)[1])
    assert results[0] == results[1]
    probe = ("import sys, os; sys.path.insert(0, %r); import ms_gan; from ms_gan import device; device.setup('CPU'); "
             "print('LEVEL', os.environ.get(%r))" % (ROOT, kernels.LOAD_ELIM_ENV))
    for mode, want in (("custom", kernels.LOAD_ELIM_LEVEL), ("native", "None")):
        env = dict(os.environ, **{kernels.ENV: mode})
        env.pop(kernels.LOAD_ELIM_ENV, None)
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split("LEVEL", 1)[1].strip() == want
