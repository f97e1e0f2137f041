"""Faults injected the way users meet them, against the CLI run as a user runs it.

Classes of fault: a read-only folder, a full file system, a file where a folder is meant
(and the reverse), SIGINT at random moments (start-up included), SIGKILL before the first
checkpoint, two runs into one directory, paths with spaces and non-ASCII characters. Each
asserts the exit code, one line on stderr, no traceback and no temporary file left behind.
File systems are small tmpfs mounts (tests run as root, so permission bits stop nothing);
where mounting is not permitted those tests skip with the reason.
"""
import contextlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, assert_user_error, read_jsonl, run_cli

TINY = ("--preset", "dcgan_digits8", "--batch-size", "8", "--no-progress", "--log-every", "1")


def temp_files(*roots):
    """Files an atomic write would leave behind (their names carry '.tmp')."""
    return [os.path.join(d, f) for root in roots for d, _, files in os.walk(root) for f in files if ".tmp" in f]


def assert_clean_failure(result, code, *fragments):
    if code == 2:
        assert_user_error(result, *fragments)
    else:
        assert result.returncode == code, (result.returncode, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])


@contextlib.contextmanager
def tmpfs(path, size="256k", read_only=False):
    os.makedirs(path, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root in a "
                    f"container that permits mounts")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fault") / "run")
    r = run_cli("train", *TINY, "--out", out, "--max-steps", "2")
    assert r.returncode == 0, r.stderr
    return out


def test_outputs_in_a_read_only_folder_fail_before_any_work(tmp_path, run_dir):
    ckpt = os.path.join(run_dir, "checkpoints", "latest.ckpt")
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        commands = [
            ("train", *TINY, "--out", f"{ro}/run", "--max-steps", "1"),
            ("sample", "--ckpt", ckpt, "--out", f"{ro}/x.png"),
            ("interpolate", "--ckpt", ckpt, "--out", f"{ro}/x.png"),
            ("export", "--ckpt", ckpt, "--out", f"{ro}/g.mindir"),
            ("eval", "--ckpt", ckpt, "--n", "50", "--out", f"{ro}/m.json"),
            ("train-classifier", "--out", f"{ro}/c.ckpt"),
            ("convert", "--to-torch", ckpt, "--out", f"{ro}/x.pt"),
        ]
        for args in commands:
            t = time.time()
            r = run_cli(*args)
            assert_clean_failure(r, 2, "read-only", ro)
            assert time.time() - t < 30, args   # refused up front, not after the work
        assert os.listdir(ro) == []


@pytest.mark.slow
def test_a_full_disk_names_the_file_and_leaves_no_temporary_file(tmp_path, run_dir):
    with tmpfs(tmp_path / "full", size="256k") as full:
        r = run_cli("train", *TINY, "--out", f"{full}/run", "--max-steps", "1")
        assert_clean_failure(r, 2, "disk full", "latest.ckpt")
        r = run_cli("sample", "--ckpt", run_dir, "--n", "5000", "--out", f"{full}/big.npy")
        assert_clean_failure(r, 2, "disk full", "big.npy")
        assert temp_files(full) == [] and not os.path.exists(f"{full}/big.npy")


def test_a_file_where_a_folder_is_meant_and_a_folder_where_a_file_is_meant(tmp_path, run_dir):
    (tmp_path / "file").write_text("x")
    (tmp_path / "d.png").mkdir()
    assert_clean_failure(run_cli("sample", "--ckpt", run_dir, "--out", str(tmp_path / "file" / "x.png")), 2,
                         "not a directory")
    assert_clean_failure(run_cli("sample", "--ckpt", run_dir, "--out", str(tmp_path / "d.png")), 2,
                         "is a directory")
    assert_clean_failure(run_cli("train", *TINY, "--out", str(tmp_path / "file")), 2, "it is a file")
    assert_clean_failure(run_cli("export", "--ckpt", run_dir, "--out", str(tmp_path / "file" / "g.mindir")), 2,
                         "not a directory")
    assert temp_files(tmp_path) == [] and os.listdir(tmp_path / "d.png") == []


def _popen_train(out, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "ms_gan", "train", *TINY, "--out", out, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(out))


@pytest.mark.slow
def test_sigint_and_sigterm_at_random_moments_stop_cleanly_and_the_run_resumes(tmp_path):
    rng = random.Random(12)
    # ms_gan's imports, MindSpore's import (where a KeyboardInterrupt used to abort the interpreter), training
    moments = [0.8, rng.uniform(1.0, 3.0), rng.uniform(3.0, 8.0)]
    for k, moment in enumerate(moments):
        out = str(tmp_path / f"run{k}")
        proc = _popen_train(out, "--max-steps", "100000", "--ckpt-every", "5")
        time.sleep(moment)
        proc.send_signal(signal.SIGTERM if k == 1 else signal.SIGINT)   # SIGTERM is handled the same way
        _, err = proc.communicate(timeout=120)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
        assert_clean_failure(result, 130, "ms-gan: interrupted", "rerun the same command to resume")
        assert not os.path.isdir(out) or temp_files(out) == [], moment
    # the last one was interrupted while training: its checkpoint is intact and the run continues from it
    r = run_cli("train", *TINY, "--out", out, "--max-steps", "100000", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    if "resuming" in r.stdout:
        steps = [s["step"] for s in read_jsonl(os.path.join(out, "stats.jsonl")) if s["kind"] == "step"]
        assert steps == sorted(set(steps))   # no step twice


@pytest.mark.slow
def test_sigkill_before_the_first_checkpoint_then_rerun_keeps_each_step_once(tmp_path):
    out = str(tmp_path / "run")
    proc = _popen_train(out, "--max-steps", "100000")
    stats = os.path.join(out, "stats.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.isfile(stats) and len(read_jsonl(stats)) >= 3):
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    assert not os.path.isfile(os.path.join(out, "checkpoints", "latest.ckpt"))
    r = run_cli("train", *TINY, "--out", out, "--max-steps", "4")
    assert r.returncode == 0, r.stderr
    assert [s["step"] for s in read_jsonl(stats) if s["kind"] == "step"] == [1, 2, 3, 4]
    assert temp_files(out) == []


@pytest.mark.slow
def test_two_runs_into_one_directory(tmp_path):
    out = str(tmp_path / "run")
    first = _popen_train(out, "--max-steps", "100000")
    try:
        stats = os.path.join(out, "stats.jsonl")
        deadline = time.time() + 120
        while time.time() < deadline and not (os.path.isfile(stats) and read_jsonl(stats)):
            time.sleep(0.05)
        second = run_cli("train", *TINY, "--out", out, "--max-steps", "100000")
        assert_clean_failure(second, 2, "in use by another run", f"process {first.pid}")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130


@pytest.mark.slow
def test_paths_with_spaces_and_non_ascii_characters(tmp_path):
    root = tmp_path / "my runs é"
    out = str(root / "run ü")
    r = run_cli("train", *TINY, "--out", out, "--max-steps", "2")
    assert r.returncode == 0, r.stderr
    mindir = str(root / "export ö" / "g é.mindir")
    r = run_cli("export", "--ckpt", out, "--out", mindir)
    assert r.returncode == 0, r.stderr
    for args in (("--ckpt", out), ("--mindir", mindir)):
        r = run_cli("sample", *args, "--n", "4", "--out", str(root / "grid ä.png"))
        assert r.returncode == 0, r.stderr
    assert temp_files(str(root)) == []
