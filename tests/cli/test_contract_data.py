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
    # requirements-test.txt installs the same pins, with requirements.txt's numpy<2 in the same set.
    with open(os.path.join(ROOT, "requirements-test.txt")) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert {r for r in extra if r.startswith("onnx")} <= set(lines) and "-r requirements.txt" in lines
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        assert "numpy<2" in f.read().split()


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


# ---------------------------------------------------------------------------- item 7: silent wrong data


def _png16(path, values):
    from PIL import Image

    Image.fromarray(np.asarray(values, dtype=np.uint16)).save(path)  # Pillow writes a 16-bit grayscale PNG


def test_16bit_png_is_scaled_by_its_bit_depth(tmp_path):
    from PIL import Image

    from ms_gan.data import ImageSpec, load_images
    from ms_gan.data.sources import decode_image

    values = np.linspace(0, 65535, 64).reshape(8, 8).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as check:
        assert check.mode == "I;16"
    images, _ = load_images(str(tmp_path), ImageSpec(8, 1))
    np.testing.assert_allclose(images[0, 0], (values / 65535.0 * 2 - 1).astype(np.float32), atol=1e-6)
    rgb, _ = load_images(str(tmp_path), ImageSpec(8, 3))
    np.testing.assert_allclose(rgb[0, 2], images[0, 0], atol=1e-6)
    # Mode 'I' (how some decoders open 16-bit PNGs) holds the same 16-bit values.
    np.testing.assert_allclose(decode_image(Image.fromarray(values).convert("I"), 1)[..., 0], values / 65535.0)


def test_bool_array_is_refused_in_one_line(tmp_path):
    np.save(tmp_path / "mask.npy", np.ones((20, 8, 8), dtype=bool))
    r = run_cli("train", "--preset", "dcgan_digits8", "--data", tmp_path / "mask.npy", "--out", tmp_path / "run",
                "--max-steps", "1", timeout=300)
    assert_user_error(r, "mask.npy holds booleans", "uint8")
    assert not (tmp_path / "run").exists()


def test_ambiguous_array_layout_is_refused_and_a_layout_key_resolves_it(tmp_path):
    from ms_gan.data import ImageSpec, load_images

    rng = np.random.default_rng(0)
    nchw = rng.integers(0, 256, (20, 3, 8, 3), dtype=np.uint8)   # NCHW: 8x3 images, or NHWC: 3x8 images
    np.save(tmp_path / "amb.npy", nchw)
    r = run_cli("train", "--preset", "dcgan_digits8", "--data", tmp_path / "amb.npy", "--out", tmp_path / "run",
                "--max-steps", "1", timeout=300)
    assert_user_error(r, "(20, 3, 8, 3)", "(N,H,W,C)", "(N,C,H,W)", "layout='NHWC'")
    assert not (tmp_path / "run").exists()
    np.savez(tmp_path / "amb.npz", images=nchw, layout="NCHW")
    as_nchw, _ = load_images(str(tmp_path / "amb.npz"), ImageSpec(8, 3))
    np.save(tmp_path / "plain.npy", nchw.transpose(0, 2, 3, 1).copy())   # (20, 8, 3, 3): only NHWC fits
    expect, _ = load_images(str(tmp_path / "plain.npy"), ImageSpec(8, 3))
    np.testing.assert_array_equal(as_nchw, expect)
    np.savez(tmp_path / "bad.npz", images=rng.integers(0, 256, (20, 8, 8, 5), dtype=np.uint8), layout="NHWC")
    with pytest.raises(Exception, match="cannot be NHWC"):
        load_images(str(tmp_path / "bad.npz"), ImageSpec(8, 1))


def test_unambiguous_layouts_still_load(tmp_path):
    from ms_gan.data import ImageSpec, load_images

    base = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", base)
    np.save(tmp_path / "nchw.npy", base.transpose(0, 3, 1, 2).copy())
    a, _ = load_images(str(tmp_path / "nhwc.npy"), ImageSpec(8, 3))
    b, _ = load_images(str(tmp_path / "nchw.npy"), ImageSpec(8, 3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_mixed_image_sizes_are_resized_once_and_said_in_the_log(tmp_path):
    from PIL import Image

    from ms_gan.data import ImageSpec, load_images

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    sizes = [(8, 8)] * 14 + [(20, 20)] * 3 + [(24, 16)] * 1   # (height, width)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(folder / f"i{i:02d}.png")
    # Each odd-sized image is resized straight to the preset's size, not via the first image's size.
    images, _ = load_images(str(folder), ImageSpec(8, 1))
    with Image.open(folder / "i14.png") as im:
        direct = np.asarray(Image.fromarray(np.asarray(im, np.float32) / 255, "F").resize((8, 8), Image.BILINEAR))
    np.testing.assert_allclose(images[14, 0], (np.clip(direct, 0, 1) * 2 - 1).astype(np.float32), atol=1e-6)
    r = run_cli("train", "--preset", "dcgan_digits8", "--data", folder, "--out", tmp_path / "run",
                "--max-steps", "1", "--batch-size", "8", "--no-progress", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    note = "mixed image sizes: 4 of 18 images resized to 8x8 from 3 at 20x20, 1 at 24x16"
    assert r.stdout.count(note) == 1, r.stdout
    assert note in (tmp_path / "run" / "log.txt").read_text()


# ---------------------------------------------------------------------------- item 8: classifiers


def test_shipped_classifier_is_package_data_of_a_built_wheel(tmp_path):
    """A non-editable install has the classifier where ms_gan looks for it (DEFAULT_CLASSIFIER)."""
    import shutil
    import zipfile

    from ms_gan.eval import classifier

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    shutil.copytree(os.path.join(ROOT, "ms_gan"), src / "ms_gan", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("ms_gan-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(classifier.__file__)))
    rel = os.path.relpath(classifier.DEFAULT_CLASSIFIER, os.path.dirname(package_dir)).replace(os.sep, "/")
    assert rel.startswith("ms_gan/") and rel in names and rel + ".json" in names, sorted(names)


def _mnist(tmp_path):
    from tests.helpers import write_mnist

    folder = tmp_path / "mnist"
    write_mnist(str(folder), n_train=64, n_test=16)
    return folder


def test_eval_every_on_mnist_without_a_28x28_classifier_fails_before_training(tmp_path):
    folder = _mnist(tmp_path)
    run = tmp_path / "run"
    r = run_cli("train", "--preset", "dcgan_mnist28", "--data", folder, "--out", run, "--eval-every", "1",
                "--epochs", "1", timeout=120)
    assert_user_error(r, "no classifier for", f"--data {folder} at 28x28", "the built-in digits classifier takes 8x8",
                      f"ms-gan train-classifier --data {folder} --size 28 --channels 1 --out FILE", "--classifier FILE")
    assert not run.exists()
    # An explicit classifier of the wrong size is named with the data.
    from ms_gan.eval.classifier import DEFAULT_CLASSIFIER

    r = run_cli("train", "--preset", "dcgan_mnist28", "--data", "builtin", "--eval-data", folder, "--out", run,
                "--eval-every", "1", "--classifier", DEFAULT_CLASSIFIER, timeout=120)
    assert_user_error(r, f"classifier {DEFAULT_CLASSIFIER} takes 8x8", "the generator makes 28x28",
                      f"ms-gan train-classifier --data {folder} --size 28 --channels 1 --out FILE")
    assert not run.exists()


def test_classifier_flag_needs_eval_every_and_an_rgb_preset_is_refused(tmp_path):
    from ms_gan.eval.classifier import DEFAULT_CLASSIFIER

    r = run_cli("train", "--preset", "dcgan_digits8", "--classifier", DEFAULT_CLASSIFIER, "--out", tmp_path / "r",
                timeout=120)
    assert_user_error(r, "--classifier", "--eval-every")
    r = run_cli("train", "--preset", "dcgan128_rgb", "--eval-every", "1", "--eval-data", "builtin",
                "--out", tmp_path / "r", timeout=120)
    assert_user_error(r, "no classifier for --eval-data builtin at 128x128 with 3 channel(s)",
                      "ms-gan train-classifier --data builtin --size 128 --channels 3 --out FILE")
    assert not (tmp_path / "r").exists()


def test_eval_on_mnist_with_the_default_classifier_says_how_to_make_one(tmp_path):
    folder = _mnist(tmp_path)
    r = run_cli("eval", "--ckpt", os.path.join(ROOT, "ckpt", "dcgan_digits8.ckpt"), "--data", folder, "--n", "50",
                timeout=120)
    assert_user_error(r, f"no classifier for --data {folder} at 8x8",
                      f"ms-gan train-classifier --data {folder} --size 8 --channels 1 --out FILE")


@pytest.mark.slow
def test_train_eval_every_with_a_28x28_classifier_on_mnist(tmp_path):
    folder = _mnist(tmp_path)
    clf = tmp_path / "mnist_classifier.ckpt"
    r = run_cli("train-classifier", "--data", folder, "--out", clf, "--epochs", "1", "--batch-size", "32",
                timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / "run"
    r = run_cli("train", "--preset", "dcgan_mnist28", "--data", folder, "--out", run, "--eval-every", "1",
                "--epochs", "1", "--batch-size", "32", "--eval-n", "40", "--classifier", clf, "--no-progress",
                timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    from tests.helpers import read_jsonl

    epochs = [rec for rec in read_jsonl(run / "stats.jsonl") if rec.get("fcd") is not None]
    assert len(epochs) == 1 and np.isfinite(epochs[0]["fcd"])
    from ms_gan.eval.classifier import sha256_of

    assert epochs[0]["eval_extractor_sha256"] == sha256_of(str(clf))


# ---------------------------------------------------------------------------- item 9: distributed


_FILL_CACHE = r"""
import os, sys, time
from ms_gan.data.sources import prepare_mnist_dir
folder, caches, start, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
for i in range(rounds):
    os.environ["MS_GAN_CACHE"] = os.path.join(caches, str(i))
    while time.time() < start + 0.3 * i:  # both processes start each round on a fresh cache together
        pass
    prepare_mnist_dir(folder)
print("ok")
"""


def race_fill_cache(folder, caches, rounds=8, root=ROOT):
    """Two processes decompress the same .gz MNIST folder into the same fresh caches at once."""
    import time

    env = dict(os.environ, PYTHONPATH=root)
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", _FILL_CACHE, str(folder), str(caches), str(start), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=os.path.dirname(str(caches))) for _ in range(2)]
    return [p.communicate(timeout=120) + (p.returncode,) for p in procs]


def _write_big_gz_mnist(folder, n=20000):
    """A .gz MNIST training set big enough (16 MB decompressed) that two decompressions overlap."""
    import gzip

    from tests.helpers import write_idx_images, write_idx_labels

    folder.mkdir()
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 10:18, 10:18] = np.arange(n, dtype=np.uint8)[:, None, None]
    write_idx_images(str(folder / "train-images-idx3-ubyte"), images)
    write_idx_labels(str(folder / "train-labels-idx1-ubyte"), np.arange(n) % 10)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        with open(folder / name, "rb") as fin, gzip.open(str(folder / name) + ".gz", "wb", compresslevel=1) as fout:
            fout.write(fin.read())
        os.remove(folder / name)
    return images


def test_two_ranks_fill_a_fresh_gz_cache_at_once(tmp_path):
    from ms_gan.data.sources import read_idx

    folder = tmp_path / "mnist_gz"
    images = _write_big_gz_mnist(folder)
    results = race_fill_cache(folder, tmp_path / "caches")
    for out, err, code in results:
        assert code == 0 and out.strip() == "ok", err[-2000:]
    for cache in (tmp_path / "caches").iterdir():
        (sub,) = (cache / "mnist").iterdir()
        assert sorted(os.listdir(sub)) == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]  # no temporaries
        np.testing.assert_array_equal(read_idx(str(sub / "train-images-idx3-ubyte")), images)


# ---------------------------------------------------------------------------- item 11: what a user sees


def test_convert_to_torch_reports_only_what_each_file_holds(tmp_path):
    pytest.importorskip("torch")
    ckpt = os.path.join(ROOT, "ckpt", "dcgan_digits8.ckpt")
    r = run_cli("convert", "--to-torch", ckpt, "--g", tmp_path / "g.pt", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote G 6 tensors to {tmp_path / 'g.pt'} (reference naming)"
    r = run_cli("convert", "--to-torch", ckpt, "--d", tmp_path / "d.pt", "--out", tmp_path / "both.pt", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"wrote G 6 tensors, D 6 tensors to {tmp_path / 'both.pt'}; "
                                f"D 6 tensors to {tmp_path / 'd.pt'} (reference naming)")


def test_presets_columns_are_aligned():
    r = run_cli("presets", timeout=60)
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) >= 5
    # The summary (third column) starts at the same place on every line.
    starts = {len(line) - len(line.split(None, 2)[2]) for line in lines}
    assert len(starts) == 1, r.stdout


def test_eval_with_few_samples_warns_that_fcd_and_kid_are_unreliable(tmp_path):
    import json

    r = run_cli("eval", "--ckpt", os.path.join(ROOT, "ckpt", "dcgan_digits8.ckpt"), "--n", "4",
                "--out", tmp_path / "m.json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    warnings = [line for line in r.stderr.splitlines() if line.startswith("ms-gan: warning:")]
    assert len(warnings) == 1 and "--n 4 is below 1000 generated images" in warnings[0]
    assert "FCD is biased upwards" in warnings[0] and "KID" in warnings[0]
    assert json.loads((tmp_path / "m.json").read_text())["warnings"] == [warnings[0][len("ms-gan: warning: "):]]
