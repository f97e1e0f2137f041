"""End to end: ms-gan export / sample --mindir / eval / train-classifier, the scripts, bad inputs.

Subprocesses (MindSpore device setup is once per process). ~60 s on 2 busy cores;
the learning check trains dcgan_digits8 for 2 epochs (~30 s more).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ms_gan  # noqa: F401

from ms_gan import presets
from ms_gan.models import build
from ms_gan import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHON=sys.executable)


def _run(args, **kwargs):
    return subprocess.run(args, cwd=kwargs.pop("cwd", ROOT), env=ENV, capture_output=True, text=True, timeout=600,
                          **kwargs)


def _cli(*args):
    return _run([sys.executable, "-m", "ms_gan", *args])


def _meta(name):
    return {"preset": name, "overrides": {}, "epoch": 0, "batch_in_epoch": 0, "step": 0, "seed": 0, "rng": None,
            "world": 1}


def _write_idx(path, array, magic):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with open(path, "wb") as f:
        f.write(header + array.tobytes())


def _tiny_mnist(folder):
    """A 4-file IDX MNIST folder: class c is a bright 6x6 square at position c (learnable)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28))
        for i, c in enumerate(labels):
            r, col = 2 + 2 * (c // 5) * 5, 2 + (c % 5) * 5
            images[i, r:r + 6, col:col + 6] = 255
        _write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), images, 2051)
        _write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), labels, 2049)
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export_eval")
    G, D = build(presets.get("dcgan_digits8"), seed=0)
    ckpt = str(folder / "digits8.ckpt")
    checkpoint.save(ckpt, [G, D], _meta("dcgan_digits8"))
    # A checkpoint that says dcgan_digits8 but holds another preset's networks.
    G2, D2 = build(presets.get("mlp_mnist"), seed=0)
    G2.update_parameters_name("x.")
    wrong = str(folder / "wrong_preset.ckpt")
    checkpoint.save(wrong, [G2, D2], _meta("dcgan_digits8"))
    big = str(folder / "big.npy")
    np.save(big, np.zeros((30, 28, 28), np.uint8))
    return {"dir": folder, "ckpt": ckpt, "wrong": wrong, "big": big, "mnist": _tiny_mnist(str(folder / "mnist"))}


def test_train_classifier_on_an_idx_mnist_folder(files):
    out = str(files["dir"] / "mnist_classifier.ckpt")
    proc = _cli("train-classifier", "--data", files["mnist"], "--out", out, "--epochs", "3", "--batch-size", "20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.load(open(out + ".json"))
    assert meta["resolution"] == 28 and meta["dataset"].startswith("mnist:")
    assert meta["n_train"] == 120 and meta["n_heldout"] == 40 and meta["heldout_split"] == "t10k"
    assert 0.0 <= meta["heldout_accuracy"] <= 1.0 and len(meta["sha256"]) == 64
    files["classifier28"] = out


def test_scripts_export_sample_and_eval(files):
    folder = files["dir"]
    mindir = str(folder / "g.mindir")
    proc = _run(["bash", os.path.join(ROOT, "scripts", "run_export.sh"), files["ckpt"], "MINDIR", mindir])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.isfile(mindir) and os.path.isfile(mindir + ".json")
    grid = str(folder / "grid.png")
    proc = _cli("sample", "--mindir", mindir, "--n", "16", "--out", grid)
    assert proc.returncode == 0 and os.path.getsize(grid) > 0, proc.stderr[-2000:]
    out = str(folder / "ckpt_metrics.json")
    proc = _run(["bash", os.path.join(ROOT, "scripts", "run_eval.sh"), files["ckpt"], "builtin", "--n", "300",
                 "--out", out])
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.load(open(out))
    summary = report["summary"]
    for key in ("fcd", "kid_mean", "kid_std", "classifier_score", "precision", "recall", "classes_present",
                "class_kl_to_uniform", "d_accuracy_real", "d_accuracy_fake"):
        assert key in summary and np.isfinite(summary[key]), key
    assert set(report["baseline"]) >= {"fcd", "kid_mean", "precision", "recall"}
    assert report["generator"]["kind"] == "checkpoint" and report["n_generated"] == 300
    assert report["extractor"]["sha256"] and report["reference"] == {"data": "builtin", "split": "all", "n": 1797}
    for record in report["results"]:
        for key in ("metric", "value", "n_generated", "n_reference", "reference_split", "extractor",
                    "extractor_sha256", "seed"):
            assert key in record, (key, record)
    # The same generator through its MindIR gives the same numbers (no D there).
    out2 = str(folder / "mindir_metrics.json")
    proc = _cli("eval", "--mindir", mindir, "--n", "300", "--out", out2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report2 = json.load(open(out2))
    assert report2["generator"]["kind"] == "mindir" and "d_accuracy_real" not in report2["summary"]
    assert report2["summary"]["fcd"] == pytest.approx(summary["fcd"], rel=1e-4)


_BAD_RUNNER = r"""
import io, json, sys
import ms_gan
from ms_gan.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err, sys.stderr = sys.stderr, io.StringIO()
    try:
        code = main(argv)
    finally:
        text, sys.stderr = sys.stderr.getvalue(), err
    results.append([code, text])
print(json.dumps(results))
"""


def test_bad_inputs_give_one_line_errors_and_exit_2(files):
    folder = files["dir"]
    classifier28 = files.get("classifier28") or pytest.skip("needs the MNIST classifier test")
    cases = [
        (["eval", "--ckpt", str(folder / "missing.ckpt"), "--n", "50"], "does not exist"),
        (["eval", "--ckpt", files["ckpt"], "--classifier", str(folder / "none.ckpt")], "does not exist"),
        (["eval", "--ckpt", files["ckpt"], "--classifier", classifier28, "--n", "50"], "28x28"),
        (["eval", "--ckpt", files["ckpt"], "--data", files["big"], "--n", "50"], "no classifier for --data"),
        (["eval", "--ckpt", files["wrong"], "--n", "50"], "another preset"),
        (["eval", "--ckpt", files["ckpt"], "--mindir", "x.mindir"], "exactly one"),
        (["eval", "--ckpt", files["ckpt"], "--out", "m.txt"], ".json"),
        (["export", "--ckpt", str(folder / "missing.ckpt"), "--out", str(folder / "m.mindir")], "does not exist"),
        (["export", "--ckpt", files["ckpt"], "--format", "ONNX", "--out", str(folder / "m.mindir")], ".onnx"),
        (["export", "--ckpt", files["ckpt"], "--format", "TFLITE"], "invalid choice"),
        (["sample", "--mindir", str(folder / "missing.mindir"), "--out", str(folder / "s.png")], "does not exist"),
        (["train-classifier", "--data", str(folder / "nowhere"), "--out", str(folder / "c.ckpt")], "does not exist"),
        (["train-classifier", "--data", files["big"], "--out", str(folder / "c.ckpt")], "has no labels"),
    ]
    proc = _run([sys.executable, "-c", _BAD_RUNNER, json.dumps([c for c, _ in cases])])
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, expected), (code, text) in zip(cases, results):
        lines = [line for line in text.splitlines() if line.strip()]
        assert code == 2, (argv, code, text[-1500:])
        assert len(lines) == 1 and lines[0].startswith("ms-gan: error:"), (argv, text[-1500:])
        assert expected in lines[0], (argv, lines[0])


def test_learning_check_trained_generator_beats_untrained(files):
    """A few epochs of dcgan_digits8 on the built-in digits lower FCD below the untrained generator's."""
    run = str(files["dir"] / "run")
    proc = _cli("train", "--preset", "dcgan_digits8", "--epochs", "5", "--log-every", "0", "--out", run,
                "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = {}
    for name, ckpt in (("trained", run), ("untrained", files["ckpt"])):
        out = str(files["dir"] / f"learn_{name}.json")
        proc = _cli("eval", "--ckpt", ckpt, "--n", "500", "--out", out)
        assert proc.returncode == 0, proc.stderr[-2000:]
        scores[name] = json.load(open(out))["summary"]["fcd"]
    assert scores["trained"] < 0.9 * scores["untrained"], scores
