"""Every data source loads with the right shape, dtype, range and values, and shards correctly."""
import os

import numpy as np
import pytest

from ms_gan.data import ImagePipeline, ImageSpec, load_images, resolve_source
from ms_gan.data.builtin import load_digits
from ms_gan.data.pipeline import epoch_order
from ms_gan.errors import UserError
from tests.helpers import write_image_folder, write_mnist


def _batches(pipeline, epoch=0, skip=0):
    dataset = pipeline.dataset(epoch, skip)
    return [b[0].asnumpy() for b in dataset.create_tuple_iterator(num_epochs=1)]


def test_builtin_digits_are_the_optdigits_set():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_builtin_native_scaling_is_x_over_16_times_2_minus_1():
    images, _ = load_images("builtin", ImageSpec(8, 1))
    raw, _ = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    np.testing.assert_array_equal(images[:, 0], (raw / 16 * 2 - 1).astype(np.float32))


def test_builtin_resized_to_any_preset():
    images, _ = load_images("builtin", ImageSpec(64, 3))
    assert images.shape == (1797, 3, 64, 64)
    assert -1.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(images[:, 0], images[:, 2])  # gray replicated to RGB


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_pipeline_matches_the_bytes(tmp_path, gz):
    images, _ = write_mnist(str(tmp_path / "mnist"), n_train=20, gz=gz)
    pipe = ImagePipeline(str(tmp_path / "mnist"), ImageSpec(28, 1), batch_size=8, seed=3)
    assert pipe.kind == "mnist" and pipe.batches_per_epoch() == 2
    batches = _batches(pipe)
    assert [b.shape for b in batches] == [(8, 1, 28, 28)] * 2
    assert batches[0].dtype == np.float32
    order = pipe.indices(0)[:16]
    expected = images[order].astype(np.float64) / 127.5 - 1.0
    np.testing.assert_allclose(np.concatenate(batches)[:, 0], expected, atol=1e-6)


def test_mnist_missing_and_malformed_files_name_the_expected_files(tmp_path):
    folder = tmp_path / "m"
    write_mnist(str(folder), n_train=4)
    os.remove(folder / "train-labels-idx1-ubyte")
    with pytest.raises(UserError, match="train-labels-idx1-ubyte"):
        ImagePipeline(str(folder), ImageSpec(28, 1), batch_size=2)
    write_mnist(str(folder), n_train=4)
    with open(folder / "train-images-idx3-ubyte", "r+b") as f:
        f.write((1234).to_bytes(4, "big"))
    with pytest.raises(UserError, match="not a valid train-images-idx3-ubyte"):
        ImagePipeline(str(folder), ImageSpec(28, 1), batch_size=2)


def test_image_folder_nested_formats_and_values(tmp_path):
    root = tmp_path / "imgs"
    written = write_image_folder(str(root), n=6, size=16, mode="L", ext=".png")
    written.update(write_image_folder(str(root / "deep" / "er"), n=2, size=16, mode="L", ext=".bmp", seed=1))
    images, labels = load_images(str(root), ImageSpec(16, 1))
    assert images.shape == (8, 1, 16, 16) and images.dtype == np.float32
    paths = sorted(written)  # the reader walks folders in sorted order
    by_path = [written[p] for p in sorted(paths, key=lambda p: os.path.relpath(p, root).split(os.sep))]
    np.testing.assert_allclose(images[:, 0], np.stack(by_path) / 127.5 - 1.0, atol=1e-6)
    assert set(labels.tolist()) == {0, 1, 2}  # class folders a, b, deep


def test_image_folder_rgb_resized_and_converted(tmp_path):
    write_image_folder(str(tmp_path / "rgb"), n=4, size=20, mode="RGB", ext=".jpg")
    gray, _ = load_images(str(tmp_path / "rgb"), ImageSpec(8, 1))
    rgb, _ = load_images(str(tmp_path / "rgb"), ImageSpec(8, 3))
    assert gray.shape == (4, 1, 8, 8) and rgb.shape == (4, 3, 8, 8)
    assert -1 <= rgb.min() and rgb.max() <= 1


def test_image_folder_errors_name_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        load_images(str(tmp_path / "empty"), ImageSpec(8, 1))
    write_image_folder(str(tmp_path / "bad"), n=2, size=8)
    broken = tmp_path / "bad" / "a" / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(UserError, match="broken.png"):
        load_images(str(tmp_path / "bad"), ImageSpec(8, 1))


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw", "float01", "float11", "npz"])
def test_array_sources(tmp_path, layout):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    expected = base / 127.5 - 1.0
    path = tmp_path / "a.npy"
    if layout == "nhw":
        np.save(path, base)
    elif layout == "nhwc":
        np.save(path, base[..., None])
    elif layout == "nchw":
        np.save(path, base[:, None])
    elif layout == "float01":
        np.save(path, base.astype(np.float32) / 255.0)
    elif layout == "float11":
        np.save(path, (base / 127.5 - 1.0).astype(np.float32))
    else:
        path = tmp_path / "a.npz"
        np.savez(path, images=base, labels=np.arange(5))
    images, labels = load_images(str(path), ImageSpec(8, 1))
    assert images.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(images[:, 0], expected, atol=1e-6)
    if layout == "npz":
        assert labels.tolist() == [0, 1, 2, 3, 4]


def test_array_errors(tmp_path):
    np.save(tmp_path / "big.npy", np.full((2, 4, 4), 300, dtype=np.int32))
    with pytest.raises(UserError, match="0..255"):
        load_images(str(tmp_path / "big.npy"), ImageSpec(4, 1))
    np.save(tmp_path / "shape.npy", np.zeros((2, 4, 4, 7), dtype=np.uint8))
    with pytest.raises(UserError, match="shape"):
        load_images(str(tmp_path / "shape.npy"), ImageSpec(4, 1))
    with pytest.raises(UserError, match="does not exist"):
        resolve_source(str(tmp_path / "missing.npy"))


def test_shards_are_disjoint_equal_and_deterministic():
    a = epoch_order(101, seed=5, epoch=2, num_shards=2, shard_id=0)
    b = epoch_order(101, seed=5, epoch=2, num_shards=2, shard_id=1)
    assert len(a) == len(b) == 50
    assert not set(a.tolist()) & set(b.tolist())
    np.testing.assert_array_equal(a, epoch_order(101, seed=5, epoch=2, num_shards=2, shard_id=0))
    assert not np.array_equal(a, epoch_order(101, seed=5, epoch=3, num_shards=2, shard_id=0))


def test_pipeline_sharding_and_skip(tmp_path):
    spec = ImageSpec(8, 1)
    whole = ImagePipeline("builtin", spec, batch_size=16, seed=1)
    half0 = ImagePipeline("builtin", spec, batch_size=16, seed=1, num_shards=2, shard_id=0)
    half1 = ImagePipeline("builtin", spec, batch_size=16, seed=1, num_shards=2, shard_id=1)
    assert half0.batches_per_epoch() == half1.batches_per_epoch() == 898 // 16
    b0, b1 = _batches(half0), _batches(half1)
    assert len(b0) == len(b1) == 56
    skipped = _batches(whole, skip=3)
    full = _batches(whole)
    np.testing.assert_array_equal(skipped[0], full[3])


def test_replacement_sampling_draws_with_repeats():
    order = epoch_order(50, seed=0, epoch=0, sampling="replacement")
    assert len(order) == 50 and len(set(order.tolist())) < 50
