"""Checkpoints written before the networks were explicit classes (positional parameter names) still load."""
import json
import os

import numpy as np
import pytest

import mindspore as ms

from ms_gan import presets
from ms_gan.models import build
from ms_gan.models.old_names import rename
from ms_gan import checkpoint
from ms_gan.train.optim import Adam
from tests.helpers import run_cli

HERE = os.path.dirname(os.path.abspath(__file__))


def _old_names():
    with open(os.path.join(HERE, "old_parameter_names.json")) as f:
        return json.load(f)["presets"]


# the presets that existed when names were positional (later ones, like dcgan_digits8_plus, never had them)
@pytest.mark.parametrize("name", sorted(_old_names()))
def test_every_old_name_maps_to_todays_name_in_order(name):
    """The names the previous code gave (recorded in old_parameter_names.json) become today's, one to one."""
    p = presets.get(name)
    G, D = build(p)
    for role, net in (("G", G), ("D", D)):
        old = _old_names()[name][role]
        new = list(rename({n: None for n in old}, name, p.param_prefixes))
        assert new == [q.name for q in net.get_parameters()], role


def test_optimizer_and_ema_copies_are_renamed_and_other_names_kept():
    p = presets.get("sagan64")
    names = {"opt_d.v.discriminator.body.attentions.1.gamma": "opt_d.v.discriminator.attn4.gamma",
             "ema.generator.body.layers.0.0.layer.weight": "ema.generator.convt1.layer.weight",
             "generator.body.layers.3.1.moving_mean": "generator.bn4.moving_mean",
             "opt_g.step": "opt_g.step", "generator.convt1.weight_u": "generator.convt1.weight_u"}
    assert rename(dict.fromkeys(names), p.name, p.param_prefixes) == dict.fromkeys(names.values())


# ckpt/dcgan_digits8.ckpt as shipped before the change: G, D and both Adam states, positional names.
_DIGITS8_OLD = {
    "generator.convt1": "generator.body.layers.0.0", "generator.convt2": "generator.body.layers.1.0",
    "generator.convt3": "generator.body.layers.2.0", "discriminator.conv1": "discriminator.body.layers.0.0",
    "discriminator.conv2": "discriminator.body.layers.1.0", "discriminator.conv3": "discriminator.body.layers.2.0",
}


def _to_old(name):
    for new, old in _DIGITS8_OLD.items():
        name = name.replace(new + ".", old + ".")
    return name


def test_checkpoint_with_old_names_samples_like_the_same_weights_under_new_names(tmp_path):
    p = presets.get("dcgan_digits8")
    G, D = build(p, seed=5)
    opt_g = Adam(G.trainable_params(), p.lr_g, prefix="opt_g")
    opt_d = Adam(D.trainable_params(), p.lr_d, prefix="opt_d")
    for i, q in enumerate(opt_g.get_parameters()):
        q.set_data(ms.Tensor(np.full(q.shape, 0.01 * (i + 1), np.float32)))
    meta = {"preset": p.name, "overrides": {}, "epoch": 1, "batch_in_epoch": 0, "step": 113, "seed": 5,
            "rng": None, "world": 1}
    checkpoint.save(str(tmp_path / "new.ckpt"), [G, D, opt_g, opt_d], meta)
    for cell in (G, D, opt_g, opt_d):
        for q in cell.get_parameters():
            q.name = _to_old(q.name)
    assert "opt_g.m.generator.body.layers.0.0.weight" in [q.name for q in opt_g.get_parameters()]
    checkpoint.save(str(tmp_path / "old.ckpt"), [G, D, opt_g, opt_d], meta)

    new_params, _ = checkpoint.load(str(tmp_path / "new.ckpt"))
    old_params, _ = checkpoint.load(str(tmp_path / "old.ckpt"))
    assert list(old_params) == list(new_params)
    for key, value in new_params.items():
        np.testing.assert_array_equal(old_params[key].asnumpy(), value.asnumpy(), err_msg=key)

    for which in ("old", "new"):
        result = run_cli("sample", "--ckpt", tmp_path / f"{which}.ckpt", "--n", 8, "--out", tmp_path / f"{which}.npy")
        assert result.returncode == 0, result.stderr
    images = np.load(tmp_path / "new.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "old.npy"), images)
    assert images.std() > 0.01
