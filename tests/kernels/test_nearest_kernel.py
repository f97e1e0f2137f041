"""ms_gan.kernels' nearest 2x upsampling (``nearest.cc``) against MindSpore's ResizeNearestNeighborV2 and
PyTorch: output and input gradient bit for bit, PyNative and graph mode; eval mode and export keep
MindSpore's op. Skipped with the reason when the kernels cannot be built here."""
import numpy as np
import pytest

from ms_gan import kernels
from tests.kernels.test_dense_kernels import library, mode   # noqa: F401  (fixtures)
from tests.kernels.test_kernels import _with_kernels

torch = pytest.importorskip("torch")

SHAPES = [(2, 3, 5, 7), (1, 1, 1, 1), (4, 128, 16, 16), (3, 64, 33, 9)]


def _upsample(kernels_mode):
    from ms_gan.nn.workarounds import Upsample2x

    cell = _with_kernels(kernels_mode, Upsample2x)
    cell.set_train(True)
    return cell


def _output_and_dx(cell, x, dy, mode):
    import mindspore as ms
    from mindspore import ops

    def loss(x):
        return ops.sum(cell(x) * dy)

    grad_fn = ms.value_and_grad(loss, 0)
    if mode == "graph":
        grad_fn = ms.jit(grad_fn)
    _, dx = grad_fn(x)
    return cell(x).asnumpy(), dx.asnumpy()


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_mindspore_bit_for_bit_and_torch(library, mode, shape):
    import mindspore as ms

    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal((shape[0], shape[1], 2 * shape[2], 2 * shape[3]), dtype=np.float32)
    custom = _upsample("custom")
    assert custom.custom_upsample is not None
    native = _upsample("native")
    assert native.custom_upsample is None
    y_c, dx_c = _output_and_dx(custom, ms.Tensor(x), ms.Tensor(dy), mode)
    y_n, dx_n = _output_and_dx(native, ms.Tensor(x), ms.Tensor(dy), mode)
    np.testing.assert_array_equal(y_c, y_n)
    np.testing.assert_array_equal(dx_c, dx_n)   # each 2x2 block summed in MindSpore's order
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.interpolate(xt, scale_factor=2, mode="nearest")
    (yt * torch.tensor(dy)).sum().backward()
    np.testing.assert_array_equal(y_c, yt.detach().numpy())
    np.testing.assert_allclose(dx_c, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_eval_mode_uses_mindspore_unless_asked_and_export_swaps_it(library):
    from ms_gan import device, export, presets
    from ms_gan.models import build
    from ms_gan.nn.workarounds import Upsample2x

    device.setup("CPU", mode="graph")
    G, _ = _with_kernels("custom", build, presets.get("dcgan128_rgb"), 0)
    ups = [cell for _, cell in G.cells_and_names() if isinstance(cell, Upsample2x)]
    assert ups and all(cell.custom_upsample is not None and not cell.kernels_in_eval for cell in ups)
    assert kernels.use_in_eval(G) >= len(ups)
    assert all(cell.kernels_in_eval for cell in ups)
    export.export_ready(G)
    assert not [cell for _, cell in G.cells_and_names() if isinstance(cell, Upsample2x)]
