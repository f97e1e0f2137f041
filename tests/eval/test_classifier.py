"""The classifiers: architecture at every size, save/load with metadata, the shipped one."""
import json
import os

import numpy as np
import pytest

import ms_gan  # noqa: F401
import mindspore as ms

from ms_gan.errors import UserError
from ms_gan.eval import classifier as C


@pytest.mark.parametrize("size,channels,classes", [(8, 1, 10), (28, 1, 10), (16, 3, 2), (48, 1, 4), (128, 3, 3)])
def test_classifier_scales_from_8_to_128_gray_or_rgb(size, channels, classes):
    net = C.build(size, seed=0, channels=channels, classes=classes)
    logits, feats = net(ms.Tensor(np.zeros((3, channels, size, size), np.float32)))
    assert logits.shape == (3, classes) and feats.shape == (3, C.FEATURES)
    assert all(p.name.startswith("classifier.") for p in net.get_parameters())
    # Halving stages above 16x16: 8, 28 none; 16 one; 48 two (-> 12); 128 four (-> 8).
    assert len(net.down) == {8: 0, 28: 0, 16: 1, 48: 2, 128: 4}[size]


def test_classifier_refuses_shapes_it_cannot_take():
    for size, channels in ((4, 1), (256, 1), (8, 2)):
        with pytest.raises(UserError, match="classifiers take"):
            C.build(size, channels=channels)


def test_8x8_gray_keeps_the_shipped_architecture():
    """The shipped file's parameters are exactly the 8x8 gray network's (names and shapes)."""
    params = ms.load_checkpoint(C.DEFAULT_CLASSIFIER)
    params.pop("ms_gan_classifier")
    net = C.build(8)
    assert {p.name: tuple(p.shape) for p in net.get_parameters()} == {k: tuple(v.shape) for k, v in params.items()}


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
    with pytest.raises(UserError, match="not an ms_gan classifier"):
        C.load(other)


def test_shipped_classifier_reaches_its_stated_heldout_accuracy():
    assert os.path.isfile(C.DEFAULT_CLASSIFIER), "ms_gan/eval/assets/digits_classifier.ckpt (package data) is missing"
    clf = C.load()
    assert clf.size == 8 and clf.meta["dataset"] == "builtin"
    assert clf.meta["heldout_accuracy"] >= 0.97
    images, labels, names, _, hold, split = C.labelled_images("builtin", 8, 1)
    assert len(hold) == clf.meta["n_heldout"] == split["n_heldout"] and names == [str(d) for d in range(10)]
    measured = C.accuracy(clf.net, images[hold], labels[hold])
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
