"""Process environment that must be in place before MindSpore is imported.

Imported first by ``ms_gan/__init__.py``. Three settings, each applied only when
the user has not set the variable already:

* ``ONEDNN_MAX_CPU_ISA=AVX2``: on AVX-512 machines oneDNN (MindSpore's CPU
  convolution backend) otherwise selects a reference convolution kernel and a
  DCGAN-64 training step takes ~150 s instead of ~3 s. oneDNN reads the
  variable once, when it first dispatches, so it must be set before MindSpore
  runs any kernel; setting it at import time of ``ms_gan`` covers every entry
  point (CLI, scripts, library use).
* ``GLOG_v=3``: MindSpore logs many framework WARNINGs to stderr at its default
  level; errors still show. Set ``GLOG_v=2`` to see them again.
* ``OMP_WAIT_POLICY=PASSIVE``: the CPU kernels (:mod:`ms_gan.kernels`) run on an OpenMP team
  whose idle threads otherwise spin, taking the cores MindSpore's own threads need between
  convolutions: a dcgan64 iteration took 3945 ms instead of 1928 ms, process CPU 3.9 s instead
  of 1.9 s (bench/NOTES.md attempt 29). MindSpore loads libgomp at import, which reads it then.

It also checks NumPy's major version (:func:`numpy_problem`): MindSpore 2.10's C
extension is built against NumPy 1, and under NumPy 2 every command dies later in
a ``SystemError ... pyboost_reshape ... returned a result with an exception set``.
"""
import importlib.util
import os
import re
import sys

ONEDNN_ISA_DEFAULT = "AVX2"


def prepare():
    """Set the environment defaults above; returns the names it set."""
    changed = []
    if "ONEDNN_MAX_CPU_ISA" not in os.environ:
        os.environ["ONEDNN_MAX_CPU_ISA"] = ONEDNN_ISA_DEFAULT
        changed.append("ONEDNN_MAX_CPU_ISA")
    if "GLOG_v" not in os.environ:
        os.environ["GLOG_v"] = "3"
        changed.append("GLOG_v")
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        changed.append("OMP_WAIT_POLICY")
    return changed


NUMPY_MAX_MAJOR = 1


def numpy_version():
    """The version of the NumPy that ``import numpy`` would load, or None when there is none.

    Read without importing NumPy when it can be (``ms-gan --help`` stays instant): from the
    ``numpy-X.dist-info`` beside the package pip installed. Falls back to importing it
    (a source tree or an unusual layout) and reading ``numpy.__version__``.
    """
    module = sys.modules.get("numpy")
    if module is None:
        spec = importlib.util.find_spec("numpy")
        if spec is None or not spec.submodule_search_locations:
            return None
        site = os.path.dirname(list(spec.submodule_search_locations)[0])
        try:
            found = [m.group(1) for m in map(re.compile(r"numpy-([^-]+)\.dist-info$").match, os.listdir(site)) if m]
        except OSError:
            found = []
        if len(found) == 1:
            return found[0]
        import numpy as module
    return str(getattr(module, "__version__", "0"))


def numpy_problem():
    """One sentence when the installed NumPy cannot work with MindSpore 2.10, else None."""
    version = numpy_version()
    if version is None:
        return None
    major = re.match(r"\d+", version)
    if major is None or int(major.group()) <= NUMPY_MAX_MAJOR:
        return None
    return f"NumPy {version} is installed; MindSpore 2.10 needs numpy<2: pip install 'numpy<2'"


def running_cli():
    """True when this process is the ``ms-gan`` command (console script or ``python -m ms_gan``)."""
    if os.path.basename(sys.argv[0]) in ("ms-gan", "ms-gan.exe"):
        return True
    argv = list(getattr(sys, "orig_argv", []))
    return any(a == "-m" and argv[i + 1:i + 2] == ["ms_gan"] or a == "-mms_gan" for i, a in enumerate(argv))
