"""Training data as ``mindspore.dataset`` pipelines.

Every source ends in the same place: a batched pipeline of float32 images of shape
(B, C, H, W) scaled to [-1, 1], sharded with ``num_shards``/``shard_id``, in an order
fixed by (seed, epoch) so that an interrupted run can resume exactly.

Sources (the ``--data`` flag):

* ``builtin``: the 1,797 8x8 UCI optdigits images shipped with the package.
* a folder holding MNIST's IDX files (``train-images-idx3-ubyte`` ...): ``MnistDataset``.
* a folder tree of png/jpg/bmp images: ``GeneratorDataset`` over the decoded images.
* a ``.npy``/``.npz`` file of images: ``GeneratorDataset`` over the array.
"""
from ms_gan.data.pipeline import ImagePipeline, ImageSpec, describe_source, load_images, resolve_source

__all__ = ["ImagePipeline", "ImageSpec", "describe_source", "load_images", "resolve_source"]
