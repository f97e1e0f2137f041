"""train --conditional and what a conditional model offers through the CLI: sample --class /
--per-class, interpolate --class, export with a class input, eval's recognition rate, exact resume,
and the one-line refusals."""
import json
import os

import numpy as np
import pytest

from tests.helpers import ROOT, assert_user_error, read_jsonl, run_cli, write_mnist

SHIPPED = os.path.join(ROOT, "ckpt", "dcgan_digits8.ckpt")


def _train(out, *extra, preset="dcgan_digits8", data="builtin"):
    return run_cli("train", "--preset", preset, "--data", data, "--out", out, "--conditional", "--batch-size", "8",
                   "--log-every", "1", "--no-progress", *extra)


def _generate(run, z, classes):
    from ms_gan.generate import load_generator, run_generator

    _, G, _ = load_generator(run)
    return run_generator(G, z, classes=np.asarray(classes, np.int32))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cond") / "run")
    r = _train(out, "--max-steps", "4")
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.slow
def test_train_records_the_classes_and_sample_makes_the_asked_class(run, tmp_path):
    options = json.load(open(os.path.join(run, "options.json")))
    assert options["overrides"] == {"batch_size": 8, "conditional": True, "num_classes": 10}
    from ms_gan import checkpoint as ckpt_io
    from ms_gan.generate import noise, preset_from_meta

    params, meta = ckpt_io.load(os.path.join(run, "checkpoints", "latest.ckpt"))
    preset = preset_from_meta(meta)
    assert preset.num_classes == 10 and "generator.class_embed.table" in params
    assert "discriminator.projection.table" in params

    r = run_cli("sample", "--ckpt", run, "--class", "7", "--n", "5", "--seed", "2", "--out", str(tmp_path / "s.npy"))
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "s.npy")
    z = noise(preset, 5, 2)
    np.testing.assert_allclose(got, _generate(run, z, [7] * 5), atol=1e-6)
    assert not np.allclose(got, _generate(run, z, [3] * 5), atol=1e-4)   # the class matters

    r = run_cli("sample", "--ckpt", run, "--per-class", "--n", "3", "--out", str(tmp_path / "p.npy"))
    assert r.returncode == 0, r.stderr
    grid = np.load(tmp_path / "p.npy")
    assert grid.shape == (30, 1, 8, 8)
    # row k = class k, the same noise down each column
    expected = _generate(run, np.tile(noise(preset, 3, 0), (10, 1)), np.repeat(np.arange(10), 3))
    np.testing.assert_allclose(grid, expected, atol=1e-6)

    r = run_cli("interpolate", "--ckpt", run, "--class", "3", "--steps", "4", "--out", str(tmp_path / "i.png"))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(tmp_path / "i.png").size[0] > Image.open(tmp_path / "i.png").size[1]


@pytest.mark.slow
def test_export_with_a_class_input_samples_and_evaluates(run, tmp_path):
    mindir = str(tmp_path / "g.mindir")
    r = run_cli("export", "--ckpt", run, "--out", mindir)
    assert r.returncode == 0, r.stderr
    side = json.load(open(mindir + ".json"))
    assert side["num_classes"] == 10 and "class labels" in side["class_input"]
    a, b = str(tmp_path / "a.npy"), str(tmp_path / "b.npy")
    assert run_cli("sample", "--mindir", mindir, "--class", "4", "--n", "6", "--out", a).returncode == 0
    assert run_cli("sample", "--ckpt", run, "--class", "4", "--n", "6", "--out", b).returncode == 0
    np.testing.assert_allclose(np.load(a), np.load(b), atol=1e-5)

    report = str(tmp_path / "r.json")
    r = run_cli("eval", "--ckpt", run, "--n", "40", "--out", report)
    assert r.returncode == 0, r.stderr
    assert "recognition_rate" in r.stdout
    s = json.load(open(report))["summary"]
    per_class = s["recognition_per_class"]
    assert sorted(per_class, key=int) == [str(k) for k in range(10)]
    # 40 images, 4 per class: the overall rate is the mean of the per-class rates
    assert abs(s["recognition_rate"] - np.mean(list(per_class.values()))) < 1e-9
    assert all(v in (0.0, 0.25, 0.5, 0.75, 1.0) for v in per_class.values())


@pytest.mark.slow
def test_resume_is_bit_identical_with_conditional(run, tmp_path):
    part = str(tmp_path / "part")   # the fixture's run is the uninterrupted 4 steps
    assert _train(part, "--max-steps", "2").returncode == 0
    r = _train(part, "--max-steps", "4", "--resume")
    assert r.returncode == 0, r.stderr
    steps = [[(s["step"], s["d_loss"], s["g_loss"]) for s in read_jsonl(os.path.join(out, "stats.jsonl"))
              if s["kind"] == "step"] for out in (run, part)]
    assert len(steps[0]) == 4 and steps[0] == steps[1]


@pytest.mark.slow
def test_cdcgan_digits8_with_mode_seeking_and_ema_resumes_bit_identically(tmp_path):
    """The preset itself (mode-seeking term, EMA of G): an interrupted run resumes to the same losses and
    the same weights, EMA included, as the uninterrupted one."""
    from ms_gan import checkpoint as ckpt_io
    from ms_gan import presets

    p = presets.get("cdcgan_digits8")
    assert p.conditional and p.mode_seeking == 1.0 and p.ema == 0.999

    def train(out, *extra):
        r = run_cli("train", "--preset", "cdcgan_digits8", "--out", out, "--batch-size", "8", "--log-every", "1",
                    "--no-progress", *extra)
        assert r.returncode == 0, r.stderr

    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    train(full, "--max-steps", "4")
    train(part, "--max-steps", "2")
    train(part, "--max-steps", "4", "--resume")
    steps = [[(s["step"], s["d_loss"], s["g_loss"]) for s in read_jsonl(os.path.join(out, "stats.jsonl"))
              if s["kind"] == "step"] for out in (full, part)]
    assert len(steps[0]) == 4 and steps[0] == steps[1]
    a, _ = ckpt_io.load(os.path.join(full, "checkpoints", "latest.ckpt"))
    b, _ = ckpt_io.load(os.path.join(part, "checkpoints", "latest.ckpt"))
    assert a.keys() == b.keys() and any("ema" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k].asnumpy(), b[k].asnumpy(), err_msg=k)


@pytest.mark.slow
def test_mnist_idx_labels_train_a_conditional_mnist28(tmp_path):
    _, labels = write_mnist(str(tmp_path / "mnist"), n_train=32)
    out = str(tmp_path / "run")
    r = _train(out, "--max-steps", "2", preset="dcgan_mnist28", data=str(tmp_path / "mnist"))
    assert r.returncode == 0, r.stderr
    options = json.load(open(os.path.join(out, "options.json")))
    assert options["overrides"]["num_classes"] == int(labels.max()) + 1


@pytest.mark.slow
def test_refusals_are_one_line(tmp_path, run):
    np.save(tmp_path / "x.npy", np.zeros((16, 8, 8), np.uint8))
    out = str(tmp_path / "never")
    assert_user_error(_train(out, data=str(tmp_path / "x.npy")), "--conditional needs class labels")
    assert not os.path.exists(out)
    assert_user_error(_train(out, preset="mlp_mnist"), "mlp_mnist", "no class-conditional form")
    assert not os.path.exists(out)
    assert_user_error(_train(out, "--mode-seeking", "-1"), "--mode-seeking must be >= 0")
    assert not os.path.exists(out)
    png = str(tmp_path / "x.png")
    assert_user_error(run_cli("sample", "--ckpt", SHIPPED, "--class", "3", "--out", png),
                      "not a class-conditional model")
    assert_user_error(run_cli("sample", "--ckpt", SHIPPED, "--per-class", "--out", png),
                      "not a class-conditional model")
    assert_user_error(run_cli("sample", "--ckpt", run, "--class", "10", "--out", png), "0..9")
    assert_user_error(run_cli("interpolate", "--ckpt", run, "--class", "12", "--out", png), "0..9")
    assert not os.path.exists(png)
