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


EVAL = os.path.join(ROOT, "scripts", "run_eval.sh")
EXPORT = os.path.join(ROOT, "scripts", "run_export.sh")
SHIPPED = os.path.join(ROOT, "ckpt", "dcgan_digits8.ckpt")


def test_run_eval_never_overwrites_a_report_and_says_where_it_writes(tmp_path):
    import json
    import shutil

    ckpt = tmp_path / "c.ckpt"
    shutil.copy(SHIPPED, ckpt)
    (tmp_path / "c_eval.json").write_text("an earlier report\n")
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run(["bash", EVAL, str(ckpt), "builtin", "--n", "20"], capture_output=True, text=True,
                       timeout=300, env=_env(), cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    report = tmp_path / "c_eval_2.json"
    assert f"run_eval.sh: the report goes to {report}" in r.stdout
    assert (tmp_path / "c_eval.json").read_text() == "an earlier report\n"
    assert json.loads(report.read_text())["n_generated"] == 20
    assert os.listdir(work) == []  # no ./metrics.json


def test_run_export_writes_the_default_name_its_header_states(tmp_path):
    with open(EXPORT) as f:
        header = "".join(line for line in f if line.startswith("#"))
    assert "default: generator.mindir" in header
    r = subprocess.run(["bash", EXPORT, SHIPPED], capture_output=True, text=True, timeout=300, env=_env(),
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "generator.mindir").is_file()
