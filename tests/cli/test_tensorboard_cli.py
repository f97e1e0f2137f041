"""train --tensorboard: event files beside stats.jsonl whose scalars and images read back."""
import glob
import json
import os
import struct

import pytest

from ms_gan.train.tensorboard import scalars
from tests.helpers import assert_user_error, run_cli


def read_events(logdir):
    """Every Event in the TFRecord files under ``logdir`` (framing: u64 length, u32 crc, data, u32 crc)."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            payload = data[pos + 12:pos + 12 + length]
            assert len(payload) == length, f"truncated record in {path}"
            events.append(event_pb2.Event.FromString(payload))
            pos += 12 + length + 4
    return events


def scalar_values(events):
    """{tag: {step: value}} of the events' scalar summaries."""
    out = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def test_scalars_of_a_record_skip_bookkeeping_and_keep_nested_numbers():
    record = {"kind": "epoch", "epoch": 2, "step": 10, "wall_time": 1.0, "d_loss": 0.5, "fcd": 3,
              "partial": True, "eval_extractor_sha256": "abc", "diagnostics": {"G.gamma": 0.25, "x": "no"}}
    assert scalars(record) == {"epoch/d_loss": 0.5, "epoch/fcd": 3.0, "epoch/diagnostics/G.gamma": 0.25}


@pytest.mark.slow
def test_tensorboard_event_scalars_match_stats_jsonl_and_resume_appends(tmp_path):
    pytest.importorskip("tensorboardX", reason="tensorboardX not installed (pip install -e '.[tensorboard]')")
    out = str(tmp_path / "run")
    base = ("train", "--preset", "dcgan_digits8", "--out", out, "--batch-size", "256", "--log-every", "2",
            "--no-progress", "--tensorboard")
    r = run_cli(*base, "--epochs", "1", timeout=300)
    assert r.returncode == 0, r.stderr
    # a logging option: it may change on resume (here: --tensorboard kept, --epochs raised)
    r = run_cli(*base, "--epochs", "2", "--eval-every", "2", "--eval-n", "200", timeout=300)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(out, "stats.jsonl")) as f:
        records = [json.loads(line) for line in f]
    values = scalar_values(read_events(os.path.join(out, "tensorboard")))
    epochs = [r for r in records if r["kind"] == "epoch"]
    steps = [r for r in records if r["kind"] == "step"]
    assert len(epochs) == 2 and steps
    for record in epochs + steps:
        kind = record["kind"]
        for key in ("d_loss", "g_loss") + (("d_acc_real", "d_acc_fake", "images_per_sec") if kind == "epoch" else ()):
            assert values[f"{kind}/{key}"][record["step"]] == pytest.approx(record[key], rel=1e-6), (kind, key)
    assert values["epoch/fcd"] == {epochs[1]["step"]: pytest.approx(epochs[1]["fcd"], rel=1e-6)}
    images = [v for e in read_events(os.path.join(out, "tensorboard")) for v in e.summary.value
              if v.HasField("image")]
    assert sorted(v.tag for v in images) == ["samples/grid", "samples/grid"]
    # 16x16 grid of 8x8 digits with 2-pixel gaps, as in samples/grid_latest.png (before its upscaling)
    assert {(v.image.height, v.image.width) for v in images} == {(16 * 8 + 15 * 2, 16 * 8 + 15 * 2)}


def test_without_tensorboardx_the_error_names_the_install_line(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "tensorboardX.py").write_text("raise ImportError('No module named tensorboardX')\n")
    from tests.helpers import ROOT

    out = tmp_path / "run"
    r = run_cli("train", "--preset", "dcgan_digits8", "--out", str(out), "--tensorboard",
                env={"PYTHONPATH": os.pathsep.join([str(shim), ROOT])})
    assert_user_error(r, "--tensorboard needs tensorboardX", "pip install -e '.[tensorboard]'")
    assert not out.exists()
