"""The trainer's output worker thread and cadences (ms_gan.train.rundir), and the compiled grid forward."""
import threading
import time

import numpy as np
import pytest

from ms_gan import interrupt
from ms_gan.train.rundir import Cadence, OutputWorker


def test_join_waits_for_every_job_in_order_and_a_newer_job_replaces_a_queued_one():
    worker = OutputWorker()
    gate = threading.Event()
    done = []
    worker.submit("first", lambda: (gate.wait(5), done.append("first")))
    worker.submit("plots", done.append, "plots 1")
    worker.submit("samples", done.append, "samples")
    worker.submit("plots", done.append, "plots 2")    # replaces "plots 1", still queued behind "first"
    time.sleep(0.05)
    assert done == []                                 # submit never waits for the work
    gate.set()
    worker.join()
    assert done == ["first", "samples", "plots 2"]


def test_a_job_error_is_raised_by_join_in_the_calling_thread():
    worker = OutputWorker()

    def fail():
        raise OSError("disk full")

    worker.submit("a", fail)
    worker.submit("b", time.sleep, 0.01)              # later jobs still run
    with pytest.raises(OSError, match="disk full"):
        worker.join()
    worker.join()                                     # reported once
    worker.submit("c", fail)
    worker.join(quiet=True)                           # dropped when another error is on its way


def test_a_job_stopped_by_ctrl_c_is_redone_once_the_signal_is_handled():
    worker = OutputWorker()
    calls = []

    def write():
        calls.append(1)
        interrupt.check()                             # what atomic_output does before moving a file

    interrupt._pending.append(2)
    try:
        worker.submit("samples", write)
        worker.join()                                 # signal still pending: not redone, no error
        assert calls == [1]
    finally:
        interrupt.clear()
    worker.join()                                     # the trainer cleared it: written now
    assert calls == [1, 1]


def test_cadence_in_epochs_seconds_and_never():
    assert [Cadence("3").due(e) for e in range(1, 7)] == [False, False, True, False, False, True]
    assert not any(Cadence("0").due(e) for e in range(1, 5))
    seconds = Cadence("1s")
    assert (seconds.count, seconds.seconds) == (1, True) and not seconds.due(1)
    seconds.last -= 1.5
    assert seconds.due(2)
    seconds.mark()
    assert not seconds.due(3)
    for bad in ("", "1.5", "-1", "2m", "s"):
        with pytest.raises(ValueError, match="30s"):
            Cadence(bad)


def test_compiled_grid_is_the_eager_eval_mode_output_and_training_mode_is_restored(tmp_path):
    import mindspore as ms

    from ms_gan import device, presets
    from ms_gan.train.trainer import RunOptions, Trainer

    device.setup("CPU", mode="graph")
    p = presets.override(presets.get("dcgan_digits8"), batch_size=8)
    trainer = Trainer(p, RunOptions(preset=p.name, out=str(tmp_path / "run"), progress=False))
    trainer._build()
    grid = trainer.generate_grid().asnumpy()
    assert trainer.G.training
    trainer.G.set_train(False)
    eager = trainer.G(ms.Tensor(trainer.fixed_noise)).asnumpy()
    trainer.G.set_train(True)
    # eval mode: BatchNorm uses its moving statistics, so one image does not depend on the others
    np.testing.assert_array_equal(grid, eager)
    assert grid.shape[0] == p.grid_rows * p.grid_cols
