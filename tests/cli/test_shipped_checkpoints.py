"""The checkpoints shipped in ckpt/ load with today's code, as ckpt/README.md tells users to try them."""
import json
import os

import numpy as np
from PIL import Image

from tests.helpers import ROOT, run_cli

CKPT = os.path.join(ROOT, "ckpt", "dcgan_digits8.ckpt")


def test_sample_from_the_shipped_generator(tmp_path):
    out = tmp_path / "grid.png"
    result = run_cli("sample", "--ckpt", CKPT, "--n", 16, "--out", out)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as grid:
        assert grid.size[0] >= 4 * 8 and grid.size[1] >= 4 * 8
        pixels = np.asarray(grid.convert("L"))
    assert int(pixels.max()) - int(pixels.min()) > 100, "a blank grid: the generator did not load"


def test_eval_of_the_shipped_generator_is_far_from_an_untrained_one(tmp_path):
    """README: FCD 58 for the shipped G and ~1100 untrained (10,000 samples); a G that failed to load scores ~1100."""
    out = tmp_path / "metrics.json"
    result = run_cli("eval", "--ckpt", CKPT, "--data", "builtin", "--n", 1000, "--out", out)
    assert result.returncode == 0, result.stderr
    values = {r["metric"]: r["value"] for r in json.loads(out.read_text())["results"]
              if r.get("comparison") == "generated_vs_reference"}
    assert values["fcd"] < 300, values
    assert values["class_coverage"] >= 8, values
