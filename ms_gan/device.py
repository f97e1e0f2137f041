"""The one place that chooses the target device, the execution mode and CPU threads.

Call :func:`setup` once per process, before any Cell is built.
"""
import os

from ms_gan.errors import UserError

TARGETS = ("CPU", "GPU", "Ascend")
MODES = ("graph", "pynative")

_state = {"done": False, "target": None, "mode": None, "threads": None}


def default_cpu_threads():
    """Threads for CPU kernels: the cores this process may use (MindSpore's default is 25)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _pinned_elsewhere(cores):
    """{core: other processes whose threads may run on that core alone} for ``cores`` (from /proc)."""
    counts = dict.fromkeys(cores, 0)
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            allowed = os.sched_getaffinity(int(entry))
        except OSError:   # ended meanwhile, or not ours to look at
            continue
        if len(allowed) == 1:
            core = next(iter(allowed))
            if core in counts:
                counts[core] += 1
    return counts


def choose_core(cores, pinned, pid):
    """The core among ``cores`` with the fewest processes ``pinned`` to it; ties spread by ``pid``."""
    fewest = min(pinned.get(c, 0) for c in cores)
    candidates = [c for c in cores if pinned.get(c, 0) == fewest]
    return candidates[pid % len(candidates)]


def _pin_to_one_core():
    """Keep every thread of this process on one core (Linux; elsewhere nothing happens).

    With one kernel thread, MindSpore still hands each kernel from the Python thread to its
    actor thread and back; on different cores each hand-off is a cross-core wake-up, and a
    small model's iteration (hundreds of short kernels) took 36-60 ms instead of 20 ms
    (dcgan_digits8, bench/NOTES.md). Threads started later inherit the affinity.

    Which core: an msrun worker takes the one its node id names; any other process the core the
    fewest other processes are pinned to (before, every one-thread run took the first core, so two
    trainings side by side on a 2-core machine shared one core and left the other idle).
    """
    if not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    node = os.environ.get("MS_NODE_ID")
    if node is not None and node.strip().isdigit():   # msrun workers of one host: one core each
        core = cores[int(node) % len(cores)]
    else:
        core = choose_core(cores, _pinned_elsewhere(cores), os.getpid())
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except OSError:   # a thread that ended meanwhile
            pass


def normalize_target(name):
    """'cpu' -> 'CPU', 'ascend' -> 'Ascend'; raises UserError for anything else."""
    for target in TARGETS:
        if str(name).lower() == target.lower():
            return target
    raise UserError(f"unknown device {name!r}: use one of {', '.join(TARGETS)}")


def setup(target="CPU", device_id=None, mode="graph", threads=None, seed=None):
    """Select device, mode and threads for this process.

    Args:
        target: 'CPU', 'GPU' or 'Ascend' (case-insensitive).
        device_id: device index for GPU/Ascend; None lets MindSpore choose.
        mode: 'graph' (the default: step functions compiled with ``mindspore.jit``)
            or 'pynative' (eager; the same code runs uncompiled).
        threads: CPU kernel threads; None means the cores available to this process. With 1,
            every thread of the process is kept on one core (see _pin_to_one_core).
        seed: if given, ``mindspore.set_seed(seed)`` for ops that draw random numbers
            inside the graph (dropout).

    Returns:
        dict with the resolved target, mode and threads.
    """
    target = normalize_target(target)
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}: use 'graph' or 'pynative'")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    if _state["done"]:
        if (_state["target"], _state["mode"]) != (target, mode):
            raise UserError(f"device already set up as {_state['target']}/{_state['mode']} in this process")
        return dict(_state)

    import mindspore as ms
    import mindspore.device_context as device_context

    backend = {"CPU": device_context.cpu, "GPU": device_context.gpu, "Ascend": device_context.ascend}[target]
    if not backend.is_available():
        raise UserError(
            f"device {target} is not available in this MindSpore installation "
            f"(mindspore {ms.__version__}); install the {target} build of MindSpore or use --device CPU")
    if device_id is not None and device_id < 0:
        raise UserError(f"--device-id must be >= 0, got {device_id}")
    try:
        ms.set_device(target) if device_id is None else ms.set_device(target, device_id)
    except RuntimeError:
        # The runtime already started in this process (library use after other MindSpore
        # work, tests): nothing to change if it runs on the requested target.
        if ms.get_context("device_target") != target:
            raise UserError(f"MindSpore already runs on {ms.get_context('device_target')} in this process; "
                            f"cannot switch to {target} (start a new process)") from None
    # Both modes run the same Python code: in graph mode the trainer wraps its step
    # functions in mindspore.jit, in PyNative it calls them directly. The context mode
    # itself stays PyNative so that eager utilities (sampling, logging) keep working.
    ms.set_context(mode=ms.PYNATIVE_MODE)
    if target == "CPU":
        threads = threads or default_cpu_threads()
        try:
            device_context.cpu.op_tuning.threads_num(int(threads))
        except RuntimeError:
            # MindSpore fixes its thread pool once a kernel has run in this process (library use
            # after other MindSpore work, or tests); the pool it already has stays.
            threads = None
        if threads == 1:
            _pin_to_one_core()
    if seed is not None:
        ms.set_seed(int(seed))
    _state.update(done=True, target=target, mode=mode, threads=threads)
    from ms_gan import kernels

    kernels.configure(target, threads)   # the kernels' threads follow these; MS_GAN_KERNELS is checked before any work
    return dict(_state)


def current():
    """The settings :func:`setup` applied (or None values before it ran)."""
    return dict(_state)
