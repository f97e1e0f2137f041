"""Classifiers for any labelled data, as a user runs them: train-classifier on every labelled source,
eval and --eval-every with a matching classifier on a non-digits RGB folder, mismatches refused in
one line before any work, the protocol in metrics.json and stats.jsonl. ~90 s (subprocesses)."""
import json
import os

import numpy as np
import pytest

import ms_gan  # noqa: F401

from ms_gan.errors import UserError
from ms_gan.eval import classifier as C
from tests.helpers import assert_user_error, read_jsonl, run_cli, write_mnist


def write_colour_folder(folder, n=24, size=16, seed=0):
    """Two learnable classes of RGB images: 'blue' (blue-dominant) and 'red' (red-dominant) noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        name = ("blue", "red")[i % 2]
        arr = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
        arr[..., 2 if name == "blue" else 0] += 160
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        Image.fromarray(arr, mode="RGB").save(os.path.join(folder, name, f"{i:03d}.png"))
    return str(folder)


def _untrained(path, preset_name):
    from ms_gan import checkpoint, presets
    from ms_gan.models import build

    G, D = build(presets.get(preset_name), seed=0)
    checkpoint.save(str(path), [G, D], {"preset": preset_name, "overrides": {}, "epoch": 0, "batch_in_epoch": 0,
                                        "step": 0, "seed": 0, "rng": None, "world": 1})
    return str(path)


def _train_classifier(out, *args):
    r = run_cli("train-classifier", "--out", out, "--epochs", "1", "--batch-size", "16", *args, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.load(open(str(out) + ".json"))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifiers")
    return {"root": root, "colour": write_colour_folder(root / "colour"),
            "other": write_colour_folder(root / "other", seed=1)}


def test_unlabelled_sources_are_refused_naming_what_is_missing(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((20, 8, 8), np.uint8))
    with pytest.raises(UserError, match="no labels.*'labels'"):
        C.labels_of(str(tmp_path / "x.npy"))
    np.savez(tmp_path / "x.npz", images=np.zeros((20, 8, 8), np.uint8))
    with pytest.raises(UserError, match="no labels.*'labels'"):
        C.labels_of(str(tmp_path / "x.npz"))
    from PIL import Image

    flat = tmp_path / "flat"   # images directly in the folder: no class sub-folders
    flat.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(flat / f"{i}.png")
    with pytest.raises(UserError, match="no labels: a classifier needs one sub-folder per class"):
        C.labels_of(str(flat))
    assert C.labels_of(write_colour_folder(tmp_path / "two"))[0] == ["blue", "red"]
    r = run_cli("train-classifier", "--data", tmp_path / "x.npy", "--out", tmp_path / "c.ckpt")
    assert_user_error(r, f"--data {tmp_path / 'x.npy'} has no labels", "numpy.savez")
    assert not (tmp_path / "c.ckpt").exists()


@pytest.mark.slow
def test_train_classifier_on_builtin_rgb_mnist_and_npz_records_its_metadata(work, tmp_path):
    root = work["root"]
    meta = _train_classifier(tmp_path / "b16.ckpt", "--data", "builtin", "--size", "16", "--channels", "3")
    assert (meta["resolution"], meta["channels"], meta["classes"]) == (16, 3, 10)
    images, labels, _, train_idx, hold_idx, _ = C.labelled_images("builtin", 16, 3)
    assert meta["data_fingerprint"] == C.data_fingerprint(images, labels)
    assert meta["split"]["holdout_fraction"] == 0.2 and meta["split"]["seed"] == 0
    assert meta["split"]["heldout_indices_sha256"] == C._indices_sha256(hold_idx)
    assert meta["n_train"] == len(train_idx) == 1438 and 0.0 <= meta["heldout_accuracy"] <= 1.0
    # The 8x8 fingerprint differs from the 16x16 RGB one: the fingerprint is of the data at the shape.
    assert meta["data_fingerprint"] != C.data_fingerprint(*C.labelled_images("builtin", 8, 1)[:2])

    write_mnist(str(root / "mnist"), n_train=64, n_test=16)
    meta = _train_classifier(tmp_path / "m.ckpt", "--data", root / "mnist")
    assert (meta["resolution"], meta["channels"], meta["classes"]) == (28, 1, 10)
    assert meta["heldout_split"] == "t10k" and (meta["n_train"], meta["n_heldout"]) == (64, 16)

    rng = np.random.default_rng(0)
    np.savez(root / "three.npz", images=rng.integers(0, 256, (30, 12, 12), dtype=np.uint8),
             labels=np.arange(30) % 3)
    meta = _train_classifier(tmp_path / "n.ckpt", "--data", root / "three.npz")
    assert (meta["resolution"], meta["channels"], meta["classes"]) == (12, 1, 3)
    assert meta["class_names"] == ["0", "1", "2"] and meta["n_heldout"] == 6
    # --preset gives its shape; a contradicting --size is refused before work.
    r = run_cli("train-classifier", "--data", "builtin", "--preset", "dcgan64", "--size", "32",
                "--out", tmp_path / "x.ckpt")
    assert_user_error(r, "--size 32 contradicts --preset dcgan64 (64)")


@pytest.mark.slow
def test_eval_and_eval_every_on_an_rgb_folder_with_matching_classifiers(work, tmp_path):
    colour = work["colour"]
    # dcgan128_rgb reads the 16x16 folder at 128x128 RGB; dcgan_digits8 at 8x8 gray.
    rgb = _train_classifier(tmp_path / "rgb128.ckpt", "--data", colour, "--preset", "dcgan128_rgb")
    assert (rgb["resolution"], rgb["channels"], rgb["classes"], rgb["class_names"]) == (128, 3, 2, ["blue", "red"])
    gray = _train_classifier(tmp_path / "gray8.ckpt", "--data", colour, "--preset", "dcgan_digits8")
    assert (gray["resolution"], gray["channels"], gray["classes"]) == (8, 1, 2)
    ckpt = _untrained(tmp_path / "g128.ckpt", "dcgan128_rgb")
    out = tmp_path / "metrics.json"
    r = run_cli("eval", "--ckpt", ckpt, "--data", colour, "--classifier", tmp_path / "rgb128.ckpt", "--n", "8",
                "--out", out, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trained on other data" not in r.stderr   # same data: the fingerprints match
    report = json.load(open(out))
    protocol = report["protocol"]
    assert protocol["weights_sha256"] == rgb["sha256"] and protocol["extractor"] == "lenet128rgb-folder:" + colour
    assert (protocol["input_size"], protocol["input_channels"]) == (128, 3)
    assert (protocol["n_generated"], protocol["n_reference"], protocol["reference_split"]) == (8, 24, "all")
    assert protocol["seed"] == 0 and "bilinear" in protocol["resize"]
    assert protocol["classifier_data_fingerprint"] == rgb["data_fingerprint"]
    for record in report["results"]:
        if record["extractor"] != "discriminator of dcgan128_rgb":
            assert record["protocol"]["weights_sha256"] == rgb["sha256"], record
    assert {r["comparison"] for r in report["results"]} >= {"generated_vs_reference", "real_vs_real"}
    assert np.isfinite(report["summary"]["fcd"]) and np.isfinite(report["baseline"]["fcd"])

    run = tmp_path / "run"
    r = run_cli("train", "--preset", "dcgan_digits8", "--data", colour, "--out", run, "--epochs", "1",
                "--eval-every", "1", "--eval-n", "16", "--classifier", tmp_path / "gray8.ckpt", "--no-progress",
                timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    epoch = [x for x in read_jsonl(run / "stats.jsonl") if x.get("fcd") is not None]
    assert len(epoch) == 1 and np.isfinite(epoch[0]["fcd"])
    protocol = epoch[0]["eval_protocol"]
    assert protocol["weights_sha256"] == gray["sha256"] == epoch[0]["eval_extractor_sha256"]
    assert (protocol["input_size"], protocol["input_channels"], protocol["n_generated"]) == (8, 1, 16)
    assert protocol["n_reference"] == 24 and protocol["reference_split"] == "all" and protocol["seed"] == 0
    work["gray8"] = str(tmp_path / "gray8.ckpt")
    work["g128"] = ckpt


@pytest.mark.slow
def test_mismatched_classifiers_are_refused_in_one_line_before_work(work, tmp_path):
    gray8 = work.get("gray8") or pytest.skip("needs the classifiers of the previous test")
    colour = work["colour"]
    # Shape: an 8x8 gray classifier for a 128x128 RGB generator.
    r = run_cli("eval", "--ckpt", work["g128"], "--data", colour, "--classifier", gray8, "--n", "8",
                "--out", tmp_path / "m.json")
    assert_user_error(r, f"classifier {gray8} takes 8x8 images with 1 channel(s)", "generator makes 128x128 with 3",
                      f"'ms-gan train-classifier --data {colour} --size 128 --channels 3 --out FILE'")
    assert not (tmp_path / "m.json").exists()
    # Classes: a 2-class classifier for the 10 digits.
    run = tmp_path / "run"
    r = run_cli("train", "--preset", "dcgan_digits8", "--out", run, "--eval-every", "1", "--classifier", gray8)
    assert_user_error(r, f"classifier {gray8} knows 2 classes but --data builtin has 10",
                      "'ms-gan train-classifier --data builtin --size 8 --channels 1 --out FILE'")
    assert not run.exists()
    # Same shape and classes, other images: used, with a warning that says why.
    r = run_cli("train", "--preset", "dcgan_digits8", "--data", work["other"], "--out", run, "--max-steps", "1",
                "--eval-every", "1", "--eval-n", "8", "--classifier", gray8, "--no-progress", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    warning = [line for line in r.stderr.splitlines() if line.startswith("ms-gan: warning:")]
    assert len(warning) == 1 and "was trained on other data than --data" in warning[0], r.stderr
