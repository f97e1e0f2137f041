"""Class-conditional layers and networks (ms_gan.nn.conditional): formulas, shapes, PyTorch parity."""
import numpy as np
import pytest

import mindspore as ms

from ms_gan import presets
from ms_gan.errors import UserError
from ms_gan.models import build, primary
from ms_gan.nn.conditional import ConditionalBatchNorm2d, Projection, is_conditional


def _conditional(name, k=10):
    p = presets.get(name)
    return p if p.conditional else presets.override(p, conditional=True, num_classes=k)


def test_conditional_batch_norm_is_batch_norm_then_the_class_scale_and_shift():
    rng = np.random.default_rng(0)
    cbn = ConditionalBatchNorm2d(3, 4)
    scale, shift = rng.normal(1, 0.5, (4, 3)), rng.normal(0, 0.5, (4, 3))
    cbn.class_scale.set_data(ms.Tensor(scale.astype(np.float32)))
    cbn.class_shift.set_data(ms.Tensor(shift.astype(np.float32)))
    x = rng.normal(2, 3, (5, 3, 4, 4)).astype(np.float32)
    y = np.array([0, 3, 3, 1, 2], np.int32)
    cbn.set_train(True)
    out = cbn(ms.Tensor(x), ms.Tensor(y)).asnumpy()
    mean, var = x.mean((0, 2, 3), keepdims=True), x.var((0, 2, 3), keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * scale[y][:, :, None, None] + shift[y][:, :, None, None]
    np.testing.assert_allclose(out, expected, atol=2e-5)


def test_projection_adds_the_inner_product_of_the_class_row_and_the_features():
    rng = np.random.default_rng(1)
    proj = Projection(3, 6)
    table = rng.normal(size=(3, 6)).astype(np.float32)
    proj.table.set_data(ms.Tensor(table))
    f = rng.normal(size=(4, 6)).astype(np.float32)
    y = np.array([2, 0, 1, 2], np.int32)
    np.testing.assert_allclose(proj(ms.Tensor(f), ms.Tensor(y)).asnumpy()[:, 0], (table[y] * f).sum(1), rtol=1e-5)


@pytest.mark.parametrize("name", ["cdcgan_digits8", "dcgan_mnist28", "dcgan64", "sagan64", "dcgan128_rgb"])
def test_conditional_networks_shapes_and_the_class_changes_the_output(name):
    p = _conditional(name)
    G, D = build(p, seed=0)
    assert is_conditional(G) and is_conditional(D)
    G.set_train(False)
    D.set_train(False)
    z = np.random.default_rng(0).standard_normal((2, p.z_dim)).astype(np.float32)
    z = ms.Tensor(np.concatenate([z, z]))
    y = ms.Tensor(np.array([1, 2, 5, 7], np.int32))
    # a class-dependent table that is not constant at initialisation (conditional BN starts at 1 / 0)
    for param in G.trainable_params():
        if param.name.endswith("class_shift"):
            param.set_data(ms.Tensor(np.random.default_rng(3).normal(0, 0.3, param.shape).astype(np.float32)))
    images = primary(G(z, y)).asnumpy()
    assert images.shape == (4, p.channels, p.image_size, p.image_size)
    assert not np.allclose(images[0], images[2], atol=1e-4)   # same z, other class: another image
    out = primary(D(ms.Tensor(images), y)).asnumpy()
    other = primary(D(ms.Tensor(images), ms.Tensor(np.array([0, 0, 0, 0], np.int32)))).asnumpy()
    assert out.shape == (4, 1) and not np.allclose(out, other)


def test_unconditional_networks_have_no_class_layers_and_the_same_weights():
    p = presets.get("dcgan64")
    G, D = build(p, seed=0)
    assert not is_conditional(G) and not is_conditional(D)
    # the conditional variant draws the shared layers' weights identically (tables are drawn last)
    cG, cD = build(_conditional("dcgan64"), seed=0)
    shared = {q.name: q.asnumpy() for q in cD.trainable_params()}
    for q in D.trainable_params():
        np.testing.assert_array_equal(q.asnumpy(), shared[q.name])


def test_preset_refusals():
    with pytest.raises(UserError, match="no class-conditional form"):
        presets.override(presets.get("mlp_mnist"), conditional=True)
    with pytest.raises(UserError, match="at least 2 classes"):
        presets.override(presets.get("dcgan_digits8"), conditional=True, num_classes=1)


# ---------------------------------------------------------------------------- PyTorch parity


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", ["dcgan_mnist28", "dcgan64"])
def test_conditional_batch_norm_networks_match_pytorch(name, train):
    """Conditional BN (G) and projection D against the PyTorch reference, weights through the converter."""
    torch = pytest.importorskip("torch")
    from ms_gan.reference import harness as h

    p = _conditional(name, k=5)
    tG, tD = h.torch_pair(p, seed=7)
    G, D = h.ms_pair(p, tG, tD)
    rng = np.random.default_rng(2)
    n = 3
    z = rng.standard_normal((n, p.z_dim)).astype(np.float32)
    x = rng.uniform(-1, 1, (n, p.channels, p.image_size, p.image_size)).astype(np.float32)
    y = np.array([4, 0, 2])
    for net in (tG, tD):
        net.train(train)
    G.set_train(train)
    D.set_train(train)
    with torch.no_grad():
        t_g, t_d = tG(torch.from_numpy(z), torch.from_numpy(y)), tD(torch.from_numpy(x), torch.from_numpy(y))
    m_y = ms.Tensor(y.astype(np.int32))
    m_g, m_d = G(ms.Tensor(z), m_y), D(ms.Tensor(x), m_y)
    assert np.abs(t_g.numpy() - m_g.asnumpy()).max() < 1e-5
    assert np.abs(t_d.numpy() - m_d.asnumpy()).max() < 1e-5
    g_state, where = h.state_diff(p, G, "G", tG)   # running statistics of the inner BatchNorms
    assert g_state < 1e-5, where


def test_conditional_checkpoint_converts_to_pytorch_and_back_bit_for_bit(tmp_path):
    torch = pytest.importorskip("torch")
    from ms_gan import checkpoint as ckpt_io
    from ms_gan import convert
    from ms_gan.reference import harness as h

    p = _conditional("dcgan_mnist28", k=4)
    tG, tD = h.torch_pair(p, seed=9)
    G, D = h.ms_pair(p, tG, tD)
    ckpt_io.save(str(tmp_path / "c.ckpt"), [G, D], {"preset": p.name, "overrides": {"conditional": True,
                                                                                    "num_classes": 4},
                                                    "epoch": 0, "step": 0})
    back = convert.checkpoint_to_torch(str(tmp_path / "c.ckpt"), out=str(tmp_path / "back.pt"))
    for role, net in (("G", tG), ("D", tD)):
        ref = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
        got = {k: v for k, v in back[role].items() if not k.endswith("num_batches_tracked")}
        assert got.keys() == ref.keys()
        assert all(torch.equal(got[k], ref[k]) for k in ref)
    assert "bn1.class_scale" in back["G"] and "projection.weight" in back["D"]
    assert not any(k.startswith("bn1.norm.weight") for k in back["G"])   # the inner BN has no affine


# ---------------------------------------------------------------------------- mode seeking (MSGAN)


def test_mode_seeking_pairs_of_g_batch_share_their_class():
    from ms_gan.train.trainer import class_draws

    on = presets.override(presets.get("cdcgan_digits8"), mode_seeking=1.0, g_batch_mult=1)
    off = presets.override(on, mode_seeking=0.0)
    for batch in (16, 5):   # even and odd G batches: pairs (i, i + n // 2), the odd one out drawn alone
        fake, g = (t.asnumpy() for t in class_draws(np.random.default_rng(3), batch, on, 2))
        h = batch // 2
        assert fake.shape == (2, batch) and g.shape == (batch,)
        np.testing.assert_array_equal(g[:h], g[h:2 * h])
    _, g = class_draws(np.random.default_rng(3), 16, off, 2)
    assert not np.array_equal(g.asnumpy()[:8], g.asnumpy()[8:])   # without it the labels are independent
    with pytest.raises(UserError, match="--mode-seeking"):
        presets.override(on, mode_seeking=-1.0)


def test_mode_seeking_iteration_matches_pytorch_and_adds_the_msgan_term():
    """One cdcgan_digits8 iteration with and without the mode-seeking term against the torch Recipe;
    the G losses differ by exactly 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5), computed in NumPy."""
    torch = pytest.importorskip("torch")
    from ms_gan.reference import harness as h
    from ms_gan.reference import torch_models as tm

    g_losses = {}
    for weight in (0.0, 1.0):
        p = presets.override(presets.get("cdcgan_digits8"), mode_seeking=weight)
        tG, tD = h.torch_pair(p, seed=3)
        G, D = h.ms_pair(p, tG, tD)
        steps, _, _ = h.ms_training(p, G, D)
        real, zs = h.batch(p, 8, seed=4)
        classes = h.class_plan(p, len(real), seed=4)
        with torch.no_grad():   # G's fakes in the G update: G has not moved yet (it updates last)
            fake = tG(torch.from_numpy(np.asarray(zs[-1])), torch.as_tensor(classes[2], dtype=torch.long)).numpy()
        rec = tm.Recipe(p, tG, tD)
        t_losses = rec.iteration(torch.from_numpy(real), zs, classes)
        m_losses = h.ms_iteration(p, steps, real, zs, classes)
        for t, m in zip(t_losses, m_losses):
            np.testing.assert_allclose(m[1:], t[1:], rtol=1e-5, atol=1e-6)
        assert h.update_diff(p, G, "G", tG, rec.opt_g)["max_conditioned"] < 1e-4
        g_losses[weight] = m_losses[-1][1]
    z = np.asarray(zs[-1], np.float64)
    n = len(z) // 2
    ratio = np.abs(fake[:n] - fake[n:2 * n]).mean() / np.abs(z[:n] - z[n:2 * n]).mean()
    np.testing.assert_allclose(g_losses[1.0] - g_losses[0.0], 1.0 / (ratio + 1e-5), rtol=1e-4)
