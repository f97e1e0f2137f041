"""Process environment that must be in place before MindSpore is imported.

Imported first by ``ms_gan/__init__.py``. Two settings, each applied only when
the user has not set the variable already:

* ``ONEDNN_MAX_CPU_ISA=AVX2``: on AVX-512 machines oneDNN (MindSpore's CPU
  convolution backend) otherwise selects a reference convolution kernel and a
  DCGAN-64 training step takes ~150 s instead of ~3 s. oneDNN reads the
  variable once, when it first dispatches, so it must be set before MindSpore
  runs any kernel; setting it at import time of ``ms_gan`` covers every entry
  point (CLI, scripts, library use).
* ``GLOG_v=3``: MindSpore logs many framework WARNINGs to stderr at its default
  level; errors still show. Set ``GLOG_v=2`` to see them again.
"""
import os

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
    return changed
