"""dcgan_digits8_plus: dcgan_digits8's networks with the measured training recipe (docs/ablation_digits8.md)."""
import dataclasses
import os

import pytest

from ms_gan import checkpoint as ckpt_io
from ms_gan import presets
from tests.helpers import read_jsonl, run_cli

METADATA = ("name", "summary", "source", "fixes", "notes")


def test_plus_is_dcgan_digits8_with_a_validated_override_and_an_ema():
    base, plus = presets.get("dcgan_digits8"), presets.get("dcgan_digits8_plus")
    changed = {f.name: getattr(plus, f.name) for f in dataclasses.fields(plus)
               if f.name not in METADATA and getattr(plus, f.name) != getattr(base, f.name)}
    ema = changed.pop("ema")
    assert 0 < ema < 1
    changed.pop("steps", None)   # implied by n_critic, checked by the equality below
    assert set(changed) <= set(presets.OVERRIDABLE), changed
    # the same networks: the family, image shape, latent size and the G/D options do not change
    for key in ("family", "image_size", "channels", "z_dim", "g_options", "d_options", "init"):
        assert key not in changed
    rebuilt = dataclasses.replace(presets.override(base, **changed), ema=ema,
                                  **{k: getattr(plus, k) for k in METADATA})
    assert rebuilt == plus


@pytest.mark.slow
def test_plus_is_listed_and_trains_two_steps_with_its_ema(tmp_path):
    listed = run_cli("presets")
    assert listed.returncode == 0 and "dcgan_digits8_plus" in listed.stdout
    out = str(tmp_path / "plus")
    r = run_cli("train", "--preset", "dcgan_digits8_plus", "--out", out, "--max-steps", "2", "--log-every", "1",
                "--no-progress", timeout=300)
    assert r.returncode == 0, r.stderr
    steps = [rec for rec in read_jsonl(os.path.join(out, "stats.jsonl")) if rec["kind"] == "step"]
    assert [rec["step"] for rec in steps] == [1, 2]
    params, meta = ckpt_io.load(os.path.join(out, "checkpoints", "latest.ckpt"))
    assert any(k.startswith("ema.") for k in params), "the preset's EMA is kept in the checkpoint"
    assert meta["step"] == 2
