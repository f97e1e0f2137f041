"""Data-parallel training: one worker process per rank, started by MindSpore's ``msrun``.

Launch with ``scripts/run_distribute_train.sh NUM_WORKERS PRESET [DATA] [flags...]``; every
worker runs ``python -m ms_gan train --distributed ...`` and calls :func:`init`, which joins
the msrun cluster (on CPU MindSpore uses its own TCP collectives, no MPI/NCCL needed) and
returns this worker's rank, the world size and two factories of
``nn.DistributedGradReducer``. The trainer puts one reducer after each ``value_and_grad``
(D's and G's), so every optimizer step applies the gradient averaged over all ranks.
(``set_auto_parallel_context(DATA_PARALLEL)`` alone adds no all-reduce to functional
``value_and_grad`` steps; the reducers do.)

What a data-parallel run means here:

* **Global batch** = per-rank batch x workers. ``--batch-size`` (and the preset's batch)
  is per rank: 2 workers with ``--batch-size 64`` average gradients over 128 real images.
  Losses are batch means and every rank has the same number of batches per epoch, so the
  average of the ranks' gradients equals the gradient of one process with the global batch
  (tested to 1e-5 on a BatchNorm-free preset).
* **Learning rate** stays the recipe's. To follow the linear scaling rule, pass
  ``--lr-g``/``--lr-d`` yourself (e.g. twice the preset's for 2 workers).
* **Epochs** get shorter: each rank reads a disjoint 1/workers slice of every epoch
  (``num_shards``/``shard_id``), so an epoch has 1/workers as many iterations.
* **Weights** start identical on every rank (NumPy-seeded init) and stay identical, since
  every rank applies the same averaged gradient. **Noise** differs per rank (each rank
  makes its own fakes).
* **BatchNorm statistics stay per rank**: batch statistics are computed over the rank's
  own batch (no sync-BN) and each rank keeps its own running mean/variance; the
  checkpoint holds rank 0's.
* **Rank 0 writes everything** (checkpoints, samples, plots, logs, stats); the other ranks
  write nothing but can resume from rank 0's files (the run directory must be on a
  filesystem every node sees).

Test hook: when ``MS_GAN_DIGEST_DIR`` is set, every rank writes
``rank_<rank>.json`` there at exit with a SHA-256 of its trainable parameters, so a test
can check the ranks agree.
"""
import atexit
import hashlib
import os
import sys

from ms_gan.errors import UserError

DIGEST_ENV = "MS_GAN_DIGEST_DIR"
# Set by scripts/run_distribute_train.sh: this machine's node rank (see init()).
NODE_RANK_ENV = "MS_GAN_NODE_RANK"

_state = {"rank": 0, "world": 1, "params": {}}


def in_msrun():
    """True when this process was started by msrun (as a worker or the scheduler)."""
    return "MS_ROLE" in os.environ and "MS_WORKER_NUM" in os.environ


def init():
    """Join the msrun job. Call after ``device.setup`` and before any Cell is built.

    Returns:
        ``(rank, world, (reducer_g, reducer_d))``: the reducers are factories
        ``f(params) -> nn.DistributedGradReducer(params, mean=True, degree=world)``.

    Raises:
        UserError: when the process was not started by msrun.
    """
    if not in_msrun():
        raise UserError("--distributed needs workers started by msrun: use "
                        "scripts/run_distribute_train.sh NUM_WORKERS PRESET [DATA] [flags...]")
    if os.environ.get("MS_ROLE") == "MS_SCHED" and os.environ.get(NODE_RANK_ENV, "0") not in ("", "0"):
        # msrun starts a scheduler on every node whose address equals --master_addr, which
        # on a single machine (multi-node runs tested on loopback) means every node; the
        # duplicate could not bind the port and would fail the launch. Node 0's serves all.
        sys.exit(0)

    import mindspore as ms
    from mindspore import communication, nn
    from mindspore.context import ParallelMode

    # In the scheduler process, init() runs the scheduler and exits the process when the job ends.
    communication.init()
    rank, world = communication.get_rank(), communication.get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=world)
    _state.update(rank=rank, world=world, params={})

    def factory(role):
        def make(params):
            params = list(params)
            _state["params"][role] = params
            return nn.DistributedGradReducer(params, mean=True, degree=world)

        return make

    if os.environ.get(DIGEST_ENV):
        atexit.register(_write_digest, os.environ[DIGEST_ENV])
    return rank, world, (factory("g"), factory("d"))


def param_digest(params):
    """SHA-256 hex digest of parameters (by name, values as float32 bytes)."""
    import numpy as np

    h = hashlib.sha256()
    for p in sorted(params, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(np.ascontiguousarray(p.asnumpy(), dtype=np.float32).tobytes())
    return h.hexdigest()


def _write_digest(folder):
    if not _state["params"]:
        return
    from ms_gan.checkpoint import write_json

    record = {"rank": _state["rank"], "world": _state["world"],
              **{role: param_digest(params) for role, params in sorted(_state["params"].items())}}
    write_json(os.path.join(folder, f"rank_{_state['rank']}.json"), record)
