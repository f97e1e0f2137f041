"""Noise, interpolation and the checks made before a generator runs (no MindSpore needed)."""
import numpy as np
import pytest

from ms_gan import presets
from ms_gan.errors import UserError
from ms_gan.generate import MAX_IMAGES, check_count, check_one_source, interpolate, load_noise, noise


@pytest.fixture(scope="module")
def preset():
    return presets.get("dcgan_digits8")


def test_noise_is_a_function_of_the_seed_and_follows_the_preset(preset):
    a, b = noise(preset, 5, 3), noise(preset, 5, 3)
    assert a.shape == (5, preset.z_dim) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, noise(preset, 5, 4))
    uniform = presets.get("dcgan_mnist28")
    assert np.abs(noise(uniform, 100, 0)).max() <= 1.0


def test_interpolation_starts_and_ends_at_the_given_vectors(preset):
    z0, z1 = noise(preset, 2, 0)
    for slerp in (False, True):
        path = interpolate(z0, z1, 5, slerp)
        assert path.shape == (5, preset.z_dim)
        np.testing.assert_array_equal(path[0], z0)
        np.testing.assert_array_equal(path[-1], z1)


@pytest.mark.parametrize("array, message", [
    (np.zeros((0, 64), np.float32), "N >= 1"),
    (np.zeros((3, 7), np.float32), "needs (N, 64)"),
    (np.array(["a", "b"]), "needs numbers"),
    (np.full((2, 64), np.nan, np.float32), "NaN"),
])
def test_bad_noise_files_are_refused(tmp_path, preset, array, message):
    np.save(tmp_path / "z.npy", array)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_noise(str(tmp_path / "z.npy"), preset)


def test_counts_and_sources_are_checked(preset):
    check_count(MAX_IMAGES)
    with pytest.raises(UserError, match="more than 100,000"):
        check_count(MAX_IMAGES + 1)
    with pytest.raises(UserError, match="exactly one"):
        check_one_source("a.ckpt", "b.mindir")
    check_one_source(None, "b.mindir")
