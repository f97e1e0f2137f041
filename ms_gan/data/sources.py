"""Readers for each data source: validate, decode, and return images as NumPy arrays.

Every reader returns ``(images, labels)`` where ``images`` is float64 in [0, 1] of
shape (N, H, W, C) at the source's own resolution and channel count, and
``labels`` is an int array (N,) or None. Resizing, channel conversion and scaling
to [-1, 1] happen once, in :mod:`ms_gan.data.pipeline`.
"""
import gzip
import hashlib
import os
import shutil

import numpy as np

from ms_gan.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


# --------------------------------------------------------------------------- MNIST


def _expected_mnist_names():
    return ", ".join(MNIST_FILES["train"] + MNIST_FILES["test"])


def is_mnist_dir(path):
    """True when ``path`` is a folder holding MNIST's training IDX files (plain or .gz)."""
    if not os.path.isdir(path):
        return False
    names = set(os.listdir(path))
    return all(n in names or n + ".gz" in names for n in MNIST_FILES["train"])


def _cache_root():
    return os.environ.get("MS_GAN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ms_gan"))


def prepare_mnist_dir(path, usage="train"):
    """Check the IDX files of ``usage`` ('train' or 'test') and return a folder MnistDataset can read.

    ``.gz`` files are decompressed once into a cache folder (``$MS_GAN_CACHE`` or
    ``~/.cache/ms_gan``) because MnistDataset reads only uncompressed IDX files.

    Raises:
        UserError: a file is missing or is not a valid IDX file.
    """
    if not os.path.isdir(path):
        raise UserError(f"MNIST folder {path!r} does not exist; it must hold {_expected_mnist_names()}")
    names = MNIST_FILES[usage]
    plain = [os.path.join(path, n) for n in names]
    if all(os.path.isfile(p) for p in plain):
        folder = path
    elif all(os.path.isfile(p) or os.path.isfile(p + ".gz") for p in plain):
        key = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
        folder = os.path.join(_cache_root(), "mnist", key)
        os.makedirs(folder, exist_ok=True)
        for src in plain:
            dst = os.path.join(folder, os.path.basename(src))
            if os.path.isfile(src):
                if not os.path.isfile(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
                    shutil.copyfile(src, dst)
                continue
            if not os.path.isfile(dst) or os.path.getmtime(dst) < os.path.getmtime(src + ".gz"):
                tmp = dst + ".tmp"
                try:
                    with gzip.open(src + ".gz", "rb") as fin, open(tmp, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
                except (OSError, EOFError) as exc:
                    raise UserError(f"cannot decompress {src}.gz ({exc}); replace it or put the "
                                    f"uncompressed {os.path.basename(src)} beside it") from None
                os.replace(tmp, dst)
    else:
        missing = [n for n, p in zip(names, plain) if not (os.path.isfile(p) or os.path.isfile(p + ".gz"))]
        raise UserError(f"MNIST folder {path!r} lacks {', '.join(missing)} (plain or .gz); "
                        f"expected files: {_expected_mnist_names()}")
    n_images = _check_idx(os.path.join(folder, names[0]), _IDX_IMAGES_MAGIC, 3)
    n_labels = _check_idx(os.path.join(folder, names[1]), _IDX_LABELS_MAGIC, 1)
    if n_images != n_labels:
        raise UserError(f"MNIST files disagree: {names[0]} holds {n_images} images but "
                        f"{names[1]} holds {n_labels} labels")
    return folder


def _check_idx(path, magic, ndim):
    """Validate an IDX header and file size; return the item count."""
    name = os.path.basename(path)
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    if len(header) < 4 + 4 * ndim:
        raise UserError(f"{path} is not an MNIST IDX file (too short); expected {name} as distributed by MNIST")
    got_magic = int.from_bytes(header[:4], "big")
    if got_magic != magic:
        raise UserError(f"{path} is not a valid {name} IDX file (magic number {got_magic}, expected {magic}); "
                        f"if it is gzip-compressed, name it {name}.gz")
    dims = [int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if os.path.getsize(path) != expected:
        raise UserError(f"{path} is truncated or corrupt: header says {dims} but the file has "
                        f"{os.path.getsize(path)} bytes instead of {expected}")
    if ndim == 3 and dims[1:] != [28, 28]:
        raise UserError(f"{path} holds {dims[1]}x{dims[2]} images; MnistDataset needs 28x28")
    return dims[0]


def read_idx(path):
    """Read an (uncompressed) IDX file into a uint8 array."""
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_mnist(path, usage="train"):
    """MNIST in memory (for evaluation and classifiers): images (N,28,28,1) in [0,1], labels."""
    folder = prepare_mnist_dir(path, usage)
    img_name, lbl_name = MNIST_FILES[usage]
    images = read_idx(os.path.join(folder, img_name)).astype(np.float64) / 255.0
    labels = read_idx(os.path.join(folder, lbl_name)).astype(np.int64)
    return images[..., None], labels


# --------------------------------------------------------------------------- folders


def list_images(root):
    """All image files under ``root`` (any nesting), sorted, with their class folder names."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(dirpath, name))
    return files


def read_folder(root, channels):
    """Decode every image under ``root`` with Pillow.

    Images are converted to grayscale ('L') or RGB as ``channels`` asks and must all
    share one size (resizing to the preset happens later). The label of an image is the
    index of its first-level sub-folder (class folders, as Keras' flow_from_directory);
    images directly in ``root`` get label 0.

    Raises:
        UserError: no images, an unreadable file (named), or mixed sizes.
    """
    from PIL import Image

    files = list_images(root)
    if not files:
        raise UserError(f"no images ({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)}) found under {root!r}")
    classes = sorted({os.path.relpath(f, root).split(os.sep)[0] for f in files
                      if os.sep in os.path.relpath(f, root)})
    class_index = {c: i for i, c in enumerate(classes)}
    mode = "L" if channels == 1 else "RGB"
    images, labels, size = [], [], None
    for path in files:
        try:
            with Image.open(path) as im:
                im = im.convert(mode)
                arr = np.asarray(im, dtype=np.uint8)
        except Exception as exc:  # PIL raises many types for broken files
            raise UserError(f"cannot read image {path}: {exc.__class__.__name__}: {exc}; "
                            f"remove or replace the file") from None
        if size is None:
            size = arr.shape[:2]
        elif arr.shape[:2] != size:
            # Different sizes are resized to the first one's size so they can be stacked.
            arr = np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.BILINEAR))
        images.append(arr.reshape(size[0], size[1], channels))
        rel = os.path.relpath(path, root).split(os.sep)
        labels.append(class_index[rel[0]] if len(rel) > 1 else 0)
    return np.stack(images).astype(np.float64) / 255.0, np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------- arrays


def read_array(path):
    """Load images from ``.npy`` or ``.npz``.

    Accepted layouts: (N,H,W), (N,H,W,C) or (N,C,H,W) with C in {1, 3}. Accepted
    ranges: integers in 0..255, floats in [0, 1], floats in [-1, 1] (values below 0
    mean the [-1, 1] convention). A ``.npz`` must hold an array named ``images``,
    ``x`` or ``arr_0``, or exactly one array; ``labels``/``y`` is read if present.

    Raises:
        UserError: missing file, unreadable file, unknown layout or range.
    """
    if not os.path.isfile(path):
        raise UserError(f"array file {path!r} does not exist")
    labels = None
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                keys = list(data.keys())
                key = next((k for k in ("images", "x", "arr_0") if k in keys), None)
                if key is None and len(keys) == 1:
                    key = keys[0]
                if key is None:
                    raise UserError(f"{path} holds arrays {keys}; name the images 'images' (and labels 'labels')")
                array = data[key]
                for lk in ("labels", "y"):
                    if lk in keys:
                        labels = np.asarray(data[lk]).astype(np.int64).reshape(-1)
        else:
            array = np.load(path, allow_pickle=False)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot read array file {path}: {exc}") from None
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    elif array.ndim == 4:
        if array.shape[-1] not in (1, 3) and array.shape[1] in (1, 3):
            array = array.transpose(0, 2, 3, 1)
        elif array.shape[-1] not in (1, 3):
            raise UserError(f"{path} has shape {array.shape}: expected (N,H,W), (N,H,W,C) or (N,C,H,W) with C 1 or 3")
    else:
        raise UserError(f"{path} has shape {array.shape}: expected (N,H,W), (N,H,W,C) or (N,C,H,W)")
    if array.shape[0] == 0:
        raise UserError(f"{path} holds no images")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        lo, hi = int(array.min()), int(array.max())
        if lo < 0 or hi > 255:
            raise UserError(f"{path}: integer images must be in 0..255, found {lo}..{hi}")
        images = array.astype(np.float64) / 255.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise UserError(f"{path} contains NaN or infinite values")
        lo, hi = float(array.min()), float(array.max())
        if lo >= 0.0 and hi <= 1.0:
            images = array.astype(np.float64)
        elif lo >= -1.0 and hi <= 1.0:
            images = (array.astype(np.float64) + 1.0) / 2.0
        else:
            raise UserError(f"{path}: float images must be in [0, 1] or [-1, 1], found [{lo:g}, {hi:g}]")
    else:
        raise UserError(f"{path} has dtype {array.dtype}; expected uint8 or float images")
    if labels is not None and len(labels) != len(images):
        labels = None
    return images, labels
