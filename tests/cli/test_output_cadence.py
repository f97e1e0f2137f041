"""`ms-gan train --sample-every/--plot-every`: pictures at the chosen cadence, always at the end and on Ctrl-C,
and the cadence may change on resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, assert_user_error, run_cli, write_mnist


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    write_mnist(str(folder), n_train=32, n_test=16)   # 2 iterations per epoch at batch 16
    return str(folder)


def _train(out, data, *extra):
    return run_cli("train", "--preset", "mlp_mnist", "--data", data, "--out", out, "--batch-size", "16",
                   "--no-progress", *extra)


def _grids(out):
    return sorted(n for n in os.listdir(os.path.join(out, "samples")) if n.startswith("grid_epoch_"))


@pytest.mark.slow
def test_samples_and_plots_follow_their_cadence_and_the_end_of_the_run(tmp_path, mnist_dir):
    out = str(tmp_path / "run")
    r = _train(out, mnist_dir, "--epochs", "5", "--sample-every", "2", "--plot-every", "0")
    assert r.returncode == 0, r.stderr
    # every 2nd epoch, and the last one whatever the cadence
    assert _grids(out) == ["grid_epoch_0002.png", "grid_epoch_0004.png", "grid_epoch_0005.png"]
    # plots only at the end (--plot-every 0), and they are there when the command has exited
    for name in ("losses.png", "accuracy.png", ):
        assert os.path.getsize(os.path.join(out, "plots", name)) > 1000
    assert os.path.isfile(os.path.join(out, "samples", "grid_latest.png"))
    options = json.load(open(os.path.join(out, "options.json")))
    assert (options["sample_every"], options["plot_every"]) == ("2", "0")

    # in seconds: an hour never passes here, so only the end writes; the cadence may change on resume
    r = _train(out, mnist_dir, "--epochs", "7", "--sample-every", "3600s")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    assert _grids(out)[-2:] == ["grid_epoch_0005.png", "grid_epoch_0007.png"]
    history = json.load(open(os.path.join(out, "options.json")))["history"]
    assert history[-1]["changed"]["sample_every"] == ["2", "3600s"]
    assert history[-1]["changed"]["plot_every"] == ["0", "60s"]


@pytest.mark.slow
def test_ctrl_c_still_writes_the_final_pictures(tmp_path, mnist_dir):
    out = str(tmp_path / "run")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "ms_gan", "train", "--preset", "mlp_mnist", "--data", mnist_dir,
                             "--out", out, "--batch-size", "16", "--epochs", "100000", "--no-progress",
                             "--sample-every", "0", "--plot-every", "0"], env=env, cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(out, "metrics.csv")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:   # wait for 3 finished epochs
        if os.path.isfile(metrics) and len(open(metrics).read().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert not os.path.exists(os.path.join(out, "samples", "grid_latest.png")), "--sample-every 0 wrote early"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    samples = os.listdir(os.path.join(out, "samples"))
    assert "grid_latest.png" in samples and len(_grids(out)) == 1, samples
    assert os.path.getsize(os.path.join(out, "plots", "losses.png")) > 1000
    assert not [n for root, _, names in os.walk(out) for n in names if ".tmp" in n or n.startswith(".") and
                n != ".lock"], "a temporary file was left"


def test_bad_cadence_is_a_one_line_error(tmp_path):
    for flag, value in (("--sample-every", "2x"), ("--plot-every", "-3"), ("--plot-every", "s")):
        r = run_cli("train", "--preset", "mlp_mnist", "--out", str(tmp_path / "run"), flag, value)
        assert_user_error(r, flag, "30s")
    assert not os.path.exists(tmp_path / "run")
