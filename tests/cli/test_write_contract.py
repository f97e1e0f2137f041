"""Issue 12's write-path promises, each run as a user runs it: extendable resume, the
finished-run message, partial epochs, one-line errors for odd inputs and damaged run
directories, MindIR sidecars that must match, file modes, device flags, the progress line."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, assert_user_error, read_jsonl, run_cli

EPOCH_RUN = ("--preset", "dcgan_digits8", "--batch-size", "256", "--no-progress")   # 7 iterations per epoch


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A dcgan_digits8 run stopped by --max-steps in the middle of its first epoch."""
    out = str(tmp_path_factory.mktemp("contract") / "run")
    r = run_cli("train", *EPOCH_RUN, "--out", out, "--max-steps", "3", "--log-every", "1")
    assert r.returncode == 0, r.stderr
    return out


def test_a_max_steps_stop_mid_epoch_writes_the_partial_epoch(run_dir):
    epochs = [r for r in read_jsonl(os.path.join(run_dir, "stats.jsonl")) if r["kind"] == "epoch"]
    assert len(epochs) == 1 and epochs[0]["partial"] is True and epochs[0]["step"] == 3
    assert np.isfinite(epochs[0]["d_loss"])


def test_the_first_log_line_gives_the_image_count_once(run_dir):
    first = open(os.path.join(run_dir, "log.txt")).readline()
    assert first.count("1,797") + first.count("1797") == 1, first


def test_files_are_written_with_the_umask(run_dir, tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    expected = 0o666 & ~mask
    for name in ("checkpoints/latest.ckpt", "options.json", "samples/grid_latest.png", "fixed_noise.npy"):
        assert os.stat(os.path.join(run_dir, name)).st_mode & 0o777 == expected, name
    out = str(tmp_path / "g.mindir")
    assert run_cli("export", "--ckpt", run_dir, "--out", out).returncode == 0
    assert os.stat(out).st_mode & 0o777 == expected


@pytest.mark.slow
def test_a_run_is_extended_and_a_finished_run_says_so(tmp_path):
    out = str(tmp_path / "run")
    r = run_cli("train", *EPOCH_RUN, "--out", out, "--epochs", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("train", *EPOCH_RUN, "--out", out, "--epochs", "1")
    assert r.returncode == 0, r.stderr
    assert f"run in {out} is finished at epoch 1; raise --epochs to extend it" in r.stdout
    r = run_cli("train", *EPOCH_RUN, "--out", out, "--epochs", "2", "--ckpt-every", "3", "--log-every", "2")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    epochs = [x for x in read_jsonl(os.path.join(out, "stats.jsonl")) if x["kind"] == "epoch"]
    assert [x["epoch"] for x in epochs] == [1, 2]
    options = json.load(open(os.path.join(out, "options.json")))
    assert options["overrides"]["epochs"] == 2 and options["ckpt_every"] == 3
    assert options["history"] and "ckpt_every" in options["history"][-1]["changed"]
    r = run_cli("train", *EPOCH_RUN, "--out", out, "--epochs", "3", "--lr-g", "0.5", "--seed", "4")
    assert_user_error(r, "other settings", "overrides:", "seed: 0 -> 4")


def test_batch_norm_with_one_image_per_batch_is_refused_before_compiling(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--preset", "mlp_mnist", "--batch-size", "1", "--out", str(out), "--no-progress",
                cwd=str(tmp_path))
    assert_user_error(r, "--batch-size 1", "BatchNorm needs at least 2")
    assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)   # no rank_0/om, no empty run dir


def test_odd_sample_requests_are_one_line_errors(tmp_path, run_dir):
    assert_user_error(run_cli("sample", "--ckpt", run_dir, "--n", "1000000000", "--out", str(tmp_path / "x.png")),
                      "more than 100,000")
    np.save(tmp_path / "empty.npy", np.zeros((0, 64), np.float32))
    np.save(tmp_path / "wrong.npy", np.zeros((3, 7), np.float32))
    for name in ("empty.npy", "wrong.npy"):
        assert_user_error(run_cli("sample", "--ckpt", run_dir, "--noise", str(tmp_path / name), "--out",
                                  str(tmp_path / "x.png")), "needs (N, 64)")
    assert_user_error(run_cli("interpolate", "--ckpt", run_dir, "--out", str(tmp_path / "x.txt")), "must end in")
    assert_user_error(run_cli("attention", "--ckpt", run_dir, "--out", str(tmp_path / "x.txt")), "must end in")
    assert not os.path.exists(tmp_path / "x.png")


def test_device_flags_that_cannot_apply_are_refused(run_dir, tmp_path):
    assert_user_error(run_cli("sample", "--ckpt", run_dir, "--device-id", "3", "--out", str(tmp_path / "x.png")),
                      "--device-id 3", "CPU")
    assert_user_error(run_cli("sample", "--ckpt", run_dir, "--threads", "999", "--out", str(tmp_path / "x.png")),
                      "--threads 999", "core")


def test_a_damaged_run_directory_is_named_in_one_line(tmp_path, run_dir):
    bad = str(tmp_path / "bad")
    shutil.copytree(run_dir, bad)
    with open(os.path.join(bad, "stats.jsonl"), "r+") as f:
        lines = f.readlines()
        f.seek(0)
        f.writelines(lines[:1] + ["garbage\n"] + lines[1:])
    assert_user_error(run_cli("train", *EPOCH_RUN, "--out", bad, "--max-steps", "4"), "stats.jsonl line 2")
    with open(os.path.join(bad, "options.json"), "w") as f:
        f.write("{broken")
    assert_user_error(run_cli("train", *EPOCH_RUN, "--out", bad, "--max-steps", "4"), "options.json")


def test_a_byte_flipped_checkpoint_gives_the_whole_reason_without_mindspores_log(tmp_path, run_dir):
    data = bytearray(open(os.path.join(run_dir, "checkpoints", "latest.ckpt"), "rb").read())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.ckpt").write_bytes(bytes(data))
    r = run_cli("sample", "--ckpt", str(tmp_path / "flipped.ckpt"), "--out", str(tmp_path / "x.png"))
    assert_user_error(r, "corrupt", "CRC check", "re-run training")
    # MindSpore's own log line is silenced and its misleading guess (permissions) is not repeated
    assert "[ERROR]" not in r.stderr and "permission" not in r.stderr, r.stderr


@pytest.mark.slow
def test_a_mindir_must_match_its_sidecar(tmp_path, run_dir):
    mindir = str(tmp_path / "g.mindir")
    assert run_cli("export", "--ckpt", run_dir, "--out", mindir).returncode == 0
    side = json.load(open(mindir + ".json"))
    json.dump(dict(side, sha256="0" * 64), open(mindir + ".json", "w"))
    assert_user_error(run_cli("sample", "--mindir", mindir, "--out", str(tmp_path / "x.png")), "SHA-256")
    json.dump(dict(side, preset="mlp_mnist"), open(mindir + ".json", "w"))
    assert_user_error(run_cli("sample", "--mindir", mindir, "--out", str(tmp_path / "x.png")),
                      "does not fit its metadata")


@pytest.mark.slow
def test_the_progress_line_on_a_50_column_terminal_stays_one_line(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 50, 0, 0))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-m", "ms_gan", "train", "--preset", "dcgan_digits8", "--batch-size",
                             "64", "--epochs", "1", "--out", str(tmp_path / "run")], env=env,
                            stdout=subprocess.DEVNULL, stderr=slave, cwd=str(tmp_path))
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text
    assert "epoch 1/1" in text
    redraws = text.replace("\r\n", "\n").split("\r")
    assert len(redraws) > 2 and all(len(part.rstrip("\n")) <= 49 for part in redraws), redraws
    assert "\n" not in "".join(redraws[1:-1]), redraws   # every refresh stays on its line


def test_export_checks_its_default_output_name_before_any_work(tmp_path, run_dir):
    (tmp_path / "dcgan_digits8_g.mindir").mkdir()   # a folder where the default file would go
    r = run_cli("export", "--ckpt", run_dir, cwd=str(tmp_path))
    assert_user_error(r, "dcgan_digits8_g.mindir", "is a directory")
    assert sorted(os.listdir(tmp_path)) == ["dcgan_digits8_g.mindir"]
