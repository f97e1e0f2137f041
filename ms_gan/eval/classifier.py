"""Digit classifiers whose features the metrics use (FCD, KID, precision/recall).

Inception features mean nothing for 8x8 or 28x28 digits, so, like TF-GAN's
``mnist_frechet_distance``, this project trains a small LeNet-style CNN on the
digits themselves and measures distances on its penultimate layer (128 ReLU
units). One classifier has one fixed input resolution: 8x8 for the built-in
digits, 28x28 for MNIST; images of another size are resized to it
(:func:`resize_images`).

A classifier checkpoint is a MindSpore ``.ckpt`` with its metadata (resolution,
dataset, held-out accuracy, training settings) stored inside under
``ms_gan_classifier``; :func:`load` also reports the file's sha256, which every
metric records as the extractor's identity. A JSON copy of the metadata (with the
sha256) is written next to it; :func:`read_meta` reads it without MindSpore, so a
classifier can be checked against the data before anything is built.

The classifier of the built-in digits ships inside the package
(``ms_gan/eval/assets/digits_classifier.ckpt``, package data), so ``eval`` and
``--eval-every`` find it after a plain ``pip install .`` too.
"""
import json
import os
import time

import numpy as np

from ms_gan.errors import UserError

FORMAT = "ms_gan-classifier-1"
NUM_CLASSES = 10
FEATURES = 128
CHANNELS = 1
DEFAULT_CLASSIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "digits_classifier.ckpt")
_CELL_CLASS = None


def _cell_class():
    """The LeNet Cell class (built lazily: importing this module must not import MindSpore)."""
    global _CELL_CLASS
    if _CELL_CLASS is not None:
        return _CELL_CLASS
    from mindspore import nn, ops

    class DigitClassifier(nn.Cell):
        """LeNet-style CNN: (N, 1, S, S) in [-1, 1] -> (logits (N, 10), features (N, 128)).

        8x8: two 3x3 convs (32, 64) then a 2x2 max-pool; 28x28: two 5x5 convs (32, 64)
        each followed by a 2x2 max-pool. Then Dense 128 + ReLU (the features), Dense 10.
        """

        def __init__(self, size):
            super().__init__()
            self.size = int(size)
            if self.size == 8:
                k, pools = 3, (False, True)
            elif self.size == 28:
                k, pools = 5, (True, True)
            else:
                raise UserError(f"classifiers exist for 8x8 and 28x28 images, not {size}x{size}")
            self.conv1 = nn.Conv2d(1, 32, k, pad_mode="same", has_bias=True)
            self.conv2 = nn.Conv2d(32, 64, k, pad_mode="same", has_bias=True)
            self.pool = nn.MaxPool2d(2, 2)
            self.pool1, self.pool2 = pools
            self.relu = nn.ReLU()
            out = self.size // (2 ** sum(pools))
            self.fc = nn.Dense(64 * out * out, FEATURES)
            self.head = nn.Dense(FEATURES, NUM_CLASSES)

        def construct(self, x):
            x = self.relu(self.conv1(x))
            if self.pool1:
                x = self.pool(x)
            x = self.relu(self.conv2(x))
            if self.pool2:
                x = self.pool(x)
            x = ops.reshape(x, (x.shape[0], -1))
            feats = self.relu(self.fc(x))
            return self.head(feats), feats

    _CELL_CLASS = DigitClassifier
    return _CELL_CLASS


def build(size, seed=0):
    """A fresh classifier for ``size`` x ``size`` images with seeded (PyTorch-default) weights."""
    from ms_gan.nn.init import initialize

    net = _cell_class()(size)
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
    def name(self):
        return f"lenet{self.size}-{self.meta.get('dataset', '?')}"

    def provenance(self):
        return {"name": self.name, "path": self.path and os.path.abspath(self.path), "sha256": self.sha256,
                "resolution": self.size, "dataset": self.meta.get("dataset"),
                "heldout_accuracy": self.meta.get("heldout_accuracy"), "feature_dim": FEATURES}

    def predict(self, images, batch_size=500):
        """(features (N, 128) float64, probabilities (N, 10) float64) of images (N, 1, S, S) in [-1, 1]."""
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
        return np.zeros((0, FEATURES)), np.zeros((0, NUM_CLASSES))
    return np.concatenate(feats), np.concatenate(probs)


def resize_images(images, size):
    """Images (N, C, H, W) in [-1, 1] -> (N, 1, size, size) float32 in [-1, 1].

    RGB becomes luma (ITU-R 601-2). Resizing uses Pillow's bilinear filter, which
    averages over the source area when shrinking (64x64 -> 8x8 is not aliased).
    """
    from PIL import Image

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise UserError(f"expected images (N, 1 or 3, H, W); got shape {images.shape}")
    if images.shape[1] == 3:
        images = np.tensordot(images, np.array([0.299, 0.587, 0.114], dtype=np.float32), axes=([1], [0]))[:, None]
    n, _, h, w = images.shape
    if (h, w) == (size, size):
        return np.ascontiguousarray(images)
    out = np.empty((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        im = Image.fromarray(images[i, 0], mode="F")
        out[i, 0] = np.asarray(im.resize((size, size), Image.BILINEAR))
    return np.clip(out, -1.0, 1.0)


# ---------------------------------------------------------------------------- data


def check_data(data):
    """Raise UserError unless ``data`` is 'builtin' or a complete MNIST folder (train and t10k)."""
    from ms_gan.data import resolve_source, sources

    kind, path = resolve_source(data)
    if kind == "mnist":
        sources.prepare_mnist_dir(path, "test")
    elif kind != "builtin":
        raise UserError(f"--data {data!r} is not 'builtin' or an MNIST folder (with train-* and t10k-* IDX files); "
                        f"classifiers need labelled digits")
    return kind, path


def classifier_data(data):
    """(train images, train labels, held-out images, held-out labels, description) for a --data value.

    ``builtin``: the 8x8 digits split by :func:`ms_gan.data.builtin.split_indices`
    (20% held out, seed 0). An MNIST folder: its train and t10k files at 28x28.
    """
    from ms_gan.data import ImageSpec, load_images
    from ms_gan.data.builtin import split_indices

    kind, path = check_data(data)
    if kind == "builtin":
        images, labels = load_images("builtin", ImageSpec(8, 1))
        train_idx, hold_idx = split_indices(len(images))
        return (images[train_idx], labels[train_idx], images[hold_idx], labels[hold_idx],
                {"dataset": "builtin", "resolution": 8, "train_split": "split_indices(1797, 0.2, seed 0)[0]",
                 "heldout_split": "split_indices(1797, 0.2, seed 0)[1]"})
    train_x, train_y = load_images(path, ImageSpec(28, 1), usage="train")
    test_x, test_y = load_images(path, ImageSpec(28, 1), usage="test")
    return (train_x, train_y, test_x, test_y,
            {"dataset": f"mnist:{os.path.abspath(path)}", "resolution": 28, "train_split": "train",
             "heldout_split": "t10k"})


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


def train(data="builtin", epochs=None, batch_size=64, lr=1e-3, seed=0, log=print):
    """Train a digit classifier; returns (net, meta).

    Adam with a fixed learning rate on cross-entropy, random 1-pixel shifts (8x8)
    or 2-pixel shifts (28x28) as augmentation, compiled with ``mindspore.jit``.
    ``meta`` holds the resolution, dataset, held-out accuracy and settings.

    Args:
        data: 'builtin' or an MNIST IDX folder (train and t10k files).
        epochs: passes over the training split (default 30 for 8x8, 8 for 28x28).
        batch_size: images per step.
        lr: Adam learning rate.
        seed: seed of the weights, the batch order and the augmentation.
        log: callable for one-line progress messages (None: silent).
    """
    import mindspore as ms
    from mindspore import nn, ops

    train_x, train_y, hold_x, hold_y, info = classifier_data(data)
    size = info["resolution"]
    if len(train_x) < 2 or len(hold_x) < 1:
        raise UserError(f"--data {data!r} has too few labelled images to train a classifier")
    if train_y is None or hold_y is None:
        raise UserError(f"--data {data!r} has no labels")
    if train_y.min() < 0 or train_y.max() >= NUM_CLASSES:
        raise UserError(f"labels of {data!r} must be digits 0..9; got {train_y.min()}..{train_y.max()}")
    epochs = int(epochs or (30 if size == 8 else 8))
    batch_size = int(min(batch_size, len(train_x)))
    net = build(size, seed)
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
    max_shift = 1 if size == 8 else 2
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
    meta = dict(info, format=FORMAT, channels=CHANNELS, classes=NUM_CLASSES, heldout_accuracy=round(heldout, 6), n_train=int(len(train_x)),
                n_heldout=int(len(hold_x)), epochs=epochs, batch_size=batch_size, lr=lr, seed=int(seed),
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
                        f"'ms-gan train-classifier --data DIR --out {path}'")
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
    if meta.get("format") != FORMAT or int(meta.get("resolution", 0)) not in (8, 28):
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
        raise UserError(f"{path} is not an ms_gan digit classifier (no classifier metadata); "
                        f"make one with 'ms-gan train-classifier'")
    return params, _checked(json.loads(raw if isinstance(raw, str) else str(raw)), path)


def load(path=None):
    """A :class:`Classifier` from ``path`` (default: the shipped built-in-digits classifier)."""
    path = _existing(path)
    params, meta = _read_checkpoint(path)
    net = build(int(meta["resolution"]))
    for p in net.get_parameters():
        value = params.get(p.name)
        if value is None or tuple(value.shape) != tuple(p.shape):
            raise UserError(f"classifier {path} does not match the {meta['resolution']}x{meta['resolution']} "
                            f"architecture (parameter {p.name})")
        p.set_data(value)
    net.set_train(False)
    return Classifier(net, meta, path, sha256_of(path))
