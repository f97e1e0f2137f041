"""TensorBoard event files for a run (``train --tensorboard``), written with tensorboardX.

A sink of the training loop: the trainer hands it every record it appends to stats.jsonl
(per-step and per-epoch losses, D accuracies, images/s, FCD/KID when evaluated) and every
sample grid; it writes them as scalars (tag ``KIND/KEY``, e.g. ``epoch/d_loss``) and images
(``samples/grid``) into ``RUN/tensorboard/``. tensorboardX is an optional extra
(``pip install -e '.[tensorboard]'``): the trainer never imports it.
"""
import numbers
import os

from ms_gan.errors import UserError

INSTALL = "pip install -e '.[tensorboard]'"
# Bookkeeping fields of a record: the x axis or a timestamp, not a curve.
NOT_SCALARS = ("kind", "epoch", "step", "wall_time", "partial")


def check_available():
    """UserError with the install line when tensorboardX is missing (before any work)."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise UserError(f"--tensorboard needs tensorboardX: install it with {INSTALL}") from None


def scalars(record):
    """``{tag: value}`` of a stats record's numeric fields (nested diagnostics included)."""
    kind = record.get("kind", "step")
    out = {}
    for key, value in record.items():
        if key in NOT_SCALARS:
            continue
        if isinstance(value, dict):
            out.update({f"{kind}/{key}/{k}": float(v) for k, v in value.items()
                        if isinstance(v, numbers.Real) and not isinstance(v, bool)})
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[f"{kind}/{key}"] = float(value)
    return out


class TensorBoardSink:
    """Writes a run's records and sample grids to ``RUN/tensorboard/`` (rank 0 only)."""

    def __init__(self, run_dir):
        check_available()
        self.logdir = os.path.join(run_dir, "tensorboard")
        self.writer = None

    def start(self, step):
        """Open the writer at iteration ``step``; on resume TensorBoard drops the older files' later steps."""
        from tensorboardX import SummaryWriter

        # purge_step: the records after the checkpoint were cut from stats.jsonl (rundir.truncate_logs);
        # TensorBoard hides them in the event files too, so a resumed run shows one curve.
        self.writer = SummaryWriter(logdir=self.logdir, purge_step=step or None, flush_secs=30)

    def write_record(self, record):
        step = int(record["step"])
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step, walltime=record.get("wall_time"))

    def write_grid(self, images, rows, cols, gap, step):
        """The sample grid of ``images`` ((N, C, H, W) in [-1, 1]) as saved in samples/."""
        from ms_gan import viz

        self.writer.add_image("samples/grid", viz.grid(images, rows, cols, gap), int(step), dataformats="HWC")
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
