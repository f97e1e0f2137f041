"""Class labels from every data source that has them (train --conditional), and the refusals."""
import os

import numpy as np
import pytest

from ms_gan.data import ImagePipeline, ImageSpec, load_images
from ms_gan.data.pipeline import class_labels
from ms_gan.errors import UserError
from tests.helpers import write_image_folder, write_mnist


def _batches(pipeline):
    return [(img.asnumpy(), lab.asnumpy()) for img, lab in pipeline.dataset(0).create_tuple_iterator(num_epochs=1)]


def _check_pipeline(data, spec, labels):
    """Each batch's labels are those of its images (matched by content against the loaded source)."""
    images, _ = load_images(data, spec)
    pipe = ImagePipeline(data, spec, 4, seed=3, labels=True)
    order = pipe.indices(0)
    seen = 0
    for b, (img, lab) in enumerate(_batches(pipe)):
        idx = order[b * 4: b * 4 + len(img)]
        assert lab.dtype == np.int32
        np.testing.assert_array_equal(lab, labels[idx])
        np.testing.assert_allclose(img, images[idx], atol=1e-6)
        seen += len(img)
    assert seen == pipe.batches_per_epoch() * 4


def test_builtin_digits_have_ten_classes():
    labels, k = class_labels("builtin")
    assert k == 10 and len(labels) == 1797 and set(labels) == set(range(10))
    pipe = ImagePipeline("builtin", ImageSpec(8, 1), 16, seed=0, labels=True)
    img, lab = _batches(pipe)[0]
    assert img.shape == (16, 1, 8, 8) and lab.shape == (16,)
    np.testing.assert_array_equal(lab, labels[pipe.indices(0)[:16]])


def test_mnist_idx_labels(tmp_path):
    _, labels = write_mnist(str(tmp_path), n_train=24)
    got, k = class_labels(str(tmp_path))
    np.testing.assert_array_equal(got, labels)
    assert k == int(labels.max()) + 1
    pipe = ImagePipeline(str(tmp_path), ImageSpec(28, 1), 8, seed=1, labels=True)
    for b, (img, lab) in enumerate(_batches(pipe)):
        assert lab.dtype == np.int32 and img.shape == (8, 1, 28, 28)
        np.testing.assert_array_equal(lab, labels[pipe.indices(0)[b * 8:(b + 1) * 8]])


def test_image_folder_classes_are_its_sub_folders(tmp_path):
    write_image_folder(str(tmp_path), n=12, size=8, classes=("cat", "dog", "owl"))
    labels, k = class_labels(str(tmp_path))
    assert k == 3 and np.bincount(labels).tolist() == [4, 4, 4]
    _check_pipeline(str(tmp_path), ImageSpec(8, 1), labels)


def test_npz_labels(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "d.npz")
    labels = rng.integers(0, 5, 20)
    labels[0] = 4
    np.savez(path, images=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), labels=labels)
    got, k = class_labels(path)
    assert k == 5
    _check_pipeline(path, ImageSpec(8, 1), got)


def test_sources_without_labels_are_refused_in_one_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 8), np.uint8))
    np.savez(tmp_path / "x.npz", images=np.zeros((8, 8, 8), np.uint8))
    flat = tmp_path / "flat"
    write_image_folder(str(flat), n=4, size=8, classes=("a",))
    for name in os.listdir(flat / "a"):
        os.rename(flat / "a" / name, flat / name)
    os.rmdir(flat / "a")
    for data in (tmp_path / "x.npy", tmp_path / "x.npz", flat):
        with pytest.raises(UserError, match="needs class labels") as err:
            class_labels(str(data))
        assert "\n" not in str(err.value)


def test_labels_must_match_the_images(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, images=np.zeros((10, 8, 8), np.uint8), labels=np.arange(3))
    with pytest.raises(UserError, match="10 images but 3 labels"):
        ImagePipeline(path, ImageSpec(8, 1), 4, labels=True)
