"""The model-zoo style launch scripts in scripts/ (the distributed one: tests/train/test_distributed.py)."""
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

STANDALONE = os.path.join(ROOT, "scripts", "run_standalone_train.sh")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT
    env["PYTHON"] = sys.executable
    return env


@pytest.mark.parametrize("args", [[], ["--max-steps", "2"]])
def test_standalone_usage(args):
    r = subprocess.run(["bash", STANDALONE, *args], capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 2
    assert "usage: " in r.stderr and "PRESET [DATA]" in r.stderr


@pytest.mark.slow
def test_standalone_trains_into_runs_preset(tmp_path):
    r = subprocess.run(["bash", STANDALONE, "dcgan_digits8", "builtin", "--max-steps", "2", "--batch-size", "8",
                        "--no-progress"], capture_output=True, text=True, timeout=300, env=_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "runs" / "dcgan_digits8"
    assert (run / "checkpoints" / "latest.ckpt").is_file()
    assert (run / "options.json").is_file()
    assert "stopped at step 2" in r.stdout


def test_standalone_passes_a_bad_flag_to_the_cli(tmp_path):
    r = subprocess.run(["bash", STANDALONE, "no_such_preset", "--max-steps", "2"], capture_output=True, text=True,
                       timeout=120, env=_env(), cwd=tmp_path)
    assert r.returncode == 2
    assert "no_such_preset" in r.stderr and "Traceback" not in r.stderr
