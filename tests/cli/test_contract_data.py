"""Issue 12, items 1, 7, 8, 9, 11 (data, environment, evaluation, scripts), run as a user runs them."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, assert_user_error, run_cli

NUMPY2_MESSAGE = "NumPy 2.1.0 is installed; MindSpore 2.10 needs numpy<2: pip install 'numpy<2'"


# ---------------------------------------------------------------------------- item 1: NumPy 2


@pytest.fixture
def fake_numpy2(tmp_path):
    """A folder to put first on PYTHONPATH: a 'numpy' package that says it is 2.1.0."""
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text('__version__ = "2.1.0"\n')
    return {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}


def test_cli_refuses_numpy2_in_one_line(fake_numpy2):
    for args in (["presets"], ["train", "--preset", "dcgan_digits8"]):
        r = run_cli(*args, env=fake_numpy2, timeout=60)
        assert_user_error(r, NUMPY2_MESSAGE)


def test_console_script_refuses_numpy2_in_one_line(fake_numpy2):
    # What pip's generated 'ms-gan' script does: argv[0] is the script, then it imports ms_gan.cli.
    code = "import sys; sys.argv[0] = '/venv/bin/ms-gan'; from ms_gan.cli import main; sys.exit(main())"
    r = subprocess.run([sys.executable, "-c", code, "presets"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **fake_numpy2))
    assert_user_error(r, NUMPY2_MESSAGE)


def test_library_import_raises_import_error_under_numpy2(fake_numpy2):
    code = "import ms_gan"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **fake_numpy2))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"ImportError: {NUMPY2_MESSAGE}"


def test_numpy_check_imports_neither_numpy_nor_mindspore():
    # The version comes from numpy's dist-info (pip's layout), so 'ms-gan --help' stays instant.
    code = ("import sys, ms_gan, ms_gan._env as env; "
            "print(env.numpy_version(), 'numpy' in sys.modules, 'mindspore' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [np.__version__, "False", "False"]


def _onnx_extra():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]["onnx"]


def test_onnx_extra_pins_numpy_below_2():
    extra = _onnx_extra()
    assert "numpy<2" in extra
    assert any(r.startswith("onnx==") for r in extra) and any(r.startswith("onnxruntime==") for r in extra)


def _install_lines():
    """(file, line) of every 'pip install' the project prints or documents."""
    found = []
    for folder in ("", "scripts", "ms_gan", os.path.join("ms_gan", "eval"), os.path.join("ms_gan", "data"), "ckpt"):
        base = os.path.join(ROOT, folder)
        for name in sorted(os.listdir(base)):
            if name.endswith((".md", ".sh", ".py", ".txt")) and os.path.isfile(os.path.join(base, name)):
                with open(os.path.join(base, name), encoding="utf-8") as f:
                    found += [(name, line) for line in f if "pip install" in line]
    return found


def test_every_documented_onnx_install_line_keeps_numpy_below_2():
    onnx_lines = [(n, line) for n, line in _install_lines() if "onnx" in line.lower()]
    assert onnx_lines
    for name, line in onnx_lines:
        assert "[onnx]" in line or "numpy<2" in line, (name, line)


def test_export_hint_without_onnx_is_the_extra(tmp_path):
    # An 'onnx' that cannot be imported, first on the path: what a user without onnx sees.
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "__init__.py").write_text("raise ImportError('No module named onnx')\n")
    r = run_cli("export", "--ckpt", os.path.join(ROOT, "ckpt", "dcgan_digits8.ckpt"), "--format", "ONNX",
                "--out", tmp_path / "g.onnx", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}, timeout=120)
    assert_user_error(r, "'.[onnx]'", "'numpy<2'")
    for requirement in _onnx_extra():
        assert f"'{requirement}'" in r.stderr
    assert not (tmp_path / "g.onnx").exists()
