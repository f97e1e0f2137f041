"""The digit classifiers: architecture, resizing, save/load with metadata, the shipped one."""
import json
import os

import numpy as np
import pytest

import ms_gan  # noqa: F401
import mindspore as ms

from ms_gan.errors import UserError
from ms_gan.eval import classifier as C


@pytest.mark.parametrize("size", [8, 28])
def test_classifier_outputs_logits_and_features(size):
    net = C.build(size, seed=0)
    logits, feats = net(ms.Tensor(np.zeros((3, 1, size, size), np.float32)))
    assert logits.shape == (3, C.NUM_CLASSES) and feats.shape == (3, C.FEATURES)
    assert all(p.name.startswith("classifier.") for p in net.get_parameters())
    with pytest.raises(UserError, match="8x8 and 28x28"):
        C.build(16)


def test_resize_images_keeps_range_and_averages_when_shrinking():
    rng = np.random.default_rng(0)
    big = np.where(rng.random((2, 1, 64, 64)) > 0.5, 1.0, -1.0).astype(np.float32)
    small = C.resize_images(big, 8)
    assert small.shape == (2, 1, 8, 8) and small.min() >= -1 and small.max() <= 1
    # Area-like averaging of random +-1 pixels lands near 0, not on +-1 (no aliasing).
    assert np.abs(small).mean() < 0.5
    rgb = np.stack([np.full((4, 4), 1.0), np.full((4, 4), -1.0), np.full((4, 4), -1.0)])[None].astype(np.float32)
    gray = C.resize_images(rgb, 4)
    assert gray.shape == (1, 1, 4, 4)
    assert np.allclose(gray, 0.299 - 0.587 - 0.114, atol=1e-6)  # luma of (1, -1, -1)
    same = np.zeros((1, 1, 8, 8), np.float32)
    assert C.resize_images(same, 8) is not None and C.resize_images(same, 8).shape == (1, 1, 8, 8)


def test_save_load_roundtrip_keeps_predictions_metadata_and_hash(tmp_path):
    net = C.build(8, seed=3)
    meta = {"format": C.FORMAT, "resolution": 8, "dataset": "builtin", "heldout_accuracy": 0.5}
    path = str(tmp_path / "c.ckpt")
    digest = C.save(net, meta, path)
    loaded = C.load(path)
    assert loaded.sha256 == digest == C.sha256_of(path)
    assert loaded.size == 8 and loaded.meta["heldout_accuracy"] == 0.5
    side = json.load(open(path + ".json"))
    assert side["sha256"] == digest and side["resolution"] == 8
    x = np.random.default_rng(0).uniform(-1, 1, (5, 1, 8, 8)).astype(np.float32)
    f1, p1 = C.predict(net, x)
    f2, p2 = loaded.predict(x)
    assert np.array_equal(f1, f2) and np.array_equal(p1, p2)
    assert np.allclose(p1.sum(axis=1), 1.0)
    prov = loaded.provenance()
    assert prov["sha256"] == digest and prov["name"] == "lenet8-builtin"


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        C.load(str(tmp_path / "none.ckpt"))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt"):
        C.load(str(junk))
    other = str(tmp_path / "plain.ckpt")
    ms.save_checkpoint(C.build(8), other)
    with pytest.raises(UserError, match="not an ms_gan digit classifier"):
        C.load(other)


def test_shipped_classifier_reaches_its_stated_heldout_accuracy():
    assert os.path.isfile(C.DEFAULT_CLASSIFIER), "ms_gan/eval/assets/digits_classifier.ckpt (package data) is missing"
    clf = C.load()
    assert clf.size == 8 and clf.meta["dataset"] == "builtin"
    assert clf.meta["heldout_accuracy"] >= 0.97
    _, _, hold_x, hold_y, info = C.classifier_data("builtin")
    assert len(hold_x) == clf.meta["n_heldout"]
    measured = C.accuracy(clf.net, hold_x, hold_y)
    assert measured == pytest.approx(clf.meta["heldout_accuracy"], abs=1e-6)


def test_read_meta_needs_no_network_and_prefers_a_matching_json(tmp_path):
    import shutil

    meta = C.read_meta()
    assert (meta["resolution"], meta["channels"], meta["classes"]) == (8, 1, 10)
    copy = tmp_path / "c.ckpt"
    shutil.copy(C.DEFAULT_CLASSIFIER, copy)
    # No .json beside it: the checkpoint's own metadata.
    assert C.read_meta(str(copy))["resolution"] == 8
    # A stale .json (another file's sha256) is ignored.
    (tmp_path / "c.ckpt.json").write_text('{"format": "x", "resolution": 28, "sha256": "0"}')
    assert C.read_meta(str(copy))["resolution"] == 8
