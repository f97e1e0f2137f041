"""The run directory's resume logic as units: options that may change, log truncation,
damaged files, the lock, where a run stands, and the progress line's width."""
import io
import json
import os

import pytest

from ms_gan.errors import UserError
from ms_gan.train.progress import Progress
from ms_gan.train.rundir import RunDir, RunOptions, math_differences, read_jsonl_file
from ms_gan.train.trainer import run_state


def _options(tmp_path, **changes):
    base = dict(preset="dcgan_digits8", out=str(tmp_path), overrides={"epochs": 2, "batch_size": 8}, seed=0)
    base.update(changes)
    return RunOptions(**base).to_json()


def test_length_and_logging_options_may_change_math_options_may_not(tmp_path):
    saved = _options(tmp_path)
    assert math_differences(saved, _options(tmp_path, overrides={"epochs": 9, "batch_size": 8}, max_steps=5,
                                            ckpt_every=3, log_every=1, threads=1, progress=False)) == []
    diffs = math_differences(saved, _options(tmp_path, overrides={"epochs": 2, "batch_size": 4, "lr_g": 1.0},
                                             seed=3))
    assert len(diffs) == 2 and diffs[0].startswith("overrides:") and diffs[1] == "seed: 0 -> 3"


def test_a_resume_records_what_changed_and_refuses_math_changes_with_the_list(tmp_path):
    run = RunDir(str(tmp_path), echo=lambda line: None)
    run.write_options(_options(tmp_path), {"name": "dcgan_digits8"})
    run.write_options(_options(tmp_path, overrides={"epochs": 5, "batch_size": 8}, ckpt_every=7), {})
    saved = json.load(open(tmp_path / "options.json"))
    assert saved["overrides"]["epochs"] == 5 and saved["ckpt_every"] == 7
    [entry] = saved["history"]
    assert entry["changed"]["ckpt_every"] == [0, 7] and entry["changed"]["overrides"][1]["epochs"] == 5
    with pytest.raises(UserError) as err:
        run.write_options(_options(tmp_path, seed=1, data="/elsewhere"), {})
    assert "data: 'builtin' -> '/elsewhere'" in str(err.value) and "seed: 0 -> 1" in str(err.value)


def _write_stats(path, records, tail=""):
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_truncation_keeps_records_up_to_the_checkpoint_and_drops_partial_epochs(tmp_path):
    run = RunDir(str(tmp_path))
    records = [{"kind": "step", "step": s} for s in range(1, 7)]
    records += [{"kind": "epoch", "epoch": 1, "step": 3}, {"kind": "epoch", "epoch": 2, "step": 4, "partial": True}]
    _write_stats(tmp_path / "stats.jsonl", records)
    run.truncate_logs(4)
    kept = read_jsonl_file(str(tmp_path / "stats.jsonl"))
    assert [r["step"] for r in kept if r["kind"] == "step"] == [1, 2, 3, 4]
    assert [r["epoch"] for r in kept if r["kind"] == "epoch"] == [1]
    rows = open(tmp_path / "metrics.csv").read().splitlines()
    assert rows[0].startswith("epoch,step") and len(rows) == 2 and rows[1].startswith("1,3,")
    run.truncate_logs(0)   # no checkpoint: nothing of an earlier attempt survives
    assert read_jsonl_file(str(tmp_path / "stats.jsonl")) == []
    assert len(open(tmp_path / "metrics.csv").read().splitlines()) == 1


def test_a_torn_last_line_is_dropped_and_a_garbage_line_names_the_file(tmp_path):
    path = tmp_path / "stats.jsonl"
    _write_stats(path, [{"step": 1}], tail='{"step": 2, "d_lo')
    assert read_jsonl_file(str(path)) == [{"step": 1}]
    _write_stats(path, [{"step": 1}], tail="garbage\n" + json.dumps({"step": 2}) + "\n")
    with pytest.raises(UserError, match=r"stats.jsonl line 2 is not a JSON record"):
        read_jsonl_file(str(path))


def test_a_malformed_options_file_is_named(tmp_path):
    (tmp_path / "options.json").write_text("{not json")
    with pytest.raises(UserError, match="options.json is not valid JSON"):
        RunDir(str(tmp_path)).saved_options()


def test_the_lock_names_its_holder_and_a_dead_holder_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text("999999\n")   # a dead run's pid, no flock held: stale
    first = RunDir(str(tmp_path))
    first.lock()
    assert open(tmp_path / ".lock").read().strip() == str(os.getpid())
    with pytest.raises(UserError, match=f"in use by another run \\(process {os.getpid()}\\)"):
        RunDir(str(tmp_path)).lock()
    first.unlock()
    second = RunDir(str(tmp_path))
    second.lock()
    second.unlock()


def test_run_state_says_when_a_run_is_finished_or_at_its_step_limit():
    class P:
        epochs = 3

    assert run_state({"epoch": 3, "step": 30}, P, None) == "finished"
    assert run_state({"epoch": 2, "step": 20}, P, 20) == "max_steps"
    assert run_state({"epoch": 2, "step": 20}, P, 21) == "open"


@pytest.mark.parametrize("columns", [20, 50, 80, 200])
def test_the_progress_line_fits_the_terminal(columns):
    line = Progress(enabled=False).line(3, 200, 17, 224, "d=1.2345 g=0.9876 1234 img/s", columns)
    assert len(line) <= columns - 1 and line.startswith("epoch 3/200")


def test_the_progress_line_is_redrawn_in_place_and_cleared():
    stream = io.StringIO()
    progress = Progress(enabled=True, stream=stream)
    progress.update(1, 2, 5, 5, "x")
    progress.close()
    text = stream.getvalue()
    assert "\n" not in text and text.endswith("\r") and text.startswith("\r")
