"""`ms-gan train` and `ms-gan sample` end to end, the way a user runs them."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT, assert_user_error, read_jsonl, run_cli, write_mnist

RUN_FILES = ("options.json", "log.txt", "stats.jsonl", "metrics.csv", "fixed_noise.npy",
             "samples/grid_latest.png", "samples/grid_epoch_0001.png", "plots/losses.png", "plots/accuracy.png",
             "checkpoints/latest.ckpt")


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    write_mnist(str(folder), n_train=48, n_test=16)
    return str(folder)


def _steps(run_dir):
    return [r for r in read_jsonl(os.path.join(run_dir, "stats.jsonl")) if r["kind"] == "step"]


def _train(out, *extra, data=None, preset="mlp_mnist", timeout=600):
    args = ["train", "--preset", preset, "--out", out, "--log-every", "1", "--no-progress", *extra]
    if data is not None:
        args += ["--data", data]
    return run_cli(*args, timeout=timeout)


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_mlp_mnist_trains_on_idx_folder_and_writes_a_complete_run_dir(tmp_path, mnist_dir, mode):
    out = str(tmp_path / "run")
    r = _train(out, "--epochs", "1", "--batch-size", "16", "--mode", mode, data=mnist_dir)
    assert r.returncode == 0, r.stderr
    for name in RUN_FILES:
        assert os.path.isfile(os.path.join(out, name)), name
    records = read_jsonl(os.path.join(out, "stats.jsonl"))
    epoch = [x for x in records if x["kind"] == "epoch"]
    assert len(epoch) == 1 and epoch[0]["step"] == 3
    for key in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "images_per_sec", "wall_time"):
        assert np.isfinite(epoch[0][key]), key
    options = json.load(open(os.path.join(out, "options.json")))
    assert options["preset"] == "mlp_mnist" and options["overrides"] == {"epochs": 1, "batch_size": 16}
    # mlp_mnist's measured choice: one thread on one core in graph mode; PyNative keeps every core
    assert options["threads"] == (1 if mode == "graph" else len(os.sched_getaffinity(0)))


def test_graph_and_pynative_give_the_same_losses(tmp_path):
    losses = {}
    for mode in ("graph", "pynative"):
        out = str(tmp_path / mode)
        r = _train(out, "--max-steps", "3", "--batch-size", "8", "--mode", mode, data="builtin")
        assert r.returncode == 0, r.stderr
        losses[mode] = [(s["d_loss"], s["g_loss"]) for s in _steps(out)]
    assert len(losses["graph"]) == 3
    np.testing.assert_allclose(losses["graph"], losses["pynative"], rtol=1e-5, atol=1e-6)


def test_resume_is_bit_identical(tmp_path):
    full = str(tmp_path / "full")
    r = _train(full, "--max-steps", "6", "--batch-size", "8", data="builtin")
    assert r.returncode == 0, r.stderr
    part = str(tmp_path / "part")
    assert _train(part, "--max-steps", "3", "--batch-size", "8", data="builtin").returncode == 0
    r = _train(part, "--max-steps", "6", "--batch-size", "8", "--resume", data="builtin")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    a = [(s["step"], s["d_loss"], s["g_loss"]) for s in _steps(full)]
    b = [(s["step"], s["d_loss"], s["g_loss"]) for s in _steps(part)]
    assert len(a) == 6 and a == b  # exact equality, not approximate


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    reference = str(tmp_path / "ref")
    assert _train(reference, "--max-steps", "40", "--batch-size", "8", "--ckpt-every", "2",
                  data="builtin").returncode == 0
    out = str(tmp_path / "killed")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "ms_gan", "train", "--preset", "mlp_mnist", "--data", "builtin",
                             "--out", out, "--max-steps", "40", "--batch-size", "8", "--ckpt-every", "2",
                             "--log-every", "1", "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = os.path.join(out, "checkpoints", "latest.ckpt")
    deadline = time.time() + 300
    while time.time() < deadline and not os.path.isfile(ckpt):
        time.sleep(0.05)
    time.sleep(0.3)  # let it get past the checkpoint, mid-epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.isfile(ckpt), "no checkpoint was written before the kill"
    r = _train(out, "--max-steps", "40", "--batch-size", "8", "--ckpt-every", "2", data="builtin")
    assert r.returncode == 0, r.stderr
    a = [(s["step"], s["d_loss"], s["g_loss"]) for s in _steps(reference)]
    b = [(s["step"], s["d_loss"], s["g_loss"]) for s in _steps(out)]
    assert a == b


def test_sample_grid_npy_and_given_noise(tmp_path):
    out = str(tmp_path / "run")
    assert _train(out, "--max-steps", "2", "--batch-size", "8", data="builtin").returncode == 0
    r = run_cli("sample", "--ckpt", out, "--n", "9", "--seed", "1", "--out", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size[0] > 28
    r = run_cli("sample", "--ckpt", os.path.join(out, "checkpoints", "latest.ckpt"), "--n", "5", "--out",
                str(tmp_path / "a.npy"))
    assert r.returncode == 0, r.stderr
    images = np.load(tmp_path / "a.npy")
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    z = np.random.default_rng(0).standard_normal((3, 128)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    for name in ("b.npy", "c.npy"):
        assert run_cli("sample", "--ckpt", out, "--noise", str(tmp_path / "z.npy"), "--out",
                       str(tmp_path / name)).returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.load(tmp_path / "c.npy"))
    assert np.load(tmp_path / "b.npy").shape == (3, 1, 28, 28)


def test_bad_inputs_give_one_line_errors_and_exit_2(tmp_path):
    assert_user_error(run_cli("train", "--preset", "nope"), "unknown preset 'nope'")
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--batch-size", "-4"), "--batch-size")
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--epochs", "0"), "--epochs")
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--data", str(tmp_path / "nowhere")), "does not exist")
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--lr-g", "nan"), "--lr-g")
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--device", "TPU"), "unknown device")
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--device", "GPU", "--max-steps", "1",
                              "--out", str(tmp_path / "gpu")), "not available")
    assert_user_error(run_cli("sample", "--ckpt", str(tmp_path / "missing.ckpt"), "--out", "x.png"), "does not exist")
    bad = tmp_path / "corrupt.ckpt"
    bad.write_bytes(os.urandom(2048))
    assert_user_error(run_cli("sample", "--ckpt", str(bad), "--out", str(tmp_path / "x.png")), "corrupt")
    (tmp_path / "empty").mkdir()
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--data", str(tmp_path / "empty")), "no images")


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    out = str(tmp_path / "nan")
    # BCE on probabilities is clamped (finite even when D saturates); logits overflow to NaN.
    r = _train(out, "--max-steps", "30", "--batch-size", "4", "--ckpt-every", "1", "--lr-d", "1e15",
               "--lr-g", "1e15", data="builtin", preset="dcgan_mnist28")
    assert_user_error(r, "at step", "last good checkpoint")
    ckpt = os.path.join(out, "checkpoints", "latest.ckpt")
    if os.path.isfile(ckpt):  # the checkpoint left behind loads and holds finite weights
        s = run_cli("sample", "--ckpt", out, "--n", "2", "--out", str(tmp_path / "after_nan.npy"))
        assert s.returncode == 0, s.stderr


def test_ema_is_saved_and_used_by_sample_unless_no_ema(tmp_path):
    out = str(tmp_path / "ema")
    r = _train(out, "--max-steps", "3", "--batch-size", "8", "--ema", "0.5", data="builtin")
    assert r.returncode == 0, r.stderr
    import mindspore as ms

    params = ms.load_checkpoint(os.path.join(out, "checkpoints", "latest.ckpt"))
    ema_keys = [k for k in params if k.startswith("ema.gen_model.")]
    assert ema_keys and all(k[4:] in params for k in ema_keys)
    run_cli("sample", "--ckpt", out, "--n", "4", "--out", str(tmp_path / "ema.npy"))
    run_cli("sample", "--ckpt", out, "--n", "4", "--no-ema", "--out", str(tmp_path / "raw.npy"))
    assert not np.array_equal(np.load(tmp_path / "ema.npy"), np.load(tmp_path / "raw.npy"))
    assert_user_error(run_cli("train", "--preset", "mlp_mnist", "--ema", "1.5"), "--ema")
