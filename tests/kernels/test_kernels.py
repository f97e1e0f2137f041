"""ms_gan.kernels: the oneDNN custom-op convolutions against MindSpore's own ops and PyTorch.

Every (transposed) convolution layer shape the presets run on the kernels is checked in PyNative (output,
input and weight gradients, against MindSpore's native ops and torch); graph mode (mindspore.jit with
value_and_grad) is checked per preset on whole networks, kernels on vs off, which covers the same layers.
Skipped with the reason when the kernels cannot be built here (no C++ compiler or oneDNN headers).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from ms_gan import kernels, presets
from ms_gan.kernels import build
from tests.helpers import ROOT, assert_user_error, run_cli

torch = pytest.importorskip("torch")


def _library_or_skip():
    try:
        return str(build.library_path())
    except build.BuildUnavailable as exc:
        pytest.skip(f"ms_gan kernels unavailable: {str(exc).splitlines()[0]}")


@pytest.fixture(scope="module")
def library():
    return _library_or_skip()


def _with_kernels(mode, fn, *args, **kwargs):
    """fn(*args, **kwargs) with MS_GAN_KERNELS=mode while layers are built."""
    old = os.environ.get(kernels.ENV)
    os.environ[kernels.ENV] = mode
    try:
        return fn(*args, **kwargs)
    finally:
        if old is None:
            os.environ.pop(kernels.ENV)
        else:
            os.environ[kernels.ENV] = old


def _kernel_layers(G, D):
    from ms_gan.nn import workarounds

    return [cell for net in (G, D) for _, cell in net.cells_and_names()
            if isinstance(cell, (workarounds.Conv2d, workarounds.Conv2dTranspose)) and cell.custom_conv is not None]


def _preset_layer_shapes():
    """{(kind, cin, cout, k, stride, pad_mode, padding, input shape)} the presets run on the kernels."""
    import mindspore as ms

    from ms_gan import device
    from ms_gan.models import build as build_nets, primary

    device.setup("CPU", mode="graph")
    shapes = set()
    for name in presets.names():
        p = presets.get(name)
        G, D = _with_kernels("custom", build_nets, p, 0)
        G.set_train(True)
        D.set_train(True)
        for layer in _kernel_layers(G, D):
            def hook(cell, inputs, layer=layer):
                padding = layer.padding if not isinstance(layer.padding, list) else tuple(layer.padding)
                shapes.add((type(layer).__name__, layer.in_channels, layer.out_channels, tuple(layer.kernel_size),
                            tuple(layer.stride[-2:]), layer.pad_mode, padding, (2,) + tuple(inputs[0].shape[1:])))
            layer.custom_conv.register_forward_pre_hook(hook)
        z = ms.Tensor(np.random.default_rng(0).standard_normal((2, p.z_dim)).astype(np.float32))
        y = (ms.Tensor(np.array([0, 1], np.int32)),) if p.num_classes else ()   # conditional presets
        primary(D(primary(G(z, *y)), *y))
    return sorted(shapes, key=str)


_SHAPES = []


def _shapes():
    if not _SHAPES:
        _SHAPES.extend(_preset_layer_shapes())
    return _SHAPES


def _torch_reference(kind, x, w, stride, pads):
    """PyTorch forward with explicit (top, bottom, left, right) padding or cropping."""
    import torch.nn.functional as F

    top, bottom, left, right = pads
    if kind == "Conv2d":
        return F.conv2d(F.pad(x, (left, right, top, bottom)), w, stride=stride)
    y = F.conv_transpose2d(x, w, stride=stride)
    return y[:, :, top:y.shape[2] - bottom, left:y.shape[3] - right]


def _pads(kind, pad_mode, padding, k, s, hw, out_hw):
    if pad_mode == "valid":
        return (0, 0, 0, 0)
    if pad_mode == "same":   # TF SAME: the odd pixel at the end; for a transposed conv, of its output
        src, dst = (hw, out_hw) if kind == "Conv2d" else (out_hw, hw)
        tot = [max((d - 1) * st + kk - sr, 0) for d, st, kk, sr in zip(dst, s, k, src)]
        return (tot[0] // 2, tot[0] - tot[0] // 2, tot[1] // 2, tot[1] - tot[1] // 2)
    return tuple(padding) if isinstance(padding, tuple) else (padding,) * 4


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def test_every_preset_layer_shape_matches_native_and_torch_pynative(library):
    import mindspore as ms

    from ms_gan.nn import workarounds

    shapes = _shapes()
    assert len(shapes) >= 15, shapes   # all six presets' layers, not a few
    for i, (kind, cin, cout, k, s, pad_mode, padding, in_shape) in enumerate(shapes):
        cls = workarounds.Conv2d if kind == "Conv2d" else workarounds.Conv2dTranspose
        args = dict(stride=s, pad_mode=pad_mode, has_bias=False)
        if pad_mode == "pad":
            args["padding"] = padding
        custom = _with_kernels("custom", cls, cin, cout, k, **args)
        native = _with_kernels("native", cls, cin, cout, k, **args)
        assert custom.custom_conv is not None and native.custom_conv is None
        native.weight.set_data(custom.weight.data.copy())
        for layer in (custom, native):
            layer.set_train(True)
        rng = np.random.default_rng(i)
        x_np = rng.standard_normal(in_shape).astype(np.float32)
        x = ms.Tensor(x_np)
        y_c, y_n = custom(x), native(x)
        assert y_c.shape == y_n.shape
        dy_np = rng.standard_normal(y_c.shape).astype(np.float32)
        dy = ms.Tensor(dy_np)
        grads = {}
        for tag, layer in (("custom", custom), ("native", native)):
            def loss(x, layer=layer):
                return (layer(x) * dy).sum()
            grads[tag] = ms.value_and_grad(loss, 0, layer.trainable_params())(x)[1]
        (dx_c, (dw_c,)), (dx_n, (dw_n,)) = grads["custom"], grads["native"]
        # torch, float32
        tx = torch.tensor(x_np, requires_grad=True)
        tw = torch.tensor(custom.weight.asnumpy(), requires_grad=True)
        pads = _pads(kind, pad_mode, padding, k, s, in_shape[2:], y_c.shape[2:])
        ty = _torch_reference(kind, tx, tw, s, pads)
        (ty * torch.tensor(dy_np)).sum().backward()
        where = f"{kind} {cin}->{cout} k{k} s{s} {pad_mode} {padding} input {in_shape}"
        assert tuple(ty.shape) == tuple(y_c.shape), where
        for name, mine, nat, ref, tol in (("y", y_c, y_n, ty.detach(), 1e-5), ("dx", dx_c, dx_n, tx.grad, 1e-5),
                                          ("dw", dw_c, dw_n, tw.grad, 1e-4)):
            assert _rel(mine.asnumpy(), ref.numpy()) < tol, (where, name, "vs torch")
            assert _rel(mine.asnumpy(), nat.asnumpy()) < tol, (where, name, "vs MindSpore")


def _network_grads(net, x, dy):
    import mindspore as ms

    from ms_gan.models import primary

    def loss(x):
        return (primary(net(x)) * dy).sum()

    value, (dx, dws) = ms.jit(ms.value_and_grad(loss, 0, net.trainable_params()))(x)
    return value.asnumpy(), dx.asnumpy(), [g.asnumpy() for g in dws]


@pytest.mark.slow
# Conditional presets (cdcgan_digits8) have the same convolutions as their unconditional family: covered there.
@pytest.mark.parametrize("name", [
    # sagan64 G at this seed: one of sample 1's pre-activations at G's 32x32 ReLU is 5.4e-10 from zero (float64
    # PyTorch reference), so float32 rounding decides which side of the kink it lands on, and the input gradient
    # of that sample jumps by ~7e-3 (relative) when it flips: on the AMD EPYC (AVX2 only) of 2026-12-03 the
    # kernels or MindSpore's own ops flip, depending on the state (each within 1.5e-6 of float64 when it does not;
    # bench/NOTES.md, "Session 5 integration"). Not a kernel error: a comparison this input cannot settle.
    pytest.param(n, marks=pytest.mark.xfail(reason="sagan64 G: a ReLU input 5e-10 from zero flips "
                                                   "with float32 rounding (NOTES, session 5)", strict=False)) if n == "sagan64" else n
    for n in presets.names() if presets.get(n).family != "mlp" and not presets.get(n).num_classes])
def test_graph_mode_networks_match_native(library, name):
    """jit(value_and_grad) of G and D (training mode), kernels on vs off, from the same weights."""
    import mindspore as ms
    from mindspore import nn

    from ms_gan import device
    from ms_gan.models import build as build_nets, primary

    device.setup("CPU", mode="graph")
    p = presets.get(name)
    on = _with_kernels("custom", build_nets, p, 1)
    off = _with_kernels("native", build_nets, p, 1)
    rng = np.random.default_rng(0)
    used = 0
    for net_on, net_off, x_shape in ((on[0], off[0], (2, p.z_dim)),
                                     (on[1], off[1], (2, p.channels, p.image_size, p.image_size))):
        used += len(_kernel_layers(net_on, net_on))
        for net in (net_on, net_off):
            net.set_train(True)
            for _, cell in net.cells_and_names():
                if isinstance(cell, nn.Dropout):   # two nets cannot draw the same masks
                    cell.keep_prob, cell.p = 1.0, 0.0
                if isinstance(cell, nn.BatchNorm2d):
                    # moving statistics: batch statistics of 2 samples amplify float32 rounding ~100x
                    # (dcgan128_rgb, sagan64 G: 1e-2 apart either way), which would hide a real error
                    cell.set_train(False)
        x = ms.Tensor(rng.standard_normal(x_shape).astype(np.float32))
        dy = ms.Tensor(rng.standard_normal(primary(net_off(x)).shape).astype(np.float32))
        for a, b in zip(net_on.get_parameters(), net_off.get_parameters()):   # after: spectral norm's u moved
            b.set_data(a.data.copy())   # a copy: shared data would let one net's power iteration move both
        v_on, dx_on, dw_on = _network_grads(net_on, x, dy)
        v_off, dx_off, dw_off = _network_grads(net_off, x, dy)
        assert _rel(v_on, v_off) < 1e-4
        tol = 1e-3
        assert _rel(dx_on, dx_off) < tol
        # Per parameter, relative to the network's largest gradient: a bias before a BatchNorm has an
        # exactly-zero gradient in exact arithmetic, so its float32 values are rounding noise.
        scale = max(float(np.abs(g).max()) for g in dw_off)
        for g_on, g_off, prm in zip(dw_on, dw_off, net_on.trainable_params()):
            assert float(np.abs(g_on - g_off).max()) < tol * scale, prm.name
    assert used > 0


def test_parity_iteration_passes_with_kernels_on(library, monkeypatch):
    """The parity suite's one-iteration test (PyTorch vs MindSpore) with MS_GAN_KERNELS=custom."""
    import ctypes

    from tests.parity import test_training_parity as parity

    monkeypatch.setenv(kernels.ENV, "custom")
    before = ctypes.CDLL(library).MsGanKernelsCached()
    parity.test_one_iteration_parity("dcgan_mnist28")
    assert ctypes.CDLL(library).MsGanKernelsCached() > before   # the kernels ran


def test_build_is_atomic_and_cached(library, tmp_path):
    """Two processes building into an empty cache at once: one library, both load it."""
    code = ("import sys; sys.path.insert(0, %r); from ms_gan.kernels import build; "
            "print(build.library_path())" % ROOT)
    env = dict(os.environ, MS_GAN_CACHE=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {out.strip() for out, _ in outs}
    assert len(paths) == 1
    built = list((tmp_path / "kernels").iterdir())
    assert [d.name for d in built] == [os.path.basename(os.path.dirname(paths.pop()))]   # no temp dir left
    assert built[0].name.startswith("mindspore-")


def test_forced_custom_without_compiler_is_one_line_error(tmp_path):
    result = run_cli("train", "--preset", "dcgan_digits8", "--epochs", "1", "--out", tmp_path / "run",
                     env={"MS_GAN_KERNELS": "custom", "CXX": "no-such-compiler-ms-gan",
                          "MS_GAN_CACHE": str(tmp_path / "cache")})
    assert_user_error(result, "MS_GAN_KERNELS=custom", "unavailable")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_mode_is_one_line_error(tmp_path):
    result = run_cli("train", "--preset", "dcgan_digits8", "--epochs", "1", "--out", tmp_path / "run",
                     env={"MS_GAN_KERNELS": "fast"})
    assert_user_error(result, "MS_GAN_KERNELS", "native", "custom")


def test_native_when_unavailable_says_so_once(tmp_path):
    """No compiler and no forcing: the layers use MindSpore's ops and the log says it once."""
    code = ("import sys, logging; sys.path.insert(0, %r); logging.basicConfig(level=logging.INFO); "
            "import ms_gan; from ms_gan import device; device.setup('CPU'); "
            "from ms_gan.nn import blocks; from ms_gan.models import mlp; a = blocks.conv(1, 4, 3); "
            "b = blocks.conv_t(4, 1, 3); c = blocks.Dense(3, 2); d = mlp.BatchNorm1d(4); "
            "print(a.custom_conv is None and b.custom_conv is None and c.custom_dense is None and d.custom_bn is None)"
            % ROOT)
    env = dict(os.environ, CXX="no-such-compiler-ms-gan", MS_GAN_CACHE=str(tmp_path))
    env.pop("MS_GAN_KERNELS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("True")
    assert done.stderr.count("layers use MindSpore's own ops") == 1, done.stderr


def test_without_compiler_training_says_it_in_its_first_line_and_errors_stay_one_line(tmp_path):
    """A fresh machine without g++: the run's first log line names the fallback (once), and a user error of a
    command that never trains is still exactly one line (a stray warning on stderr used to make it two)."""
    env = {"CXX": "no-such-compiler-ms-gan", "MS_GAN_CACHE": str(tmp_path / "cache"), "MS_GAN_KERNELS": ""}
    out = tmp_path / "run"
    result = run_cli("train", "--preset", "dcgan_digits8", "--epochs", "1", "--max-steps", "2", "--no-progress",
                     "--out", out, env=env)
    assert result.returncode == 0, result.stderr
    with open(out / "log.txt") as f:
        log = f.read()
    assert log.count("layers: MindSpore's own ops, no C++ compiler (no-such-compiler-ms-gan)") == 1, log
    assert log.splitlines()[0].split(" ", 2)[2].startswith("training dcgan_digits8"), log
    assert result.stdout.count("layers: MindSpore's own ops") == 1, result.stdout
    assert result.stderr.strip() == "", result.stderr
    missing = run_cli("eval", "--ckpt", tmp_path / "missing.ckpt", "--n", "50", env=env)
    assert_user_error(missing, "missing.ckpt", "does not exist")
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_quiet_waiter_waits_idle_and_restores_scheduling():
    """After the first two (thread-starting) calls, the step runs with this thread under SCHED_IDLE and the
    thread is back to SCHED_OTHER afterwards; results pass through."""
    from ms_gan import device

    device.setup("CPU", mode="graph")
    if not kernels._can_restore_scheduling():
        pytest.skip("this user may not return from SCHED_IDLE (RLIMIT_NICE < 20): quiet_waiter is off")
    seen = []

    def step(x):
        seen.append(os.sched_getscheduler(0))
        return x + 1 if not isinstance(x, tuple) else x

    wrapped = kernels.quiet_waiter(step)
    assert [wrapped(i) for i in range(4)] == [1, 2, 3, 4]
    assert seen == [os.SCHED_OTHER, os.SCHED_OTHER, os.SCHED_IDLE, os.SCHED_IDLE]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    # new input shapes compile again (an epoch's last, smaller batch): their first two calls run normally
    seen.clear()
    big, small = np.zeros((16, 2), np.float32), np.zeros((13, 2), np.float32)
    for x in (big, big, big, small, small, small, big):
        wrapped((x,))   # inside a tuple, as the steps' noise batches come
    assert seen == [os.SCHED_OTHER, os.SCHED_OTHER, os.SCHED_IDLE,
                    os.SCHED_OTHER, os.SCHED_OTHER, os.SCHED_IDLE, os.SCHED_IDLE]
