"""Every preset trains through the CLI on its data formats; step orders are real; interpolate; learning."""
import os

import numpy as np
import pytest

from tests.helpers import assert_user_error, read_jsonl, run_cli, write_image_folder, write_mnist


def _opt_steps(run_dir):
    """(D optimizer steps, G optimizer steps) stored in the run's checkpoint."""
    import mindspore as ms

    params = ms.load_checkpoint(os.path.join(run_dir, "checkpoints", "latest.ckpt"))
    return int(params["opt_d.step"].asnumpy()), int(params["opt_g.step"].asnumpy())


def _check_run(out, iterations):
    for name in ("options.json", "stats.jsonl", "metrics.csv", "samples/grid_latest.png", "checkpoints/latest.ckpt"):
        assert os.path.isfile(os.path.join(out, name)), name
    steps = [r for r in read_jsonl(os.path.join(out, "stats.jsonl")) if r["kind"] == "step"]
    assert len(steps) == iterations


@pytest.mark.parametrize("preset,data_kind,batch,d_per_iter", [
    ("dcgan_digits8", "builtin", 16, 2),
    ("dcgan_mnist28", "mnist", 8, 1),
    ("dcgan64", "folder64", 4, 1),
    ("dcgan128_rgb", "rgb_classes", 4, 2),
])
def test_preset_trains_two_steps_on_its_data_and_step_order_is_real(tmp_path, preset, data_kind, batch, d_per_iter):
    if data_kind == "builtin":
        data = "builtin"
    elif data_kind == "mnist":
        data = str(tmp_path / "mnist")
        write_mnist(data, n_train=32)
    elif data_kind == "folder64":
        data = str(tmp_path / "sevens_and_eights")
        write_image_folder(data, n=8, size=64, mode="L", classes=("7", "8"))
    else:
        data = str(tmp_path / "icons")
        write_image_folder(data, n=8, size=128, mode="RGB", classes=("01", "02", "03"))
    out = str(tmp_path / "run")
    r = run_cli("train", "--preset", preset, "--data", data, "--out", out, "--max-steps", "2", "--batch-size",
                str(batch), "--log-every", "1", "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr
    _check_run(out, 2)
    assert _opt_steps(out) == (2 * d_per_iter, 2)


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_sagan64_trains_with_attention_figure_and_logs_gamma_and_sigma(tmp_path, mode):
    out = str(tmp_path / "sagan")
    r = run_cli("train", "--preset", "sagan64", "--out", out, "--epochs", "1", "--max-steps", "2",
                "--batch-size", "4", "--log-every", "1", "--mode", mode, "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr
    _check_run(out, 2)
    # --max-steps stops mid-epoch; the attention CLI works on the checkpoint
    a = run_cli("attention", "--ckpt", out, "--out", str(tmp_path / "attn.png"))
    assert a.returncode == 0, a.stderr
    assert os.path.isfile(tmp_path / "attn.png")


def test_sagan64_epoch_outputs_include_attention_and_diagnostics(tmp_path):
    data = str(tmp_path / "tiny64.npy")
    np.save(data, np.random.default_rng(0).integers(0, 256, (8, 64, 64), dtype=np.uint8))
    out = str(tmp_path / "sagan")
    r = run_cli("train", "--preset", "sagan64", "--data", data, "--out", out, "--epochs", "1", "--batch-size", "4",
                "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(os.path.join(out, "attention", "epoch_0001.png"))
    epoch = [x for x in read_jsonl(os.path.join(out, "stats.jsonl")) if x["kind"] == "epoch"][0]
    diag = epoch["diagnostics"]
    gammas = [k for k in diag if k.endswith(".gamma")]
    sigmas = [k for k in diag if k.endswith(".sigma")]
    assert len(gammas) == 4 and len(sigmas) == 8
    assert all(v > 0 for k, v in diag.items() if k.endswith(".sigma"))


def test_attention_rejects_presets_without_attention(tmp_path):
    out = str(tmp_path / "d8")
    assert run_cli("train", "--preset", "dcgan_digits8", "--out", out, "--max-steps", "1",
                   "--no-progress").returncode == 0
    assert_user_error(run_cli("attention", "--ckpt", out, "--out", str(tmp_path / "a.png")), "no self-attention")


def test_interpolate_strip_size_and_endpoints(tmp_path):
    out = str(tmp_path / "d8")
    assert run_cli("train", "--preset", "dcgan_digits8", "--out", out, "--max-steps", "3",
                   "--no-progress").returncode == 0
    r = run_cli("interpolate", "--ckpt", out, "--steps", "10", "--rows", "2", "--seed", "5", "--out",
                str(tmp_path / "strip.png"))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    strip = np.asarray(Image.open(tmp_path / "strip.png"))
    # 2 rows x 10 columns of 8x8 with 2-px gaps (78 x 18), scaled up by an integer factor
    h, w = strip.shape[:2]
    assert w * 18 == h * 98 and w % 98 == 0
    # endpoints: the images of the two latent vectors themselves
    from ms_gan.generate import noise
    from ms_gan import presets

    ends = noise(presets.get("dcgan_digits8"), 4, 5)
    np.save(tmp_path / "ends.npy", ends)
    assert run_cli("sample", "--ckpt", out, "--noise", str(tmp_path / "ends.npy"), "--out",
                   str(tmp_path / "ends_img.npy")).returncode == 0
    ends_img = np.load(tmp_path / "ends_img.npy")
    import ms_gan.viz as viz

    tiles = viz.to_uint8(ends_img)
    factor = w // 98
    small = strip[::factor, ::factor]
    first = small[0:8, 0:8]
    last = small[0:8, 90:98]
    second_row_first = small[10:18, 0:8]
    np.testing.assert_array_equal(first, tiles[0][..., 0])
    np.testing.assert_array_equal(last, tiles[1][..., 0])
    np.testing.assert_array_equal(second_row_first, tiles[2][..., 0])


def test_digits8_learns_d_accuracy_on_fakes_and_samples_change(tmp_path):
    """A few epochs on the built-in digits move D's fake accuracy up from chance and change the grid."""
    out = str(tmp_path / "learn")
    r = run_cli("train", "--preset", "dcgan_digits8", "--out", out, "--epochs", "3", "--log-every", "0",
                "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr
    epochs = [x for x in read_jsonl(os.path.join(out, "stats.jsonl")) if x["kind"] == "epoch"]
    assert len(epochs) == 3
    # an untrained D sits near chance on fakes; after training it separates them clearly
    assert max(e["d_acc_fake"] for e in epochs) > 0.7
    from PIL import Image

    first = np.asarray(Image.open(os.path.join(out, "samples", "grid_epoch_0001.png")), dtype=np.float64)
    last = np.asarray(Image.open(os.path.join(out, "samples", "grid_epoch_0003.png")), dtype=np.float64)
    assert np.abs(first - last).mean() > 1.0
    # generated digits get darker backgrounds like the data (most pixels of the digits are 0 -> -1)
    from ms_gan.generate import load_generator, noise, run_generator
    from ms_gan import device

    device.setup("CPU")
    preset, G, _ = load_generator(out)
    images = run_generator(G, noise(preset, 64, 0))
    assert np.median(images) < 0.0


def test_eval_every_logs_fcd_kid_and_keeps_best_checkpoint(tmp_path):
    out = str(tmp_path / "ev")
    r = run_cli("train", "--preset", "dcgan_digits8", "--out", out, "--epochs", "1", "--eval-every", "1",
                "--eval-n", "300", "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr
    epoch = [x for x in read_jsonl(os.path.join(out, "stats.jsonl")) if x["kind"] == "epoch"][0]
    assert epoch["fcd"] > 0 and np.isfinite(epoch["kid_mean"]) and epoch["eval_n"] == 300
    assert os.path.isfile(os.path.join(out, "checkpoints", "best.ckpt"))
    assert_user_error(run_cli("train", "--preset", "dcgan64", "--data", str(tmp_path), "--eval-every", "1"),
                      f"no classifier for --data {tmp_path} at 64x64", "--classifier FILE")
