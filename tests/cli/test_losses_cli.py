"""--loss, --gp, --r1, --r1-every, --n-critic and --diffaugment through the CLI: every loss and regularizer
trains the presets it applies to, the ones that cannot are refused in one line, resume stays bit-identical."""
import json
import math
import os

import numpy as np
import pytest

from tests.cli.test_presets_cli import _opt_steps
from tests.helpers import assert_user_error, read_jsonl, run_cli, write_image_folder, write_mnist

AUG = "color,translation,cutout"


def _data(tmp_path, kind):
    if kind == "builtin":
        return "builtin"
    folder = str(tmp_path / kind)
    if kind == "mnist":
        write_mnist(folder, n_train=16, n_test=4)
    elif kind == "folder64":
        write_image_folder(folder, n=4, size=64, mode="L", classes=("7", "8"))
    else:
        write_image_folder(folder, n=4, size=128, mode="RGB", classes=("a", "b"))
    return folder


def _train(out, preset, data, *flags, steps=2, batch=4):
    return run_cli("train", "--preset", preset, "--data", data, "--out", out, "--max-steps", str(steps),
                   "--batch-size", str(batch), "--log-every", "1", "--no-progress", *flags, timeout=900)


# (preset, data, flags, D updates per iteration without --n-critic, iterations): each loss at least once,
# GP, R1 (lazy), n-critic and DiffAugment on every preset that takes them, both modes.
SWEEP = [
    ("dcgan_digits8", "builtin", ("--loss", "ns", "--n-critic", "2", "--mode", "pynative"), 2, 2),
    ("dcgan_digits8", "builtin", ("--loss", "lsgan", "--gp", "10", "--diffaugment", AUG), 2, 2),
    ("dcgan_digits8", "builtin", ("--loss", "bce_logits", "--r1", "5", "--r1-every", "2"), 2, 2),
    ("mlp_mnist", "mnist", ("--loss", "wasserstein", "--gp", "10", "--n-critic", "3"), 1, 2),
    ("mlp_mnist", "mnist", ("--loss", "hinge", "--diffaugment", "translation", "--mode", "pynative"), 1, 2),
    ("dcgan_mnist28", "mnist", ("--loss", "hinge", "--r1", "1", "--diffaugment", "cutout"), 1, 2),
    ("dcgan_mnist28", "mnist", ("--loss", "ns", "--diffaugment", "color"), 1, 2),
    ("dcgan_mnist28", "mnist", ("--loss", "lsgan", "--mode", "pynative"), 1, 2),   # every loss in both modes
    ("dcgan64", "folder64", ("--loss", "wasserstein", "--gp", "10", "--n-critic", "2"), 1, 1),
    ("sagan64", "folder64", ("--gp", "10", "--r1", "1", "--diffaugment", AUG), 1, 1),
    ("dcgan128_rgb", "rgb", ("--loss", "lsgan", "--diffaugment", AUG), 2, 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("preset,kind,flags,d_per_iter,steps", SWEEP, ids=[f"{s[0]}:{' '.join(s[2])}" for s in SWEEP])
def test_losses_and_regularizers_train_each_preset(tmp_path, preset, kind, flags, d_per_iter, steps):
    out = str(tmp_path / "run")
    batch = 2 if preset in ("dcgan64", "sagan64", "dcgan128_rgb") else 4
    r = _train(out, preset, _data(tmp_path, kind), *flags, steps=steps, batch=batch)
    assert r.returncode == 0, r.stderr
    records = [x for x in read_jsonl(os.path.join(out, "stats.jsonl")) if x["kind"] == "step"]
    assert len(records) == steps and all(math.isfinite(x["d_loss"]) and math.isfinite(x["g_loss"]) for x in records)
    n_critic = int(flags[flags.index("--n-critic") + 1]) if "--n-critic" in flags else 1
    assert _opt_steps(out) == (steps * d_per_iter * n_critic, steps)
    with open(os.path.join(out, "options.json")) as f:
        overrides = json.load(f)["overrides"]
    for flag, value in zip(flags[::2], flags[1::2]):   # recorded: a resume must repeat them
        if flag != "--mode":
            saved = overrides[flag[2:].replace("-", "_")]
            assert saved == (float(value) if isinstance(saved, float) else int(value) if isinstance(saved, int)
                             else value), (flag, overrides)


@pytest.mark.parametrize("preset,flags,fragment", [
    ("dcgan_digits8", ("--gp", "10"), "--loss bce_logits"),
    ("dcgan128_rgb", ("--gp", "10", "--mode", "pynative"), "--loss bce_logits"),
    ("dcgan128_rgb", ("--loss", "hinge", "--r1", "1"), "BatchNorm"),
    ("dcgan64", ("--loss", "softmax"), "--loss 'softmax' is unknown"),
    ("dcgan64", ("--loss", "bce"), "use --loss bce_logits"),
    ("dcgan64", ("--diffaugment", "color,flip"), "unknown policy 'flip'"),
    ("dcgan64", ("--n-critic", "0"), "--n-critic"),
])
def test_objective_flags_that_cannot_apply_are_one_line_errors(tmp_path, preset, flags, fragment):
    out = str(tmp_path / "run")
    assert_user_error(_train(out, preset, "builtin", *flags), fragment)
    assert not os.path.exists(out)


def _step_records(out):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in read_jsonl(os.path.join(out, "stats.jsonl"))
            if r["kind"] == "step"]


@pytest.mark.slow
@pytest.mark.parametrize("preset,mode,extra", [
    ("dcgan_digits8", "graph", ()),
    ("cdcgan_digits8", "pynative", ("--r1", "1", "--r1-every", "2")),   # the compiled input gradient, with labels
], ids=["graph", "conditional-pynative-r1"])
def test_resume_is_bit_identical_with_gp_and_diffaugment(tmp_path, preset, mode, extra):
    flags = ("--mode", mode) + extra + ("--loss", "hinge", "--gp", "10", "--n-critic", "2", "--diffaugment", AUG)
    whole, parts = str(tmp_path / "whole"), str(tmp_path / "parts")
    assert _train(whole, preset, "builtin", *flags, steps=5).returncode == 0
    assert _train(parts, preset, "builtin", *flags, steps=2).returncode == 0
    # resuming with a different objective is refused: the saved run's math would change
    assert_user_error(_train(parts, preset, "builtin", *flags[:-1], "color", steps=5))
    r = _train(parts, preset, "builtin", *flags, steps=5)
    assert r.returncode == 0, r.stderr
    assert _step_records(parts) == _step_records(whole) and len(_step_records(whole)) == 5

    import mindspore as ms

    a = ms.load_checkpoint(os.path.join(whole, "checkpoints", "latest.ckpt"))
    b = ms.load_checkpoint(os.path.join(parts, "checkpoints", "latest.ckpt"))
    assert sorted(a) == sorted(b)
    tensors = [k for k in a if hasattr(a[k], "asnumpy")]
    assert len(tensors) > 20 and all(np.array_equal(a[k].asnumpy(), b[k].asnumpy()) for k in tensors)
