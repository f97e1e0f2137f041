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
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the cache folder {folder} for the decompressed MNIST files "
                            f"({exc.strerror}); set MS_GAN_CACHE to a writable folder") from None
        for src in plain:
            dst = os.path.join(folder, os.path.basename(src))
            packed = src if os.path.isfile(src) else src + ".gz"
            if not os.path.isfile(dst) or os.path.getmtime(dst) < os.path.getmtime(packed):
                _cache_file(packed, dst)
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


def _cache_file(src, dst):
    """Copy ``src`` (decompressed when it ends in .gz) to ``dst`` atomically.

    Every process writes its own temporary file and renames it into place, so ranks of a
    distributed run filling the same fresh cache at once never see a half-written file or
    rename each other's temporary away (a shared ``dst.tmp`` failed 1 launch in 3).
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dst)}.", suffix=".tmp", dir=os.path.dirname(dst))
    try:
        with os.fdopen(fd, "wb") as fout, (gzip.open(src, "rb") if src.endswith(".gz") else open(src, "rb")) as fin:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
    except (OSError, EOFError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if src.endswith(".gz"):
            plain = os.path.basename(src)[:-3]
            raise UserError(f"cannot decompress {src} ({exc}); replace it or put the uncompressed {plain} "
                            f"beside it") from None
        raise UserError(f"cannot copy {src} into the cache {os.path.dirname(dst)} ({exc})") from None


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


def _bit_depth_max(im):
    """The value of full white in a Pillow image: 65535 for 16-bit modes, 255 otherwise.

    Pillow opens a 16-bit grayscale PNG as mode 'I;16' (or 'I' for some encoders);
    ``convert('L')`` clips those values to 255, which made every such image all white.
    """
    return 65535.0 if im.mode == "I" or im.mode.startswith("I;16") else 255.0


def decode_image(im, channels):
    """A Pillow image -> float64 (H, W, channels) in [0, 1], scaled by its true bit depth."""
    if _bit_depth_max(im) > 255.0:
        gray = np.asarray(im, dtype=np.float64)
        if gray.ndim != 2 or gray.min() < 0 or gray.max() > 65535:
            raise ValueError(f"mode {im.mode} values {gray.min():g}..{gray.max():g} are not 16-bit")
        arr = gray[..., None] / 65535.0
        return np.repeat(arr, 3, axis=2) if channels == 3 else arr
    arr = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.float64) / 255.0
    return arr.reshape(arr.shape[0], arr.shape[1], channels)


def resize01(image, height, width):
    """Resize float (H, W, C) in [0, 1] with Pillow's bilinear filter (per channel, float32), clipped to [0, 1]."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    out = np.empty((height, width, image.shape[2]), dtype=np.float64)
    for ch in range(image.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(image[:, :, ch], dtype=np.float32), mode="F")
        out[:, :, ch] = np.asarray(plane.resize((width, height), Image.BILINEAR))
    return np.clip(out, 0.0, 1.0)


def image_sizes(root):
    """{(height, width): count} of the images under ``root``, read from the file headers only."""
    from PIL import Image

    sizes = {}
    for path in list_images(root):
        try:
            with Image.open(path) as im:
                key = (im.size[1], im.size[0])
        except Exception:  # unreadable files are named by read_folder
            continue
        sizes[key] = sizes.get(key, 0) + 1
    return sizes


def describe_sizes(sizes, size):
    """One phrase on a folder's image sizes: its size, or how many images are resized from what to what.

    Args:
        sizes: {(height, width): count} (see :func:`image_sizes`).
        size: the side every image is resized to (the preset's).
    """
    if not sizes:
        return "no images"
    target = (int(size), int(size))
    fmt = lambda hw: f"{hw[0]}x{hw[1]}"  # noqa: E731
    if len(sizes) == 1:
        only = next(iter(sizes))
        return fmt(only) + ("" if only == target else f", resized to {fmt(target)}")
    resized = sorted(((hw, c) for hw, c in sizes.items() if hw != target), key=lambda kv: (-kv[1], kv[0]))
    listing = ", ".join(f"{count} at {fmt(hw)}" for hw, count in resized)
    return (f"mixed image sizes: {sum(c for _, c in resized)} of {sum(sizes.values())} images resized "
            f"to {fmt(target)} from {listing}")


def folder_classes(root, files=None):
    """Sorted names of the first-level sub-folders of ``root`` that hold images (the class names;
    label i is the i-th name). Empty when every image lies directly in ``root`` (no labels)."""
    files = list_images(root) if files is None else files
    return sorted({os.path.relpath(f, root).split(os.sep)[0] for f in files if os.sep in os.path.relpath(f, root)})


def read_folder(root, channels, size=None):
    """Decode every image under ``root`` with Pillow.

    Images become grayscale or RGB as ``channels`` asks, scaled by their bit depth
    (16-bit PNGs by 65535). Each is resized once, straight from its own size, to
    ``size`` x ``size`` when given, else to the most common size in the folder
    (:func:`describe_sizes` says which sizes were resized; the trainer logs it). The
    label of an image is the index of its first-level sub-folder (class folders, as
    Keras' flow_from_directory); images directly in ``root`` get label 0.

    Raises:
        UserError: no images or an unreadable file (named).
    """
    from PIL import Image

    files = list_images(root)
    if not files:
        raise UserError(f"no images ({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)}) found under {root!r}")
    classes = folder_classes(root, files)
    class_index = {c: i for i, c in enumerate(classes)}
    decoded, labels = [], []
    for path in files:
        try:
            with Image.open(path) as im:
                decoded.append(decode_image(im, channels))
        except Exception as exc:  # PIL raises many types for broken files
            raise UserError(f"cannot read image {path}: {exc.__class__.__name__}: {exc}; "
                            f"remove or replace the file") from None
        rel = os.path.relpath(path, root).split(os.sep)
        labels.append(class_index[rel[0]] if len(rel) > 1 else 0)
    if size:
        height = width = int(size)
    else:
        counts = {}
        for arr in decoded:
            counts[arr.shape[:2]] = counts.get(arr.shape[:2], 0) + 1
        height, width = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    images = np.stack([resize01(arr, height, width) for arr in decoded])
    return images, np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------- arrays


LAYOUTS = ("NHWC", "NCHW")


def _layout_of(shape, path, given=None):
    """'NHWC' or 'NCHW' for a 4-D array shape; refuse shapes where both are plausible and none was given."""
    nhwc, nchw = shape[-1] in (1, 3), shape[1] in (1, 3)
    if given is not None:
        if given not in LAYOUTS:
            raise UserError(f"{path}: layout {given!r} is not one of {', '.join(LAYOUTS)}")
        if not (nhwc if given == "NHWC" else nchw):
            raise UserError(f"{path}: shape {shape} cannot be {given} (its channel axis must be 1 or 3)")
        return given
    if nhwc and nchw:
        n, a, b, c = shape
        raise UserError(f"{path} has shape {shape}, which is both (N,H,W,C) = {a}x{b} images with {c} channels "
                        f"and (N,C,H,W) = {b}x{c} images with {a} channels; say which in a .npz: "
                        f"numpy.savez('images.npz', images=array, layout='NHWC') (or layout='NCHW')")
    if nhwc or nchw:
        return "NHWC" if nhwc else "NCHW"
    raise UserError(f"{path} has shape {shape}: expected (N,H,W), (N,H,W,C) or (N,C,H,W) with C 1 or 3")


def read_array(path):
    """Load images from ``.npy`` or ``.npz``.

    Accepted layouts: (N,H,W), (N,H,W,C) or (N,C,H,W) with C in {1, 3}; a shape that
    fits both 4-D layouts (e.g. (100, 3, 8, 3)) needs a ``.npz`` with ``layout``
    'NHWC' or 'NCHW'. Accepted ranges: integers in 0..255, floats in [0, 1], floats in
    [-1, 1] (values below 0 mean the [-1, 1] convention); booleans are refused (a
    mask's True would be 1/255, nearly black). A ``.npz`` must hold an array named
    ``images``, ``x`` or ``arr_0``, or exactly one array; ``labels``/``y`` and
    ``layout`` are read if present.

    Raises:
        UserError: missing file, unreadable file, unknown or ambiguous layout, bool dtype, range.
    """
    if not os.path.isfile(path):
        raise UserError(f"array file {path!r} does not exist")
    labels, layout = None, None
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                keys = list(data.keys())
                key = next((k for k in ("images", "x", "arr_0") if k in keys), None)
                others = [k for k in keys if k not in ("labels", "y", "layout")]
                if key is None and len(others) == 1:
                    key = others[0]
                if key is None:
                    raise UserError(f"{path} holds arrays {keys}; name the images 'images' (and labels 'labels')")
                array = data[key]
                for lk in ("labels", "y"):
                    if lk in keys:
                        labels = np.asarray(data[lk]).astype(np.int64).reshape(-1)
                if "layout" in keys:
                    layout = str(np.asarray(data["layout"]).reshape(-1)[0]).upper()
        else:
            array = np.load(path, allow_pickle=False)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot read array file {path}: {exc}") from None
    array = np.asarray(array)
    if array.dtype == np.bool_:
        raise UserError(f"{path} holds booleans; images must be uint8 0..255 or float in [0, 1] or [-1, 1] "
                        f"(e.g. save array.astype(numpy.uint8) * 255)")
    if array.ndim == 3:
        array = array[..., None]
    elif array.ndim == 4:
        if _layout_of(array.shape, path, layout) == "NCHW":
            array = array.transpose(0, 2, 3, 1)
    else:
        raise UserError(f"{path} has shape {array.shape}: expected (N,H,W), (N,H,W,C) or (N,C,H,W)")
    if array.shape[0] == 0:
        raise UserError(f"{path} holds no images")
    if np.issubdtype(array.dtype, np.integer):
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
