"""Evaluation with the shipped digit classifier: sensitivity, provenance, bad inputs. ~15 s."""
import numpy as np
import pytest

import ms_gan  # noqa: F401

from ms_gan import presets
from ms_gan.data import ImageSpec, load_images
from ms_gan.errors import UserError
from ms_gan.eval import classifier as C
from ms_gan.eval import evaluate as E
from ms_gan.eval import metrics
from ms_gan.generate import generate_images
from ms_gan.models import build_generator

PROVENANCE = ("metric", "value", "comparison", "n_generated", "n_reference", "reference_split", "extractor",
              "extractor_sha256", "seed")


@pytest.fixture(scope="module")
def clf():
    return C.load()


def test_fcd_orders_real_noised_and_untrained_generator(clf):
    images, _ = load_images("builtin", ImageSpec(8, 1))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    a, b = images[order[:898]], images[order[898:]]
    ref, _ = clf.predict(b)

    def fcd(x):
        feats, _ = clf.predict(np.clip(x, -1.0, 1.0))
        return metrics.frechet_feature_distance(feats, ref)

    real = fcd(a)
    slight = fcd(a + 0.1 * rng.standard_normal(a.shape).astype(np.float32))
    heavy = fcd(a + 0.5 * rng.standard_normal(a.shape).astype(np.float32))
    preset = presets.get("dcgan_digits8")
    G = build_generator(preset, seed=0)
    G.set_train(False)
    untrained = fcd(generate_images(G, preset, 898, seed=0))
    assert real < slight < heavy < untrained, (real, slight, heavy, untrained)


def test_evaluate_images_records_carry_provenance_and_a_baseline(clf):
    images, _ = load_images("builtin", ImageSpec(8, 1))
    sample = images[np.random.default_rng(1).permutation(len(images))[:300]]
    report = E.evaluate_images(sample, clf, "builtin", seed=4, kid_subsets=5)
    metrics_seen = {(r["metric"], r["comparison"]) for r in report["results"]}
    for name in ("fcd", "kid", "classifier_score", "precision", "recall", "class_coverage"):
        assert (name, "generated_vs_reference") in metrics_seen
        assert (name, "real_vs_real") in metrics_seen
    for record in report["results"]:
        assert all(key in record for key in PROVENANCE), record
        assert record["extractor_sha256"] == clf.sha256 and record["seed"] == 4
        protocol = record["protocol"]
        assert protocol["weights_sha256"] == clf.sha256 and protocol["input_size"] == 8
        assert protocol["n_generated"] == record["n_generated"] and protocol["reference_split"] == record["reference_split"]
    gen = {r["metric"]: r for r in report["results"] if r["comparison"] == "generated_vs_reference"}
    assert gen["fcd"]["n_generated"] == 300 and gen["fcd"]["n_reference"] == 1797
    assert "std" in gen["kid"] and gen["class_coverage"]["value"] == 10
    # Real digits: a near-real classifier score, high precision/recall, a small baseline FCD.
    assert report["summary"]["classifier_score"] > 8.0
    assert report["summary"]["precision"] > 0.8 and report["baseline"]["recall"] > 0.8
    assert report["baseline"]["fcd"] < 10.0


def test_quick_fcd_kid_for_the_trainer():
    preset = presets.get("dcgan_digits8")
    G = build_generator(preset, seed=0)
    G.set_train(False)
    out = E.quick_fcd_kid(G, preset, "builtin", n=200, seed=0)
    assert set(out) >= {"fcd", "kid_mean", "kid_std", "n_generated", "n_reference", "extractor_sha256", "seed"}
    protocol = out["protocol"]
    assert protocol["weights_sha256"] == out["extractor_sha256"] and protocol["n_generated"] == 200
    assert (protocol["input_size"], protocol["input_channels"], protocol["reference_split"]) == (8, 1, "all")
    assert out["fcd"] > 100.0 and np.isfinite(out["kid_mean"]) and out["n_generated"] == 200


def test_bad_inputs_are_user_errors(clf, tmp_path):
    with pytest.raises(UserError, match=r"takes images \(N, 1, 8, 8\)"):
        E.classifier_input(np.zeros((2, 3, 8, 8), np.float32), clf)
    with pytest.raises(UserError, match="takes images"):
        E.classifier_input(np.zeros((2, 1, 16, 16), np.float32), clf)
    # Reference images go through the training pipeline at the classifier's shape.
    big = tmp_path / "big.npy"
    np.save(big, np.full((20, 28, 28), 255, np.uint8))
    images, split, labels = E.reference_images(str(big), 8, 1)
    assert images.shape == (20, 1, 8, 8) and split == "all" and labels is None and np.allclose(images, 1.0)
    with pytest.raises(UserError, match="exactly one"):
        E.load_source(None, None)
