"""The one atomic writer: files appear whole or not at all, with the umask's mode, and a
failure is a one-line UserError naming the path and the reason."""
import os

import numpy as np
import pytest

from ms_gan import checkpoint
from ms_gan.errors import UserError


def test_a_written_file_has_the_umask_mode_and_no_temporary_file_stays(tmp_path):
    target = tmp_path / "sub" / "x.json"
    checkpoint.write_json(str(target), {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~mask
    checkpoint.write_npy(str(tmp_path / "z.npy"), np.arange(3))
    assert np.load(tmp_path / "z.npy").tolist() == [0, 1, 2]
    assert [f for f in os.listdir(tmp_path) + os.listdir(tmp_path / "sub") if checkpoint.TEMP_MARK in f] == []


def test_a_failing_writer_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with checkpoint.atomic_output(str(target)) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("writer broke")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["x.txt"]


def test_os_errors_become_one_line_user_errors_with_the_reason(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="a part of the path is a file, not a directory"):
        checkpoint.write_text(str(tmp_path / "file" / "x.txt"), "y")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(UserError, match="it is a directory"):
        checkpoint.write_text(str(tmp_path / "d.png"), "y")


def test_check_writable_refuses_before_anything_is_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a directory"):
        checkpoint.check_writable(str(tmp_path / "file" / "deeper" / "x.png"))
    with pytest.raises(UserError, match="it is a file"):
        checkpoint.check_writable(str(tmp_path / "file"), "dir")
    checkpoint.check_writable(str(tmp_path / "new" / "run"), "dir")   # a missing folder is fine: created later
    assert sorted(os.listdir(tmp_path)) == ["file"]
