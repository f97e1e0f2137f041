"""Data-parallel training with msrun on CPU (loopback only).

The msrun tests are marked slow: each starts a scheduler and two workers (~20-40 s on
2 cores). Every launch runs under a timeout that stops the whole job.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT, write_mnist

SCRIPT = os.path.join(ROOT, "scripts", "run_distribute_train.sh")
LAUNCH_TIMEOUT = 240


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra.pop("PYTHONPATH", None), ROOT]))
    env["PYTHON"] = sys.executable
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _start(cmd, env, cwd=None):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                            start_new_session=True)


def _finish(proc, timeout=LAUNCH_TIMEOUT):
    """Wait for a launch; on timeout interrupt it (msrun then kills its workers) and fail."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"launch did not finish within {timeout} s:\n{out[-3000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _launch(workers, preset, *flags, data=None, env=None, timeout=LAUNCH_TIMEOUT):
    cmd = ["bash", SCRIPT, str(workers), preset] + ([data] if data else []) + [str(f) for f in flags]
    return _finish(_start(cmd, env or _env()), timeout)


def _digests(folder, world):
    records = []
    for rank in range(world):
        with open(os.path.join(folder, f"rank_{rank}.json")) as f:
            records.append(json.load(f))
    return records


def _assert_same_parameters(folder, world):
    records = _digests(folder, world)
    assert [r["rank"] for r in records] == list(range(world))
    assert all(r["world"] == world for r in records)
    for r in records[1:]:
        assert (r["g"], r["d"]) == (records[0]["g"], records[0]["d"]), records


def _check(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


# ------------------------------------------------------------------ in-process units


def test_shards_are_disjoint_equal_and_cover_the_epoch():
    from ms_gan.data import ImagePipeline, ImageSpec

    spec = ImageSpec(8, 1)
    for epoch in (0, 1):
        shards = [ImagePipeline("builtin", spec, 16, seed=3, num_shards=2, shard_id=r).indices(epoch)
                  for r in range(2)]
        assert len(shards[0]) == len(shards[1]) == 1797 // 2
        assert not set(shards[0].tolist()) & set(shards[1].tolist())
        whole = ImagePipeline("builtin", spec, 16, seed=3).indices(epoch)
        # the shards interleave one global order, so a global batch of 2B holds the same images
        assert sorted(np.concatenate([shards[0][:8], shards[1][:8]]).tolist()) == sorted(whole[:16].tolist())
    one = ImagePipeline("builtin", spec, 16, seed=3, num_shards=2, shard_id=0)
    assert one.batches_per_epoch() == ImagePipeline("builtin", spec, 16, seed=3, num_shards=2,
                                                    shard_id=1).batches_per_epoch()


def test_init_outside_msrun_is_a_user_error(monkeypatch):
    from ms_gan.errors import UserError
    from ms_gan.train import distributed

    monkeypatch.delenv("MS_ROLE", raising=False)
    with pytest.raises(UserError, match="run_distribute_train.sh"):
        distributed.init()


def test_duplicate_scheduler_on_a_later_node_exits_cleanly(monkeypatch):
    from ms_gan.train import distributed

    monkeypatch.setenv("MS_ROLE", "MS_SCHED")
    monkeypatch.setenv("MS_WORKER_NUM", "2")
    monkeypatch.setenv(distributed.NODE_RANK_ENV, "1")
    with pytest.raises(SystemExit) as info:
        distributed.init()
    assert info.value.code == 0


def test_param_digest_depends_on_values_and_names():
    import mindspore as ms

    from ms_gan.train.distributed import param_digest

    a = ms.Parameter(ms.Tensor(np.ones((2, 3), np.float32)), name="a")
    b = ms.Parameter(ms.Tensor(np.zeros(3, np.float32)), name="b")
    same = [ms.Parameter(ms.Tensor(np.zeros(3, np.float32)), name="b"),
            ms.Parameter(ms.Tensor(np.ones((2, 3), np.float32)), name="a")]
    assert param_digest([a, b]) == param_digest(same)  # order-independent
    changed = ms.Parameter(ms.Tensor(np.full((2, 3), 1.0 + 1e-6, np.float32)), name="a")
    assert param_digest([changed, b]) != param_digest([a, b])


def test_usage_errors_exit_2_without_starting_msrun(tmp_path):
    r = subprocess.run(["bash", SCRIPT, "two", "dcgan64"], capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 2 and "NUM_WORKERS" in r.stderr
    r = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 2 and "usage" in r.stderr
    env = _env(LOCAL_WORKERS=1, NODE_RANK=1)
    env.pop("MASTER_PORT", None)
    r = subprocess.run(["bash", SCRIPT, "2", "dcgan64", "--out", str(tmp_path / "x")], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 2 and "MASTER_PORT" in r.stderr


# ------------------------------------------------------------------ msrun end to end


@pytest.mark.slow
def test_two_workers_train_dcgan64_with_identical_parameters(tmp_path):
    out, digests = tmp_path / "run", tmp_path / "digests"
    r = _launch(2, "dcgan64", "--batch-size", 4, "--max-steps", 2, "--out", out, "--no-progress",
                env=_env(MS_GAN_DIGEST_DIR=digests))
    _check(r)
    _assert_same_parameters(digests, 2)
    assert (out / "checkpoints" / "latest.ckpt").is_file()
    with open(out / "options.json") as f:
        assert json.load(f)["workers"] == 2
    assert (out / "msrun_logs" / "node_0" / "worker_1.log").is_file()
    assert "--threads 1" in r.stdout  # the 2 cores are shared between the 2 workers


@pytest.mark.slow
def test_two_workers_train_mlp_mnist_from_idx_files(tmp_path):
    data = tmp_path / "mnist"
    write_mnist(str(data), n_train=32, n_test=8)
    out, digests = tmp_path / "run", tmp_path / "digests"
    r = _launch(2, "mlp_mnist", "--batch-size", 4, "--max-steps", 2, "--out", out, "--no-progress",
                "--mode", "pynative", data=str(data), env=_env(MS_GAN_DIGEST_DIR=digests))
    _check(r)
    _assert_same_parameters(digests, 2)
    from ms_gan import checkpoint

    _, meta = checkpoint.load(str(out / "checkpoints" / "latest.ckpt"))
    assert meta["world"] == 2 and meta["step"] == 2


# A worker for the gradient-averaging test: the engine's update steps (build_steps with the
# reducers from distributed.init) on fixed data and noise. Each rank takes its contiguous
# slice of a global batch; one process without msrun takes all of it ("all") or only rank
# 0's slice ("half", the control showing the test can tell the two apart).
GRAD_WORKER = r'''
import os, sys
import numpy as np
import ms_gan
import mindspore as ms
from ms_gan import device, presets
from ms_gan.models import build
from ms_gan.train.optim import Adam
from ms_gan.train.steps import build_steps

out, global_batch = sys.argv[1], int(sys.argv[2])
device.setup("CPU", mode="graph", threads=1)
if "MS_ROLE" in os.environ:
    from ms_gan.train import distributed
    rank, world, (make_g, make_d) = distributed.init()
    n = global_batch // world
    variants = [("all", rank * n, (rank + 1) * n)]
else:
    rank, world, make_g, make_d = 0, 1, None, None
    variants = [("all", 0, global_batch), ("half", 0, global_batch // 2)]
# lr 1e-4 (the recipe's is 1e-3): Adam's first steps are ~lr * sign(g), so float rounding of
# near-zero gradient elements (summation order differs between 1 and 2 processes) moves a
# parameter by up to ~lr; a smaller lr keeps that far below the 1e-5 bound while a wrong
# averaging (the "half" control) still differs by ~1e-3.
p = presets.override(presets.get("dcgan_digits8"), lr_g=1e-4, lr_d=1e-4)
m = p.g_batch_mult
rng = np.random.default_rng(123)
STEPS = 2
real = rng.uniform(-1, 1, (STEPS, global_batch, 1, 8, 8)).astype(np.float32)
z_fake = rng.standard_normal((STEPS, global_batch, p.z_dim)).astype(np.float32)
z_g = rng.standard_normal((STEPS, global_batch * m, p.z_dim)).astype(np.float32)
results = {}
for mode in ("pynative", "graph"):
    for name, lo, hi in variants:
        G, D = build(p, 0)
        G.set_train(True)
        D.set_train(True)
        opt_g = Adam(G.trainable_params(), p.lr_g, p.beta1_g, p.beta2_g, p.adam_eps, p.adam_eps_mode, prefix="opt_g")
        opt_d = Adam(D.trainable_params(), p.lr_d, p.beta1_d, p.beta2_d, p.adam_eps, p.adam_eps_mode, prefix="opt_d")
        steps = build_steps(p, G, D, opt_g, opt_d, use_jit=mode == "graph",
                            grad_reducer_g=make_g(opt_g.params) if make_g else None,
                            grad_reducer_d=make_d(opt_d.params) if make_d else None)
        T = ms.Tensor
        for s in range(STEPS):
            if hasattr(steps, "iteration"):  # the trainer's path: one call per iteration
                n_fake = sum(t in ("d", "d_fake") for t in p.steps)
                fakes = np.stack([z_fake[s, lo:hi]] * n_fake)
                steps.iteration(T(real[s, lo:hi]), T(fakes), T(z_g[s, lo * m:hi * m]))
                continue
            for token in p.steps:
                if token == "d_fake":
                    steps.d_fake(steps.generate(T(z_fake[s, lo:hi])))
                elif token == "d_real":
                    steps.d_real(T(real[s, lo:hi]))
                elif token == "d":
                    steps.d(T(real[s, lo:hi]), steps.generate(T(z_fake[s, lo:hi])))
                else:
                    steps.g(T(z_g[s, lo * m:hi * m]))
        for prm in G.trainable_params() + D.trainable_params():
            results[f"{mode}/{name}/{prm.name}"] = prm.asnumpy()
np.savez(os.path.join(out, f"rank_{rank}_of_{world}.npz"), **results)
print("saved", rank, world, flush=True)
'''


def _msrun(workers, local, node_rank, port, log_dir, *cmd, env):
    return [sys.executable, "-m", "mindspore.parallel.cluster.run", "--worker_num", str(workers),
            "--local_worker_num", str(local), "--node_rank", str(node_rank), "--master_addr", "127.0.0.1",
            "--master_port", str(port), "--log_dir", str(log_dir), "--join", "True", *map(str, cmd)]


@pytest.mark.slow
def test_two_workers_average_gradients_like_one_process_with_twice_the_batch(tmp_path):
    script = tmp_path / "grad_worker.py"
    script.write_text(GRAD_WORKER)
    env = _env(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    single = _start([sys.executable, str(script), str(tmp_path), "8"], env)
    dist = _start(_msrun(2, 2, 0, _free_port(), tmp_path / "logs", "python3", script, tmp_path, 8, env=env), env)
    for proc in (dist, single):
        result = _finish(proc)
        _check(result)
    ref = np.load(tmp_path / "rank_0_of_1.npz")
    ranks = [np.load(tmp_path / f"rank_{r}_of_2.npz") for r in range(2)]
    keys = [k for k in ref.files if "/all/" in k]
    assert len(keys) > 8 and set(ranks[0].files) == set(keys)
    for mode in ("pynative", "graph"):
        mode_keys = [k for k in keys if k.startswith(mode + "/")]
        worst = max(float(np.max(np.abs(ranks[0][k] - ref[k]))) for k in mode_keys)
        assert worst < 1e-5, f"{mode}: two workers differ from one process with the global batch by {worst}"
        for k in mode_keys:
            np.testing.assert_array_equal(ranks[0][k], ranks[1][k])
        # control: rank 0's half batch alone trains to clearly different weights
        control = max(float(np.max(np.abs(ref[k.replace("/all/", "/half/")] - ref[k]))) for k in mode_keys)
        assert control > 1e-4, control  # 10x the tolerance: the test separates right from wrong


@pytest.mark.slow
def test_two_nodes_with_one_worker_each_on_loopback(tmp_path):
    out, digests = tmp_path / "run", tmp_path / "digests"
    port = _free_port()
    flags = ["2", "dcgan_digits8", "--batch-size", "8", "--max-steps", "2", "--out", str(out), "--no-progress"]
    procs = [_start(["bash", SCRIPT] + flags,
                    _env(MASTER_PORT=port, NODE_RANK=node, LOCAL_WORKERS=1, MS_GAN_DIGEST_DIR=digests))
             for node in (0, 1)]
    results = [_finish(p) for p in procs]
    for r in results:
        _check(r)
    _assert_same_parameters(digests, 2)
    assert (out / "msrun_logs" / "node_1" / "worker_1.log").is_file()
    assert (out / "checkpoints" / "latest.ckpt").is_file()


INJECT = r'''
import os
if os.environ.get("MS_ROLE") == "MS_WORKER" and os.environ.get("RANK_ID") == "1":
    from ms_gan.train import distributed as _distributed
    _init = _distributed.init

    def _failing_init():
        rank = _init()[0]
        raise RuntimeError("injected failure on rank %d" % rank)

    _distributed.init = _failing_init
'''


@pytest.mark.slow
def test_a_failing_worker_fails_the_launch_quickly_with_its_error(tmp_path):
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(INJECT)
    t0 = time.time()
    r = _launch(2, "dcgan_digits8", "--batch-size", 8, "--max-steps", 2, "--out", tmp_path / "run",
                "--no-progress", env=_env(PYTHONPATH=str(inject)), timeout=120)
    elapsed = time.time() - t0
    assert r.returncode != 0
    assert "injected failure on rank 1" in r.stderr
    assert "distributed training failed" in r.stderr
    assert elapsed < 60, elapsed


@pytest.mark.slow
def test_a_user_error_in_every_worker_shows_the_first_workers_line_and_exits_2(tmp_path):
    np.save(tmp_path / "tiny.npy", np.zeros((3, 8, 8), np.uint8))   # 1 image per shard, batch 32
    r = _launch(2, "mlp_mnist", "--max-steps", 1, "--out", tmp_path / "run", "--no-progress",
                data=str(tmp_path / "tiny.npy"), timeout=120)
    assert r.returncode == 2, (r.stdout[-3000:], r.stderr[-3000:])
    assert r.stderr.strip().splitlines() == ["ms-gan: error: the data has 1 images per shard, fewer than one batch "
                                             "of 32; lower --batch-size"]
    assert "Traceback" not in r.stdout + r.stderr and "no worker reported" not in r.stderr
    assert "ms-gan: error" not in r.stdout
