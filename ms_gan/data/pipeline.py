"""From a ``--data`` value to a batched, sharded ``mindspore.dataset`` pipeline.

Order and sharding are decided here, not by the dataset's own shuffle: each epoch's
sample order is drawn from ``numpy.random.default_rng([seed, epoch])`` and handed to
the dataset as a ``SubsetSampler``. That makes the order a pure function of
(seed, epoch), which is what exact resume needs (rebuild the epoch, skip the batches
already done), and lets every rank of a distributed run draw the same global order
and keep its own disjoint slice ``order[shard_id::num_shards]`` (truncated so every
rank gets the same number of batches and no rank waits on an all-reduce).
"""
import os
from dataclasses import dataclass

import numpy as np

from ms_gan.data import builtin, sources
from ms_gan.errors import UserError

SAMPLINGS = ("shuffle", "replacement")


@dataclass(frozen=True)
class ImageSpec:
    """The image shape a preset trains on."""

    size: int
    channels: int

    @property
    def shape(self):
        return (self.channels, self.size, self.size)


def resolve_source(data):
    """Classify a ``--data`` value: returns (kind, path) with kind in builtin/mnist/folder/array."""
    if data is None or str(data).lower() == "builtin":
        return "builtin", None
    path = os.path.expanduser(str(data))
    if path.endswith((".npy", ".npz")):
        if not os.path.isfile(path):
            raise UserError(f"array file {path!r} does not exist")
        return "array", path
    if not os.path.exists(path):
        raise UserError(f"data path {path!r} does not exist: give 'builtin', an MNIST IDX folder, "
                        f"an image folder or a .npy/.npz file")
    if os.path.isfile(path):
        raise UserError(f"data file {path!r} is not a .npy/.npz array; give a folder or an array file")
    if sources.is_mnist_dir(path):
        return "mnist", path
    names = os.listdir(path)
    if any("idx" in n and "ubyte" in n for n in names):
        # Looks like an incomplete MNIST folder: let the MNIST checker name what is missing.
        sources.prepare_mnist_dir(path)
    return "folder", path


def describe_source(data, spec=None):
    """What ``data`` is, for the run's first log line; for an image folder with ``spec``, also
    which image sizes are resized to the preset's (read from the file headers only)."""
    kind, path = resolve_source(data)
    if kind == "builtin":
        return "built-in 8x8 digits (1,797 images)"
    if kind == "folder" and spec is not None:
        return f"folder {path} ({sources.describe_sizes(sources.image_sizes(path), spec.size)})"
    return f"{kind} {path}"


def _to_spec(images01, spec):
    """(N,H,W,C) floats in [0,1] -> (N,C,S,S) float32 in [-1,1] for ``spec``."""
    n, h, w, c = images01.shape
    if c != spec.channels:
        if spec.channels == 3:
            images01 = np.repeat(images01, 3, axis=3)
        else:  # ITU-R 601-2 luma, the transform Pillow's convert('L') applies
            images01 = images01 @ np.array([0.299, 0.587, 0.114])[:, None]
    if (h, w) != (spec.size, spec.size):
        images01 = np.stack([sources.resize01(image, spec.size, spec.size) for image in images01])
    # The recipes all map [0, max] linearly onto [-1, 1] (x/16*2-1, x/127.5-1,
    # (x/255-0.5)/0.5): computed in float64, then cast, like the articles' NumPy code.
    return (images01 * 2.0 - 1.0).transpose(0, 3, 1, 2).astype(np.float32)


def load_images(data, spec, usage="train"):
    """All images of a source in memory: (float32 (N,C,S,S) in [-1,1], labels or None).

    Used for in-memory pipelines, evaluation and classifiers. ``usage`` selects
    MNIST's train or test (t10k) files; other sources ignore it.
    """
    kind, path = resolve_source(data)
    if kind == "builtin":
        images, labels = builtin.load_digits()
        images01 = images.astype(np.float64)[..., None] / builtin.MAX_VALUE
    elif kind == "mnist":
        images01, labels = sources.read_mnist(path, usage)
    elif kind == "folder":
        images01, labels = sources.read_folder(path, spec.channels, spec.size)
    else:
        images01, labels = sources.read_array(path)
    return _to_spec(images01, spec), (None if labels is None else np.asarray(labels, dtype=np.int64))


LABEL_SOURCES = ("the built-in digits, an MNIST IDX folder, an image folder with one sub-folder per class, "
                 "or a .npz with a 'labels' array")


def class_labels(data):
    """(labels int64 (N,), number of classes) of a training source, read without decoding images.

    For ``train --conditional``, before any work: UserError naming what has labels when ``data``
    has none (a .npy, a .npz without ``labels``/``y``, an image folder without class sub-folders).
    """
    kind, path = resolve_source(data)
    labels = None
    if kind == "builtin":
        labels = builtin.load_digits()[1]
    elif kind == "mnist":
        folder = sources.prepare_mnist_dir(path, "train")
        labels = sources.read_idx(os.path.join(folder, sources.MNIST_FILES["train"][1]))
    elif kind == "folder":
        labels = sources.folder_labels(path, sources.list_images(path))
        if len(labels) == 0 or labels.min() < 0:
            labels = None   # images directly in the folder have no class
    elif path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as arrays:
            key = next((k for k in ("labels", "y") if k in arrays.files), None)
            labels = None if key is None else np.asarray(arrays[key]).reshape(-1)
    if labels is not None and len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"the labels of {data} are {labels.dtype} values; class labels must be integers 0..K-1")
    if labels is None or len(labels) == 0 or int(labels.max()) < 1:
        raise UserError(f"--conditional needs class labels and {describe_source(data)} has none: use {LABEL_SOURCES}")
    if int(labels.min()) < 0:
        raise UserError(f"the labels of {data} include {int(labels.min())}; class labels must be 0..K-1")
    return labels.astype(np.int64), int(labels.max()) + 1


def epoch_order(n, seed, epoch, sampling="shuffle", num_shards=1, shard_id=0):
    """Indices this shard reads in ``epoch``: a pure function of its arguments."""
    if sampling not in SAMPLINGS:
        raise UserError(f"unknown sampling {sampling!r}: use one of {SAMPLINGS}")
    if not 0 <= shard_id < num_shards:
        raise UserError(f"shard_id {shard_id} is outside 0..{num_shards - 1}")
    rng = np.random.default_rng([int(seed), int(epoch)])
    if sampling == "shuffle":
        order = rng.permutation(n)
    else:  # uniform draws with replacement, as the Keras recipe's np.random.randint
        order = rng.integers(0, n, size=n)
    per_shard = n // num_shards
    return order[shard_id::num_shards][:per_shard].astype(np.int64)


class _BatchSource:
    """Random-access source for GeneratorDataset that returns whole batches.

    One Python call per batch instead of per image keeps GeneratorDataset off the
    training step's critical path.
    """

    def __init__(self, images, batches):
        self.images = images
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return (self.images[self.batches[i]],)


class _LabelledBatchSource(_BatchSource):
    """Batches of (images, int32 labels) for conditional models."""

    def __init__(self, images, labels, batches):
        super().__init__(images, batches)
        self.labels = labels

    def __getitem__(self, i):
        return self.images[self.batches[i]], self.labels[self.batches[i]]


class ImagePipeline:
    """A training data source: builds one epoch's ``mindspore.dataset`` pipeline at a time.

    Args:
        data: the ``--data`` value ('builtin', an MNIST folder, an image folder, a .npy/.npz).
        spec: the preset's ImageSpec.
        batch_size: images per batch (per rank).
        seed: the run's seed; with ``epoch`` it fixes the sample order.
        sampling: 'shuffle' (each image once per epoch) or 'replacement' (uniform draws).
        drop_remainder: drop the last incomplete batch of an epoch.
        num_shards, shard_id: this process's slice of the data (distributed training).
        labels: also yield each batch's int32 class labels (a second column; conditional models).
    """

    def __init__(self, data, spec, batch_size, seed=0, sampling="shuffle", drop_remainder=True,
                 num_shards=1, shard_id=0, labels=False):
        if batch_size < 1:
            raise UserError(f"batch size must be at least 1, got {batch_size}")
        self.kind, self.path = resolve_source(data)
        self.spec = spec
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.sampling = sampling
        self.drop_remainder = bool(drop_remainder)
        self.num_shards = int(num_shards)
        self.shard_id = int(shard_id)
        self.with_labels = bool(labels)
        self.labels = class_labels(data)[0].astype(np.int32) if labels and self.kind != "mnist" else None
        if self.kind == "mnist":
            self.mnist_dir = sources.prepare_mnist_dir(self.path, "train")
            self.num_samples = len(sources.read_idx(os.path.join(self.mnist_dir, sources.MNIST_FILES["train"][1])))
            self.images = None
        else:
            self.images, _ = load_images(data, spec)
            self.num_samples = len(self.images)
        if self.labels is not None and len(self.labels) != self.num_samples:
            raise UserError(f"{data} holds {self.num_samples} images but {len(self.labels)} labels; "
                            f"give one label per image")
        per_shard = self.num_samples // self.num_shards
        if per_shard < self.batch_size and self.drop_remainder:
            raise UserError(f"the data has {per_shard} images per shard, fewer than one batch of "
                            f"{self.batch_size}; lower --batch-size")
        if per_shard == 0:
            raise UserError("the data has no images for this shard")

    def batches_per_epoch(self):
        per_shard = self.num_samples // self.num_shards
        full, rest = divmod(per_shard, self.batch_size)
        return full if (self.drop_remainder or rest == 0) else full + 1

    def indices(self, epoch):
        return epoch_order(self.num_samples, self.seed, epoch, self.sampling, self.num_shards, self.shard_id)

    def dataset(self, epoch, skip_batches=0):
        """The batched pipeline of ``epoch``, starting after ``skip_batches`` batches."""
        import mindspore.dataset as ds

        order = self.indices(epoch)
        n_batches = self.batches_per_epoch()
        order = order[: n_batches * self.batch_size] if self.drop_remainder else order
        order = order[skip_batches * self.batch_size:]
        if len(order) == 0:
            return None
        if self.kind == "mnist":
            import mindspore.dataset.vision as vision

            dataset = ds.MnistDataset(self.mnist_dir, usage="train", sampler=ds.SubsetSampler(order.tolist()))
            ops = [vision.Rescale(1.0 / 127.5, -1.0)]
            if self.spec.size != 28:
                ops.append(vision.Resize((self.spec.size, self.spec.size), vision.Inter.BILINEAR))
            ops.append(vision.HWC2CHW())
            dataset = dataset.map(operations=ops, input_columns="image")
            if self.spec.channels == 3:
                dataset = dataset.map(operations=_gray_to_rgb, input_columns="image")
            if self.with_labels:
                import mindspore as ms
                import mindspore.dataset.transforms as transforms

                dataset = dataset.map(operations=transforms.TypeCast(ms.int32), input_columns="label")
            dataset = dataset.project(["image", "label"] if self.with_labels else ["image"])
            return dataset.batch(self.batch_size, drop_remainder=False)
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.with_labels:
            return ds.GeneratorDataset(_LabelledBatchSource(self.images, self.labels, batches),
                                       column_names=["image", "label"], shuffle=False)
        return ds.GeneratorDataset(_BatchSource(self.images, batches), column_names=["image"], shuffle=False)


def _gray_to_rgb(image):
    return np.repeat(image, 3, axis=0)
