"""--gp and --r1 through the CLI on every preset they apply to, graph and PyNative (its own file so that
pytest-xdist runs it beside tests/cli/test_losses_cli.py: 18 short trainings)."""
import json
import math
import os

import pytest

from tests.cli.test_losses_cli import _data, _train
from tests.cli.test_presets_cli import _opt_steps
from tests.helpers import read_jsonl


# Every preset a penalty applies to, with --gp and --r1 (GP in the updates that judge fakes, R1 in those that
# judge reals), in both modes (PyNative compiles the penalty's input gradient:
# ms_gan.nn.workarounds.compiled_in_pynative). (preset, data, flags, D updates per iteration). The sigmoid-D
# presets need a logit loss; dcgan128_rgb (BatchNorm in D) is refused below. One run takes both penalties
# (the parity tests check each on its own): 18 runs took 20-100 s each at load 16-19 on 2 cores; conditional
# sagan64 (the slowest, ~100 s) left out for the suite's time: conditional penalties run here on dcgan_mnist28 and
# cdcgan_digits8 and match PyTorch in both modes for conditional dcgan_digits8 and dcgan64 (test_penalties.py).
PENALIZED = [
    ("mlp_mnist", "mnist", ("--loss", "wasserstein"), 1),
    ("dcgan_digits8", "builtin", ("--loss", "bce_logits"), 2),
    ("dcgan_digits8_plus", "builtin", ("--loss", "hinge"), 2),
    ("cdcgan_digits8", "builtin", ("--loss", "bce_logits"), 2),
    ("dcgan_mnist28", "mnist", (), 1),
    ("dcgan_mnist28", "mnist", ("--conditional",), 1),
    ("dcgan64", "folder64", (), 1),
    ("sagan64", "folder64", (), 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("preset,kind,flags,d_per_iter", PENALIZED,
                         ids=[f"{s[0]}{' '.join(('',) + s[2])}" for s in PENALIZED])
def test_penalties_train_every_preset_they_apply_to(tmp_path, preset, kind, flags, d_per_iter, mode):
    out = str(tmp_path / "run")
    batch = 2 if preset in ("dcgan64", "sagan64") else 4
    penalties = ("--gp", "10", "--r1", "1", "--r1-every", "2")
    r = _train(out, preset, _data(tmp_path, kind), *flags, *penalties, "--mode", mode, steps=2, batch=batch)
    assert r.returncode == 0, r.stderr
    records = [x for x in read_jsonl(os.path.join(out, "stats.jsonl")) if x["kind"] == "step"]
    assert len(records) == 2 and all(math.isfinite(x["d_loss"]) and math.isfinite(x["g_loss"]) for x in records)
    assert _opt_steps(out) == (2 * d_per_iter, 2)
    with open(os.path.join(out, "options.json")) as f:
        overrides = json.load(f)["overrides"]
    assert (overrides["gp"], overrides["r1"], overrides["r1_every"]) == (10.0, 1.0, 2)
    if "--conditional" in flags or preset == "cdcgan_digits8":   # D judged every image with its class
        assert overrides["num_classes"] >= 2
