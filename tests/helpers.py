"""Small data sets the tests write themselves, and a CLI runner."""
import gzip
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_idx_images(path, images):
    images = np.asarray(images, dtype=np.uint8)
    header = (2051).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    with open(path, "wb") as f:
        f.write(header + images.tobytes())


def write_idx_labels(path, labels):
    labels = np.asarray(labels, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write((2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.tobytes())


def write_mnist(folder, n_train=64, n_test=16, seed=0, gz=False):
    """Four IDX files of random 28x28 digits-like images; returns (train images, train labels)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for usage, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        img_path = os.path.join(folder, f"{usage}-images-idx3-ubyte")
        lbl_path = os.path.join(folder, f"{usage}-labels-idx1-ubyte")
        write_idx_images(img_path, images)
        write_idx_labels(lbl_path, labels)
        if gz:
            for p in (img_path, lbl_path):
                with open(p, "rb") as fin, gzip.open(p + ".gz", "wb") as fout:
                    fout.write(fin.read())
                os.remove(p)
        out[usage] = (images, labels)
    return out["train"]


def write_image_folder(folder, n=12, size=16, mode="L", classes=("a", "b"), ext=".png", seed=0):
    """Images in class sub-folders (one level of nesting); returns {path: uint8 array}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written = {}
    for i in range(n):
        sub = os.path.join(folder, classes[i % len(classes)])
        os.makedirs(sub, exist_ok=True)
        shape = (size, size) if mode == "L" else (size, size, 3)
        arr = rng.integers(0, 256, shape, dtype=np.uint8)
        path = os.path.join(sub, f"img_{i:03d}{ext}")
        Image.fromarray(arr, mode=mode).save(path)
        written[path] = arr
    return written


def run_cli(*args, timeout=600, env=None, cwd=None):
    """Run ``python -m ms_gan ARGS``; returns CompletedProcess with text output.

    Runs in a scratch directory unless ``cwd`` is given, so default outputs such as
    ``runs/PRESET`` never land in the repository.
    """
    import tempfile

    if cwd is None:
        cwd = tempfile.mkdtemp(prefix="ms_gan_cli_")
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONPATH", ROOT)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "ms_gan", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


def read_jsonl(path):
    import json

    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def assert_user_error(result, *fragments):
    """Exit code 2, a one-line 'ms-gan: error:' message containing the fragments, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("ms-gan: error:"), result.stderr
    assert len([line for line in lines if line.startswith("ms-gan: error:")]) == 1
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
