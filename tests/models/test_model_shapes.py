"""Every preset's networks: output shapes and ranges, and parameter counts computed by hand."""
import os
import subprocess
import sys

import numpy as np
import pytest

import mindspore as ms

from ms_gan import presets
from ms_gan.models import build, primary
from tests.helpers import ROOT

# (G trainable params, D trainable params), computed by hand from SPEC.md; w = weights, b = biases.
EXPECTED_COUNTS = {
    # G: ConvT 64->64 k3 (36864w+64b) + 64->32 k3 (18432+32) + 32->1 k4 (512+1)
    # D: Conv 1->16 k4 (256+16) + 16->32 k3 (4608+32) + 32->1 k3 (288+1)
    "dcgan_digits8": (36928 + 18464 + 513, 272 + 4640 + 289),
    # cdcgan_digits8: G's first ConvT reads 64 + 16 (class embedding) channels (80*64*9 + 64 = 46144)
    # and the embedding 10x16 (160); D adds the projection 10 x (32*3*3) (2880)
    "cdcgan_digits8": (46144 + 18464 + 513 + 160, 272 + 4640 + 289 + 2880),
    "dcgan_digits8_plus": (36928 + 18464 + 513, 272 + 4640 + 289),   # the same networks
    # G: Dense 128->256 (33024), BN 512, 256->512 (131584), BN 1024, 512->1024 (525312), BN 2048, 1024->784 (803600)
    # D: Dense 784->512 (401920), 512->256 (131328), 256->1 (257)
    "mlp_mnist": (33024 + 512 + 131584 + 1024 + 525312 + 2048 + 803600, 401920 + 131328 + 257),
    # G: Dense 100->4096 (413696), ConvT 256->128 k4 (524416), BN 256, ConvT 128->64 (131136), BN 128, ConvT 64->1 (1025)
    # D: Conv 1->64 k4 (1088), 64->128 (131200), 128->256 (524544), Dense 4096->1 (4097)
    "dcgan_mnist28": (413696 + 524416 + 256 + 131136 + 128 + 1025, 1088 + 131200 + 524544 + 4097),
    # G: ConvT 20->512 (164352) BN 1024, 512->256 (2097408) BN 512, 256->128 (524416) BN 256, 128->64 (131136) BN 128,
    #    64->1 (1025);  D: 1->64 (1088), 64->128 (131200), 128->256 (524544), 256->512 (2097664), 512->1 k4 (8193)
    "dcgan64": (164352 + 1024 + 2097408 + 512 + 524416 + 256 + 131136 + 128 + 1025,
                1088 + 131200 + 524544 + 2097664 + 8193),
    # dcgan64 + attention(128): q,k 128->16 (2064 each), v 128->128 (16512), gamma 1; attention(64): 520, 520, 4160, 1
    # D + attention(256): 8224, 8224, 65792, 1; attention(512): 32832, 32832, 262656, 1
    "sagan64": (2920257 + 2064 * 2 + 16512 + 1 + 520 * 2 + 4160 + 1,
                2762689 + 8224 * 2 + 65792 + 1 + 32832 * 2 + 262656 + 1),
    # G: Dense 100->131072 (13238272), BN 256, Conv 128->128 k3 (147584), BN 256, 128->64 (73792), BN 128, 64->3 (1731)
    # D: 3->32 k3 (896), 32->64 (18496), BN 128, 64->128 (73856), BN 256, 128->256 (295168), Dense 256*17*17->1 (73985)
    "dcgan128_rgb": (13238272 + 256 + 147584 + 256 + 73792 + 128 + 1731,
                     896 + 18496 + 128 + 73856 + 256 + 295168 + 73985),
}


def _count(net):
    return sum(int(np.prod(p.shape)) for p in net.trainable_params())


@pytest.mark.parametrize("name", presets.names())
def test_shapes_ranges_and_parameter_counts(name):
    p = presets.get(name)
    G, D = build(p, seed=0)
    G.set_train(False)
    D.set_train(False)
    z = ms.Tensor(np.random.default_rng(0).standard_normal((3, p.z_dim)).astype(np.float32))
    y = (ms.Tensor(np.array([0, 4, 9], np.int32)),) if p.num_classes else ()
    images = primary(G(z, *y)).asnumpy()
    assert images.shape == (3, p.channels, p.image_size, p.image_size)
    assert np.all(np.abs(images) <= 1.0)
    out = primary(D(ms.Tensor(images), *y)).asnumpy()
    assert out.shape == (3, 1)
    if p.loss == "bce":
        assert np.all((out >= 0) & (out <= 1))
    assert (_count(G), _count(D)) == EXPECTED_COUNTS[name]


def test_parameter_names_are_unique_and_prefixed():
    for name in presets.names():
        p = presets.get(name)
        G, D = build(p)
        names = [q.name for q in G.get_parameters()] + [q.name for q in D.get_parameters()]
        assert len(names) == len(set(names))
        assert all(n.startswith(p.param_prefixes[0] + ".") for n in [q.name for q in G.get_parameters()])


def test_same_seed_same_weights_other_seed_other_weights():
    p = presets.get("dcgan_digits8")
    a, _ = build(p, seed=1)
    b, _ = build(p, seed=1)
    c, _ = build(p, seed=2)
    wa, wb, wc = (next(iter(n.trainable_params())).asnumpy() for n in (a, b, c))
    np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


def _tf_same_conv_transpose(x, w, stride, out_size):
    """TensorFlow conv2d_transpose(padding='SAME') in NumPy: a stride-dilated full convolution, then crop.

    x (N, Cin, H, W), w (Cin, Cout, k, k) (PyTorch/MindSpore layout). TF pads the forward conv
    of out_size -> H with total = (H-1)*s + k - out_size, before = total // 2; the transposed conv
    crops the same amounts from the full output.
    """
    n, cin, h, _ = x.shape
    k = w.shape[2]
    full = (h - 1) * stride + k
    y = np.zeros((n, w.shape[1], full, full))
    for i in range(h):
        for j in range(h):
            y[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    total = full - out_size
    before = total // 2
    return y[:, :, before:before + out_size, before:before + out_size]


def test_mnist28_first_conv_transpose_is_tensorflow_same_with_output_7():
    p = presets.get("dcgan_mnist28")
    G, _ = build(p, seed=0)
    layer = G.convt1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 256, 4, 4)).astype(np.float32)
    got = layer(ms.Tensor(x)).asnumpy()
    w = layer.weight.asnumpy().astype(np.float64)
    expected = _tf_same_conv_transpose(x.astype(np.float64), w, 2, 7) + layer.bias.asnumpy()[None, :, None, None]
    assert got.shape == (2, 128, 7, 7)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    # and TF crops 1 before and 2 after (not 2 and 1)
    assert (10 - 7) // 2 == 1


def test_building_networks_does_not_import_torch():
    """The PyTorch reference models live in the package (ms_gan.reference) but only tests and bench import them."""
    code = ("import sys, ms_gan, ms_gan.reference, ms_gan.convert, ms_gan.export\n"
            "from ms_gan import presets\nfrom ms_gan.models import build\n"
            "[build(presets.get(n)) for n in ('dcgan_digits8', 'mlp_mnist')]\n"
            "print('torch' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_sagan_attention_is_placed_by_feature_map_size():
    """attention_at names the feature-map sizes the blocks run on; their maps are N x N for N = size^2."""
    from ms_gan.models.dcgan64 import DCGAN64Discriminator, DCGAN64Generator

    p = presets.get("sagan64")
    assert p.has_attention and not presets.get("dcgan64").has_attention
    G, D = build(p)
    G.set_train(False)
    D.set_train(False)
    out = G(ms.Tensor(np.zeros((2, p.z_dim), np.float32)))
    assert [tuple(o.shape) for o in out[1:]] == [(2, 16 * 16, 16 * 16), (2, 32 * 32, 32 * 32)]
    out = D(out[0])
    assert [tuple(o.shape) for o in out[1:]] == [(2, 8 * 8, 8 * 8), (2, 4 * 4, 4 * 4)]
    assert G.attn16 is not None and G.attn8 is None and D.attn4 is not None
    with pytest.raises(ValueError, match="64"):
        DCGAN64Generator(attention_at=(64,))
    with pytest.raises(ValueError, match="2"):
        DCGAN64Discriminator(attention_at=(2,))
