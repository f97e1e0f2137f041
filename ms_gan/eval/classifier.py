"""Classifiers of labelled images whose features the metrics use (FCD, KID, precision/recall).

Inception features mean little for 8x8 digits and cost ~0.4 s per image here, so, like
TF-GAN's ``mnist_frechet_distance``, this project trains a small LeNet-style CNN on the
labelled data itself and measures distances on its penultimate layer (128 ReLU units).
One classifier has one input shape: ``size`` x ``size`` with 1 (gray) or 3 (RGB)
channels, 8 <= size <= 128, and as many outputs as the data has classes. It scores
generators that make exactly that shape; the reference images go through the
training pipeline (:func:`ms_gan.data.load_images`) at that shape, as the GAN saw them.

Architecture: above 16x16, stages of 3x3 conv (32) + ReLU + 2x2 max-pool halve the
image until it is under 16x16; then the 8x8 LeNet head (3x3 conv 32, 3x3 conv 64,
2x2 max-pool, Dense 128 + ReLU = the features, Dense classes). At 8x8 gray that is
exactly the network of the shipped digits classifier, whose file and numbers stay
valid. 28x28 keeps the earlier MNIST network (two 5x5 convs each followed by a pool).

A classifier checkpoint is a MindSpore ``.ckpt`` with its metadata stored inside under
``ms_gan_classifier``: size (``resolution``), channels, classes and class names, held-out
accuracy, the data fingerprint (:func:`data_fingerprint`) and the split. :func:`load`
also reports the file's sha256, which every metric records as the extractor's identity.
A JSON copy of the metadata (with the sha256) is written next to it; :func:`read_meta`
reads it without MindSpore, so a classifier is checked against the data before
anything is built.

The classifier of the built-in digits at 8x8 ships inside the package
(``ms_gan/eval/assets/digits_classifier.ckpt``, package data), so ``eval`` and
``--eval-every`` find it after a plain ``pip install .`` too.
"""
import hashlib
import json
import os
import time

import numpy as np

from ms_gan.errors import UserError

FORMAT = "ms_gan-classifier-1"
NUM_CLASSES = 10   # of the digits; files written before "classes" was recorded are digit classifiers
FEATURES = 128
CHANNELS = 1
MIN_SIZE, MAX_SIZE = 8, 128
HOLDOUT_FRACTION, SPLIT_SEED = 0.2, 0
DEFAULT_CLASSIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "digits_classifier.ckpt")
_CELL_CLASS = None


def check_shape(size, channels):
    """UserError unless a classifier can take ``size`` x ``size`` images with ``channels`` channels."""
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise UserError(f"classifiers take images from {MIN_SIZE}x{MIN_SIZE} to {MAX_SIZE}x{MAX_SIZE}, "
                        f"not {size}x{size}")
    if int(channels) not in (1, 3):
        raise UserError(f"classifiers take 1 (gray) or 3 (RGB) channels, not {channels}")


def _layout(size):
    """(number of halving stages, head kernel, head pools, side of the last feature map) for ``size``."""
    if size == 28:
        return 0, 5, (True, True), 7
    stages, side = 0, size
    while side >= 16:
        stages, side = stages + 1, side // 2
    return stages, 3, (False, True), side // 2


def _cell_class():
    """The Cell class (built lazily: importing this module must not import MindSpore)."""
    global _CELL_CLASS
    if _CELL_CLASS is not None:
        return _CELL_CLASS
    from mindspore import nn, ops

    class ImageClassifier(nn.Cell):
        """(N, C, S, S) in [-1, 1] -> (logits (N, classes), features (N, 128)); see the module docstring."""

        def __init__(self, size, channels=CHANNELS, classes=NUM_CLASSES):
            super().__init__()
            check_shape(size, channels)
            self.size, self.channels, self.classes = int(size), int(channels), int(classes)
            stages, k, pools, out = _layout(self.size)
            width = self.channels
            down = []
            for _ in range(stages):
                down.append(nn.SequentialCell([nn.Conv2d(width, 32, 3, pad_mode="same", has_bias=True), nn.ReLU(),
                                               nn.MaxPool2d(2, 2)]))
                width = 32
            self.down = nn.CellList(down)
            self.conv1 = nn.Conv2d(width, 32, k, pad_mode="same", has_bias=True)
            self.conv2 = nn.Conv2d(32, 64, k, pad_mode="same", has_bias=True)
            self.pool = nn.MaxPool2d(2, 2)
            self.pool1, self.pool2 = pools
            self.relu = nn.ReLU()
            self.fc = nn.Dense(64 * out * out, FEATURES)
            self.head = nn.Dense(FEATURES, self.classes)

        def construct(self, x):
            for stage in self.down:
                x = stage(x)
            x = self.relu(self.conv1(x))
            if self.pool1:
                x = self.pool(x)
            x = self.relu(self.conv2(x))
            if self.pool2:
                x = self.pool(x)
            x = ops.reshape(x, (x.shape[0], -1))
            feats = self.relu(self.fc(x))
            return self.head(feats), feats

    _CELL_CLASS = ImageClassifier
    return _CELL_CLASS


def build(size, seed=0, channels=CHANNELS, classes=NUM_CLASSES):
    """A fresh classifier for ``size`` x ``size`` images with seeded (PyTorch-default) weights."""
    from ms_gan.nn.init import initialize

    net = _cell_class()(size, channels, classes)
    initialize(net, "torch_default", np.random.default_rng([int(seed), 7]))
    net.update_parameters_name("classifier.")
    return net


class Classifier:
    """A loaded classifier: the Cell plus its metadata, path and sha256."""

    def __init__(self, net, meta, path=None, sha256=None):
        self.net = net
        self.meta = meta
        self.path = path
        self.sha256 = sha256

    @property
    def size(self):
        return int(self.meta["resolution"])

    @property
    def channels(self):
        return int(self.meta.get("channels", CHANNELS))

    @property
    def name(self):
        return f"lenet{self.size}{'rgb' if self.channels == 3 else ''}-{self.meta.get('dataset', '?')}"

    def provenance(self):
        return {"name": self.name, "path": self.path and os.path.abspath(self.path), "sha256": self.sha256,
                "resolution": self.size, "channels": self.channels, "classes": self.meta.get("classes"),
                "dataset": self.meta.get("dataset"), "data_fingerprint": self.meta.get("data_fingerprint"),
                "heldout_accuracy": self.meta.get("heldout_accuracy"), "feature_dim": FEATURES}

    def predict(self, images, batch_size=500):
        """(features (N, 128) float64, probabilities (N, classes) float64) of images (N, C, S, S) in [-1, 1]."""
        return predict(self.net, images, batch_size)


def predict(net, images, batch_size=500):
    """Run ``net`` in eval mode on float32 images; returns (features, softmax probabilities) in float64."""
    import mindspore as ms

    net.set_train(False)
    images = np.asarray(images, dtype=np.float32)
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        logits, f = net(ms.Tensor(np.ascontiguousarray(images[start:start + batch_size])))
        logits = logits.asnumpy().astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        probs.append(p / p.sum(axis=1, keepdims=True))
        feats.append(f.asnumpy().astype(np.float64))
    if not feats:
        return np.zeros((0, FEATURES)), np.zeros((0, net.classes))
    return np.concatenate(feats), np.concatenate(probs)


# ---------------------------------------------------------------------------- data


def native_shape(data):
    """(size, channels) a source holds, without decoding every image: the default of train-classifier.

    builtin: 8x8 gray; MNIST: 28x28 gray; an image folder: its most common size, gray when
    every image is a gray mode (L, I;16, 1, ...) else RGB; an array: its shape.
    """
    from PIL import Image

    from ms_gan.data import resolve_source, sources

    kind, path = resolve_source(data)
    if kind == "builtin":
        return 8, 1
    if kind == "mnist":
        return 28, 1
    if kind == "array":
        images01, _ = sources.read_array(path)
        height, width, channels = images01.shape[1:]
    else:
        sizes = sources.image_sizes(path)
        if not sizes:
            raise UserError(f"no images found under {path!r}")
        height, width = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        channels = 1
        for name in sources.list_images(path):
            with Image.open(name) as im:
                if im.mode not in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
                    channels = 3
                    break
    if height != width:
        raise UserError(f"--data {data}: its images are {height}x{width}, not square; give --size S "
                        f"(they are resized to SxS as the training pipeline does)")
    return int(height), int(channels)


def labels_of(data):
    """(class names, labels of the reference split or None) without decoding images where possible.

    UserError when the source has no labels: a ``.npy``, a ``.npz`` without ``labels``, an
    image folder without class sub-folders.
    """
    from ms_gan.data import resolve_source, sources
    from ms_gan.data.builtin import load_digits

    kind, path = resolve_source(data)
    if kind == "builtin":
        return [str(d) for d in range(10)], np.asarray(load_digits()[1], np.int64)
    if kind == "mnist":
        folder = sources.prepare_mnist_dir(path, "test")
        labels = sources.read_idx(os.path.join(folder, sources.MNIST_FILES["test"][1])).astype(np.int64)
        return [str(d) for d in range(max(10, int(labels.max()) + 1))], labels
    if kind == "folder":
        names = sources.folder_classes(path)
        if len(names) < 2:
            raise UserError(f"--data {data} has no labels: a classifier needs one sub-folder per class "
                            f"(DIR/CLASS/image.png) with at least 2 classes; found "
                            f"{len(names)} sub-folder(s) with images")
        return names, None
    images01, labels = sources.read_array(path)
    if labels is None:
        raise UserError(f"--data {data} has no labels: a classifier needs a .npz with 'images' and 'labels' "
                        f"(numpy.savez(FILE, images=x, labels=y))")
    if len(labels) != len(images01):
        raise UserError(f"--data {data} has {len(images01)} images but {len(labels)} labels")
    if labels.min() < 0:
        raise UserError(f"--data {data}: labels must be class indices 0..K-1, found {labels.min()}")
    return [str(c) for c in range(int(labels.max()) + 1)], labels


def data_fingerprint(images, labels):
    """sha256 of float32 images (N, C, S, S) as the pipeline makes them, then int64 labels (or none)."""
    digest = hashlib.sha256(np.ascontiguousarray(images, np.float32).tobytes())
    if labels is not None:
        digest.update(np.ascontiguousarray(labels, np.int64).tobytes())
    return digest.hexdigest()


def _indices_sha256(indices):
    return hashlib.sha256(np.ascontiguousarray(indices, np.int64).tobytes()).hexdigest()


def labelled_images(data, size, channels):
    """All labelled images of ``data`` at size/channels as the training pipeline makes them.

    Returns (images (N, C, S, S) in [-1, 1], labels, class names, train indices, held-out
    indices, split description). MNIST: its train files, then its t10k files (held out);
    other sources: :func:`ms_gan.data.builtin.split_indices` (20% held out, seed 0).
    """
    from ms_gan.data import ImageSpec, load_images, resolve_source
    from ms_gan.data.builtin import split_indices

    check_shape(size, channels)
    names, _ = labels_of(data)
    kind, path = resolve_source(data)
    spec = ImageSpec(int(size), int(channels))
    if kind == "mnist":
        train_x, train_y = load_images(path, spec, usage="train")
        test_x, test_y = load_images(path, spec, usage="test")
        images, labels = np.concatenate([train_x, test_x]), np.concatenate([train_y, test_y])
        train_idx, hold_idx = np.arange(len(train_x)), np.arange(len(train_x), len(images))
        split = {"method": "the source's files", "train": "train-*", "heldout": "t10k-*"}
    else:
        images, labels = load_images(data, spec)
        train_idx, hold_idx = split_indices(len(images), HOLDOUT_FRACTION, SPLIT_SEED)
        split = {"method": "ms_gan.data.builtin.split_indices", "holdout_fraction": HOLDOUT_FRACTION,
                 "seed": SPLIT_SEED}
    if labels is None or len(labels) != len(images):
        raise UserError(f"--data {data} has no labels for its images")
    if int(labels.max()) >= len(names):
        names = names + [str(c) for c in range(len(names), int(labels.max()) + 1)]
    split.update(n_train=int(len(train_idx)), n_heldout=int(len(hold_idx)),
                 train_indices_sha256=_indices_sha256(train_idx), heldout_indices_sha256=_indices_sha256(hold_idx))
    return images, labels, names, train_idx, hold_idx, split


def dataset_name(data):
    from ms_gan.data import resolve_source

    kind, path = resolve_source(data)
    return "builtin" if kind == "builtin" else f"{kind}:{os.path.abspath(path)}"


def _shift_augment(images, rng, max_shift):
    """Random translations by up to ``max_shift`` pixels, background (-1) filled."""
    if max_shift <= 0:
        return images
    n, c, h, w = images.shape
    pad = np.pad(images, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)), constant_values=-1.0)
    dy = rng.integers(0, 2 * max_shift + 1, n)
    dx = rng.integers(0, 2 * max_shift + 1, n)
    out = np.empty_like(images)
    for i in range(n):
        out[i] = pad[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


# ---------------------------------------------------------------------------- training


def default_epochs(size):
    """30 at 8x8 (the shipped classifier), 8 at 28x28 (MNIST, 60,000 images), else 10."""
    return 30 if size == 8 else 8 if size == 28 else 10


def train(data="builtin", size=None, channels=None, epochs=None, batch_size=64, lr=1e-3, seed=0, log=print):
    """Train a classifier on a labelled source; returns (net, meta).

    Adam with a fixed learning rate on cross-entropy, random shifts of about size/14
    pixels (1 at 8x8, 2 at 28x28) as augmentation, compiled with ``mindspore.jit``.
    ``meta`` holds the shape, classes, dataset, fingerprint, split, held-out accuracy and settings.

    Args:
        data: any labelled source (builtin, MNIST folder, class-folder images, .npz with labels).
        size, channels: the input shape (default: the data's own, :func:`native_shape`).
        epochs: passes over the training split (default :func:`default_epochs`).
        batch_size: images per step.
        lr: Adam learning rate.
        seed: seed of the weights, the batch order and the augmentation.
        log: callable for one-line progress messages (None: silent).
    """
    import mindspore as ms
    from mindspore import nn, ops

    if size is None or channels is None:
        own_size, own_channels = native_shape(data)
        size, channels = size or own_size, channels or own_channels
    images, labels, names, train_idx, hold_idx, split = labelled_images(data, size, channels)
    train_x, train_y, hold_x, hold_y = images[train_idx], labels[train_idx], images[hold_idx], labels[hold_idx]
    if len(train_x) < 2 or len(hold_x) < 1:
        raise UserError(f"--data {data!r} has too few labelled images to train a classifier")
    epochs = int(epochs or default_epochs(size))
    batch_size = int(min(batch_size, len(train_x)))
    net = build(size, seed, channels, len(names))
    optimizer = nn.Adam(net.trainable_params(), learning_rate=lr)
    loss_fn = nn.CrossEntropyLoss()

    def forward(x, y):
        logits, _ = net(x)
        return loss_fn(logits, y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        return ops.depend(loss, optimizer(grads))

    rng = np.random.default_rng([int(seed), 11])
    max_shift = max(1, int(round(size / 14)))
    steps_per_epoch = len(train_x) // batch_size
    start = time.time()
    for epoch in range(epochs):
        net.set_train(True)
        order = rng.permutation(len(train_x))
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            x = _shift_augment(train_x[idx], rng, max_shift)
            loss = step(ms.Tensor(x), ms.Tensor(train_y[idx].astype(np.int32)))
            total += float(loss.asnumpy())
        if log and (epoch + 1 == epochs or (epoch + 1) % max(1, epochs // 6) == 0):
            acc = accuracy(net, hold_x, hold_y)
            log(f"classifier epoch {epoch + 1}/{epochs}: loss {total / max(1, steps_per_epoch):.4f}, "
                f"held-out accuracy {acc:.4f}")
    heldout = accuracy(net, hold_x, hold_y)
    if split["method"] == "the source's files":
        train_split, heldout_split = "train", "t10k"
    else:
        train_split = f"split_indices({len(images)}, {HOLDOUT_FRACTION}, seed {SPLIT_SEED})[0]"
        heldout_split = f"split_indices({len(images)}, {HOLDOUT_FRACTION}, seed {SPLIT_SEED})[1]"
    meta = dict(format=FORMAT, dataset=dataset_name(data), resolution=int(size), channels=int(channels),
                classes=len(names), class_names=names, data_fingerprint=data_fingerprint(images, labels),
                split=split, train_split=train_split, heldout_split=heldout_split,
                heldout_accuracy=round(heldout, 6), n_train=int(len(train_x)), n_heldout=int(len(hold_x)),
                epochs=epochs, batch_size=batch_size, lr=lr, seed=int(seed),
                augmentation=f"random shifts up to {max_shift} px", features=FEATURES,
                seconds=round(time.time() - start, 1), mindspore=ms.__version__)
    return net, meta


def accuracy(net, images, labels):
    """Share of ``images`` whose argmax prediction equals ``labels``."""
    if len(images) == 0:
        return float("nan")
    _, probs = predict(net, images)
    return float(np.mean(probs.argmax(axis=1) == np.asarray(labels)))


# ---------------------------------------------------------------------------- files


def sha256_of(path):
    from ms_gan.checkpoint import file_sha256

    return file_sha256(path)


def save(net, meta, path):
    """Write the classifier and its metadata; returns the file's sha256.

    Also writes ``path + '.json'``: the metadata plus the sha256, for people.
    """
    import mindspore as ms

    from ms_gan.checkpoint import atomic_output, write_json

    with atomic_output(path, ".ckpt") as tmp:
        ms.save_checkpoint(net, tmp, append_dict={"ms_gan_classifier": json.dumps(meta, sort_keys=True)},
                           crc_check=True)
    digest = sha256_of(path)
    write_json(path + ".json", dict(meta, sha256=digest, file=os.path.basename(path)))
    return digest


def _existing(path):
    """``path`` (default: the shipped classifier), expanded; UserError when the file is not there."""
    path = os.path.expanduser(str(path or DEFAULT_CLASSIFIER))
    if not os.path.isfile(path):
        if os.path.abspath(path) == DEFAULT_CLASSIFIER:
            raise UserError(f"the built-in digits classifier {path} is missing from this installation; reinstall "
                            f"ms_gan, or make one with 'ms-gan train-classifier --data builtin --out FILE' and "
                            f"pass --classifier FILE")
        raise UserError(f"classifier {path!r} does not exist; make one with "
                        f"'ms-gan train-classifier --data DIR --size S --channels C --out {path}'")
    return path


def read_meta(path=None):
    """The metadata of a classifier file (default: the shipped one), from its ``.json`` when it
    describes this very file (same sha256), else from the checkpoint; never builds a network.

    Returns the metadata with ``channels`` and ``classes`` filled in (files written before
    those keys existed are 1-channel, 10-class) and ``path``.
    """
    path = _existing(path)
    try:
        with open(path + ".json") as f:
            meta = json.load(f)
        if meta.get("sha256") != sha256_of(path):
            meta = None  # a stale copy: the checkpoint's own metadata decides
    except (OSError, ValueError):
        meta = None
    if meta is None:
        _, meta = _read_checkpoint(path, metadata_only=True)
    return dict(_checked(meta, path), path=path)


def _checked(meta, path):
    if meta.get("format") != FORMAT or not MIN_SIZE <= int(meta.get("resolution", 0)) <= MAX_SIZE:
        raise UserError(f"{path} has classifier format {meta.get('format')}, this ms_gan reads {FORMAT}")
    return dict(meta, channels=int(meta.get("channels", CHANNELS)), classes=int(meta.get("classes", NUM_CLASSES)))


def _read_checkpoint(path, metadata_only=False):
    """(parameters, checked metadata) of a classifier checkpoint; only the metadata when ``metadata_only``."""
    import mindspore as ms

    choose = {"choice_func": lambda name: name == "ms_gan_classifier"} if metadata_only else {}
    try:
        params = ms.load_checkpoint(path, crc_check=True, **choose)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"classifier {path} is corrupt or not a MindSpore checkpoint ({first[:120]})") from None
    raw = params.pop("ms_gan_classifier", None)
    if raw is None:
        raise UserError(f"{path} is not an ms_gan classifier (no classifier metadata); "
                        f"make one with 'ms-gan train-classifier'")
    return params, _checked(json.loads(raw if isinstance(raw, str) else str(raw)), path)


def load(path=None):
    """A :class:`Classifier` from ``path`` (default: the shipped built-in-digits classifier)."""
    path = _existing(path)
    params, meta = _read_checkpoint(path)
    net = build(int(meta["resolution"]), 0, meta["channels"], meta["classes"])
    for p in net.get_parameters():
        value = params.get(p.name)
        if value is None or tuple(value.shape) != tuple(p.shape):
            raise UserError(f"classifier {path} does not match the {meta['resolution']}x{meta['resolution']} "
                            f"{meta['channels']}-channel {meta['classes']}-class architecture (parameter {p.name})")
        p.set_data(value)
    net.set_train(False)
    return Classifier(net, meta, path, sha256_of(path))
