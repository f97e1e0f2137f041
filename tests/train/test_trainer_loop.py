"""The training loop as a unit: a failing evaluation callback keeps the epoch's checkpoint and record."""
import os

import pytest

from ms_gan import checkpoint, device, presets
from ms_gan.errors import UserError
from ms_gan.train.rundir import read_jsonl_file
from ms_gan.train.trainer import RunOptions, Trainer


@pytest.mark.slow
def test_a_failing_evaluation_never_loses_the_epochs_checkpoint(tmp_path):
    device.setup("CPU")
    preset = presets.override(presets.get("dcgan_digits8"), batch_size=256, epochs=2)
    calls = []

    def evaluate(G, epoch):
        calls.append(epoch)
        raise UserError("the classifier does not match the data")

    options = RunOptions(preset=preset.name, out=str(tmp_path), overrides={"batch_size": 256, "epochs": 2},
                         eval_every=1, progress=False, log_every=0)
    with pytest.raises(UserError, match="does not match"):
        Trainer(preset, options, evaluate=evaluate, echo=lambda line: None).fit()
    assert calls == [1]
    _, meta = checkpoint.load(os.path.join(str(tmp_path), "checkpoints", "latest.ckpt"))
    assert meta["epoch"] == 1 and meta["batch_in_epoch"] == 0
    [record] = [r for r in read_jsonl_file(str(tmp_path / "stats.jsonl")) if r["kind"] == "epoch"]
    assert record["epoch"] == 1 and "fcd" not in record
    assert os.path.isfile(tmp_path / "samples" / "grid_epoch_0001.png")


def test_a_signal_stops_the_loop_at_a_safe_point_and_releases_the_directory(tmp_path):
    import signal

    from ms_gan import interrupt
    from ms_gan.train.rundir import RunDir

    device.setup("CPU")
    preset = presets.override(presets.get("dcgan_digits8"), batch_size=256)
    options = RunOptions(preset=preset.name, out=str(tmp_path), overrides={"batch_size": 256}, progress=False)

    def echo(line):   # Ctrl-C arrives while the run starts
        os.kill(os.getpid(), signal.SIGINT)

    previous = interrupt.install()
    try:
        with pytest.raises(interrupt.Interrupted) as stop:
            Trainer(preset, options, echo=echo).fit()
    finally:
        interrupt.clear()
        interrupt.restore(previous)
    assert stop.value.where == "during start-up"
    assert not os.path.exists(tmp_path / "checkpoints" / "latest.ckpt")
    assert [f for _, _, files in os.walk(tmp_path) for f in files if ".tmp" in f] == []
    RunDir(str(tmp_path)).lock()   # the interrupted run let go of it
