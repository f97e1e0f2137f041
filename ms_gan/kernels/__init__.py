"""CPU convolution kernels: oneDNN with blocked layouts, as MindSpore AOT custom operators.

MindSpore 2.10's CPU convolutions give oneDNN plain NCHW memory, so oneDNN runs im2col + gemm at
~80 GFLOP/s on 2 cores; letting it choose blocked layouts (``format_tag::any``) runs its direct kernels
at PyTorch's ~190 GFLOP/s (bench/NOTES.md, attempts 20+). ``onednn_conv.cc`` is built at first use
(:mod:`ms_gan.kernels.build`) and the ``ms_gan.nn.blocks`` convolution layers call it through
:func:`for_layer` in training mode. ``onednn_matmul.cc`` (same library) serves the MLP preset: Dense +
activation and BatchNorm1d as one operator each way (:mod:`ms_gan.kernels.dense`, :func:`for_dense`,
:func:`for_batch_norm`; bench/NOTES.md session 5).

``MS_GAN_KERNELS``: ``custom`` forces the kernels (an error if they cannot be built), ``native`` forces
MindSpore's own ops; unset, the kernels serve CPU training when they build (see :data:`DEFAULT`).
Eval mode (sampling, evaluation, export) uses MindSpore's ops, so exported graphs hold no custom op; only
the trainer's own G opts in (:func:`use_in_eval`).
"""
import ctypes
import functools
import logging
import os
import threading

from ms_gan.errors import UserError

ENV = "MS_GAN_KERNELS"
MODES = ("native", "custom")
# Unset MS_GAN_KERNELS: custom where the library builds (CPU target); measured faster per layer and per
# dcgan64 iteration (bench/NOTES.md attempts 20+).
DEFAULT = "custom"

log = logging.getLogger("ms_gan.kernels")
_lock = threading.Lock()
# target and threads are handed in by ms_gan.device.setup (configure); the kernels never import
# device (it imports them: one direction only).
_state = {"library": None, "handle": None, "reason": None, "said": False, "threads": None, "target": None}


def requested_mode():
    """``MS_GAN_KERNELS`` (``native`` / ``custom``) or :data:`DEFAULT`; UserError for other values."""
    value = os.environ.get(ENV, "").strip().lower() or DEFAULT
    if value not in MODES:
        raise UserError(f"{ENV}={os.environ[ENV]!r} is not valid: use 'native' or 'custom'")
    return value


def _target():
    target = _state["target"]
    if target is None:
        import mindspore as ms

        target = ms.get_context("device_target")
    return target


def _load():
    """The library's path, building and loading it once; None (with the reason kept) if unavailable."""
    with _lock:
        if _state["library"] is not None or _state["reason"] is not None:
            return _state["library"]
        from ms_gan.kernels import build

        try:
            library = build.library_path()
            handle = ctypes.CDLL(str(library))   # the same image MindSpore's dlopen will share
        except (build.BuildUnavailable, OSError) as exc:
            _state["reason"] = str(exc)
            return None
        _state.update(library=str(library), handle=handle)
    set_threads(_state["threads"])
    return _state["library"]


def library():
    """Path of the kernels' library when the layers should use it, else None (the reason is logged once).

    Raises UserError when ``MS_GAN_KERNELS=custom`` and the kernels are unavailable.
    """
    mode = requested_mode()
    if mode == "native":
        return None
    target = _target()
    if target != "CPU":
        reason = f"the kernels are CPU-only (target {target})"
        path = None
    else:
        path = _load()
        reason = _state["reason"]
    if path is None:
        if mode == "custom" and os.environ.get(ENV):
            raise UserError(f"{ENV}=custom but the CPU kernels are unavailable: {reason.splitlines()[0]}")
        if not _state["said"]:
            _state["said"] = True
            log.info("ms_gan: convolutions, Dense and BatchNorm1d layers use MindSpore's own ops: %s", reason)
    return path


def fallback_reason():
    """Why training's convolutions, Dense and BatchNorm1d layers run on MindSpore's own ops although the kernels were wanted (unset
    ``MS_GAN_KERNELS`` on a CPU target), else None. The trainer puts it in its first log line; nothing
    is printed here, so commands that never train (sample, eval, export: eval mode uses MindSpore's ops)
    and one-line errors stay quiet (a bare warning on stderr broke the one-line error contract)."""
    if requested_mode() != "custom" or _target() != "CPU" or library() is not None:
        return None
    return (_state["reason"] or "unavailable").splitlines()[0]


def set_threads(threads=None):
    """Threads of the kernels' OpenMP team: ``threads``, else the process's CPU threads (``--threads``)."""
    if threads is None:
        threads = _state["threads"] or _usable_cores()
    _state["threads"] = int(threads)
    if _state["handle"] is not None:
        _state["handle"].MsGanKernelsSetThreads(ctypes.c_int(int(threads)))
        _state["handle"].MsGanMatMulSetThreads(ctypes.c_int(int(threads)))
        _state["handle"].MsGanNearestSetThreads(ctypes.c_int(int(threads)))


def use_native(net):
    """Every layer of ``net`` back on MindSpore's own convolutions; returns ``net``. For graphs that
    differentiate a gradient (WGAN-GP, R1): the kernels' ops have first derivatives only."""
    for _, cell in net.cells_and_names():
        for attr in ("custom_conv", "custom_dense", "custom_bn", "custom_upsample"):
            if getattr(cell, attr, None) is not None:
                setattr(cell, attr, None)
    return net


def _usable_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def configure(target, threads=None):
    """Called by :func:`ms_gan.device.setup`: hand the kernels the target and the process's CPU threads,
    check ``MS_GAN_KERNELS`` and build the library now (a forced but unavailable ``custom`` fails here,
    before a command writes anything)."""
    _state["target"] = target
    set_threads(threads)
    library()
    _copy_elimination(target == "CPU" and requested_mode() == "custom")


# MindSpore snapshots (TensorMove) every Parameter a compiled graph reads before an in-place update of it
# (ApplyAdam, Assign) at its default level 1: 52 copies per mlp_mnist iteration, 20% of its kernels then.
# Level 3 inserts none. In our steps every read of a parameter's old value feeds that update's gradients
# or precedes it in the side-effect order (the optimizer's updates run in parameter order, input layer
# first), so no reader can see the new value early: losses and every parameter and optimizer state were
# bit-identical at level 1 and 3 after 4 iterations of mlp_mnist, dcgan_digits8(_plus, EMA), dcgan_mnist28,
# dcgan64, sagan64 and with R1 / WGAN-GP (bench/NOTES.md session 5; tests/kernels/test_dense_kernels.py).
# Read when a graph compiles; set with the kernels on the CPU target unless the user set it.
LOAD_ELIM_ENV = "MS_DEV_SIDE_EFFECT_LOAD_ELIM"
LOAD_ELIM_LEVEL = "3"


def _copy_elimination(on):
    if on and LOAD_ELIM_ENV not in os.environ:
        os.environ[LOAD_ELIM_ENV] = LOAD_ELIM_LEVEL
        _state["load_elim_set"] = True
    elif not on and _state.get("load_elim_set"):
        os.environ.pop(LOAD_ELIM_ENV, None)   # only what configure itself set
        _state["load_elim_set"] = False


def for_layer(layer):
    """A :class:`~ms_gan.kernels.ops.ConvKernel` for a blocks Conv2d / Conv2dTranspose, or None when the
    layer keeps MindSpore's ops (kernels off or unavailable, groups, dilation, or a padding they lack)."""
    from ms_gan.kernels import ops

    if not ops.supported(layer):
        return None
    path = library()
    return None if path is None else ops.ConvKernel(path, layer)


def use_in_eval(net):
    """Let ``net``'s kernel-backed convolutions use the kernels in eval mode too; returns how many.

    For a network that lives only inside a training run (the trainer's G: recipes that make D's fakes in
    eval mode, sample grids): dcgan128_rgb's eval-mode fakes took ~1.6 s of its ~12.7 s iteration on
    MindSpore's plain-NCHW convolutions (bench/NOTES.md attempt 61). Networks built for export, sampling
    and evaluation keep MindSpore's ops, so exported graphs hold no custom op.
    """
    count = 0
    for _, cell in net.cells_and_names():
        if any(getattr(cell, attr, None) is not None for attr in ("custom_conv", "custom_upsample")):
            cell.kernels_in_eval = True
            count += 1
    return count


def for_upsample():
    """A :class:`~ms_gan.kernels.ops.Nearest2xKernel` (nearest 2x upsampling and its gradient), or None when
    MindSpore's ResizeNearestNeighborV2 serves (kernels off or unavailable)."""
    from ms_gan.kernels import ops

    path = library()
    return None if path is None else ops.Nearest2xKernel(path)


def for_dense(layer, code, slope=0.0):
    """A :class:`~ms_gan.kernels.dense.DenseKernel` for a blocks Dense whose activation is ``code`` (see
    DenseKernel), or None when the layer keeps MindSpore's ops (kernels off or unavailable, no bias, not
    float32)."""
    from ms_gan.kernels import dense

    if not layer.has_bias or layer.weight.dtype != _float32():
        return None
    path = library()
    return None if path is None else dense.DenseKernel(path, code, slope)


def for_batch_norm(layer):
    """A :class:`~ms_gan.kernels.dense.BatchNormKernel` for a BatchNorm1d (training mode), or None."""
    from ms_gan.kernels import dense

    if layer.gamma.dtype != _float32():
        return None
    path = library()
    return None if path is None else dense.BatchNormKernel(path, float(layer.eps), float(layer.momentum))


def _float32():
    from mindspore import dtype as mstype

    return mstype.float32


# quiet_waiter's switch (bench/kernel_iteration.py's "on-busy" variant turns it off for A/B timing).
QUIET_WAIT = {"on": True}


def _can_restore_scheduling():
    """True where this thread may go back from SCHED_IDLE to SCHED_OTHER (root, or RLIMIT_NICE >= 20)."""
    if not hasattr(os, "SCHED_IDLE") or not hasattr(os, "sched_setscheduler"):
        return False
    if os.geteuid() == 0:
        return True
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NICE)[0]
    return soft == resource.RLIM_INFINITY or soft >= 20


def _first_tensor(out):
    """The first Tensor of a (nested) tuple of step outputs."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _signature(args, kwargs):
    """Shapes and dtypes of the tensor arguments (what the steps' compiled graphs are specialised on; the
    steps take tensors only), the type of anything else."""
    def one(value):
        if isinstance(value, (tuple, list)):
            return tuple(one(v) for v in value)
        shape = getattr(value, "shape", None)
        return (tuple(shape), str(getattr(value, "dtype", ""))) if shape is not None else type(value).__name__

    return tuple(one(a) for a in args) + tuple((k, one(v)) for k, v in sorted(kwargs.items()))


def quiet_waiter(compiled):
    """``compiled`` (a ``mindspore.jit`` function) called with the calling thread under SCHED_IDLE.

    While a compiled gradient step runs, MindSpore 2.10's Python thread waits in a busy loop; on 2 cores it
    took 200-300 ms of CPU per ~2.2 s dcgan64 step from the kernel threads. Waiting idle-class gives that
    CPU to the kernels: 4200 -> 3567 ms per iteration, main thread 203 -> 46 ms CPU (interleaved A/B under
    load, dcgan_mnist28 603 -> 474 ms; bench/NOTES.md attempt 23). CPU target, Linux, and only where the
    thread can return to normal scheduling afterwards (root, or RLIMIT_NICE >= 20); else ``compiled`` as is.
    """
    if not _can_restore_scheduling() or _target() != "CPU":   # measured on CPU only
        return compiled
    calls = {}   # input signature -> calls so far

    @functools.wraps(compiled)
    def call(*args, **kwargs):
        signature = _signature(args, kwargs)
        calls[signature] = calls.get(signature, 0) + 1
        if calls[signature] <= 2 or not QUIET_WAIT["on"]:
            # The first calls with given input shapes compile (again, for new shapes: an epoch's last, smaller
            # batch) and start MindSpore's and the kernels' threads, which would inherit the idle class from
            # this thread and then run every kernel at the lowest priority. A compile under SCHED_IDLE on a
            # loaded machine gets no CPU at all: a dcgan_digits8 run at load 20 sat for minutes at step 113
            # (the digits' last batch of 13) with 12 s of CPU in 10 min.
            return compiled(*args, **kwargs)
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            return compiled(*args, **kwargs)
        try:
            out = compiled(*args, **kwargs)
            # The call only queues the graph; the wait (the busy loop) is where its result is first read.
            # Reading one output here, still idle-class, leaves nothing for the caller's .asnumpy() to
            # wait for. (ms.runtime.synchronize() is not it: on CPU it only logs "[ERROR] ... CPU device
            # is not supported" to stderr and returns.)
            first = _first_tensor(out)
            if hasattr(first, "asnumpy"):
                first.asnumpy()
            return out
        finally:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    return call
