"""Ctrl-C and SIGTERM: noted when they arrive, acted on at safe points.

Measured on MindSpore 2.10 CPU (issue 12, /tmp driver sending SIGINT to ``ms-gan train``):

* a KeyboardInterrupt raised while ``import mindspore`` runs leaves it half
  initialised: ``ImportError: initialization failed`` (exit 1) or, at interpreter
  exit, ``Fatal Python error: ... the GIL is released`` (abort, 134);
* once a ``mindspore.dataset`` iterator exists, MindSpore's own C++ SIGINT handler
  turns Ctrl-C into SIGTERM, which killed the process (``^CTerminated``, 143).

So :func:`install` (the CLI's first act) catches both SIGINT and SIGTERM with a handler
that only records the signal; long-running code calls :func:`check` where stopping is
safe (between training steps, between generator batches) and
:func:`ms_gan.checkpoint.atomic_output` checks before it moves a finished file into
place, so an interrupted command leaves no new or half-written file. A second signal
raises at once, for a user who does not want to wait for the safe point.
"""
import contextlib
import os
import signal

_pending = []
_deferred = [0]


class Interrupted(KeyboardInterrupt):
    """Raised at a safe point after SIGINT/SIGTERM; ``where`` says how far the work got."""

    def __init__(self, where=""):
        super().__init__(where)
        self.where = where


def _note(signum, frame):
    _pending.append(signum)
    if len(_pending) > 1:
        raise Interrupted()


def install():
    """Record SIGINT and SIGTERM instead of dying; returns the previous handlers (for :func:`restore`)."""
    previous = {}
    # msrun stops its workers with SIGTERM; a worker blocked in a collective operation with a
    # failed peer never reaches a safe point, so under msrun SIGTERM keeps its default (kill).
    signals = (signal.SIGINT,) if os.environ.get("MS_ROLE") else (signal.SIGINT, signal.SIGTERM)
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, _note)
    except ValueError:  # signal handlers can be set only from the main thread
        pass
    return previous


def restore(previous):
    """Put back the handlers :func:`install` replaced (``main`` called in-process, e.g. by tests)."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def pending():
    return bool(_pending)


def clear():
    del _pending[:]


@contextlib.contextmanager
def deferred():
    """A stretch that finishes what it started (an epoch's checkpoint, stats and table rows): a signal
    is noted but :func:`check` does not raise inside it, so the caller's next safe point stops with
    every file of that stretch written. A second signal still raises at once (:func:`_note`)."""
    _deferred[0] += 1
    try:
        yield
    finally:
        _deferred[0] -= 1


def check(where=""):
    """Raise :class:`Interrupted` if a signal arrived since :func:`install` (not inside :func:`deferred`)."""
    if _pending and not _deferred[0]:
        raise Interrupted(where)
