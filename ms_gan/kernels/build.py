"""Build ``onednn_conv.cc``, ``onednn_matmul.cc`` and ``nearest.cc`` into one shared library, once per MindSpore version and source.

The library links the oneDNN that MindSpore ships (``mindspore/lib/libdnnl.so.3``, threadpool runtime)
and compiles against oneDNN's public headers from PyPI's ``onednn-devel`` (headers only; MindSpore ships
none). Those headers describe a SYCL build in ``dnnl_config.h``; the build writes a copy naming the
threadpool runtime MindSpore's library uses (verified: ``onednn-devel==2025.3.0``, oneDNN 3.9.1 headers,
against MindSpore 2.10's oneDNN 3.10.1). Nothing of oneDNN is stored in this repository.

The result lands in ``$MS_GAN_CACHE/kernels/<key>/`` (default ``~/.cache/ms_gan``), key = MindSpore's
version + a hash of the source, flags and headers' version; a build happens in a temporary directory
renamed into place, so concurrent processes never see a half-written library.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

# One library: the convolutions, the matrix products (Dense layers) and nearest 2x upsampling.
SOURCES = [Path(__file__).with_name(name) for name in ("onednn_conv.cc", "onednn_matmul.cc", "nearest.cc")]
LIBRARY_NAME = "libms_gan_kernels.so"
CXX_FLAGS = ["-O2", "-std=c++17", "-fPIC", "-shared", "-fopenmp", "-fvisibility=hidden"]
_RUNTIME_LINES = {
    "DNNL_CPU_THREADING_RUNTIME": "DNNL_RUNTIME_THREADPOOL",
    "DNNL_CPU_RUNTIME": "DNNL_RUNTIME_THREADPOOL",
    "DNNL_GPU_RUNTIME": "DNNL_RUNTIME_NONE",
}


class BuildUnavailable(Exception):
    """The kernels cannot be built here (no compiler, no headers, no oneDNN in MindSpore)."""


def cache_root():
    """``$MS_GAN_CACHE`` or ``~/.cache/ms_gan``."""
    return Path(os.environ.get("MS_GAN_CACHE") or Path.home() / ".cache" / "ms_gan")


def mindspore_lib_dir():
    """MindSpore's ``lib`` directory holding ``libdnnl.so.3`` (found without importing MindSpore)."""
    import importlib.util

    spec = importlib.util.find_spec("mindspore")
    if spec is None or not spec.submodule_search_locations:
        raise BuildUnavailable("MindSpore is not installed")
    lib = Path(list(spec.submodule_search_locations)[0]) / "lib"
    if not (lib / "libdnnl.so.3").is_file():
        raise BuildUnavailable(f"no libdnnl.so.3 in {lib} (this MindSpore build has no oneDNN)")
    return lib


def header_dirs():
    """Include directories that may hold ``oneapi/dnnl/dnnl.hpp``: ``$MS_GAN_ONEDNN_INCLUDE``, then where
    pip puts ``onednn-devel``'s headers (the environment's and the user's ``include``)."""
    dirs = []
    if os.environ.get("MS_GAN_ONEDNN_INCLUDE"):
        dirs.append(Path(os.environ["MS_GAN_ONEDNN_INCLUDE"]))
    dirs.append(Path(sysconfig.get_paths()["data"]) / "include")
    dirs.append(Path(sys.prefix) / "include")
    try:
        import site

        dirs.append(Path(site.getuserbase()) / "include")
    except (ImportError, AttributeError):
        pass
    return dirs


def find_headers():
    """The include directory with oneDNN 3.x headers; raises BuildUnavailable naming what to install."""
    for d in header_dirs():
        version = d / "oneapi" / "dnnl" / "dnnl_version.h"
        if (d / "oneapi" / "dnnl" / "dnnl.hpp").is_file() and version.is_file():
            if re.search(r"#define DNNL_VERSION_MAJOR 3\b", version.read_text()):
                return d
    raise BuildUnavailable("no oneDNN 3.x headers found (pip install --no-deps onednn-devel==2025.3.0, "
                           "or set MS_GAN_ONEDNN_INCLUDE)")


def find_compiler():
    """The C++ compiler: ``$CXX`` or g++; raises BuildUnavailable when there is none."""
    cxx = os.environ.get("CXX") or "g++"
    path = shutil.which(cxx)
    if path is None:
        raise BuildUnavailable(f"no C++ compiler ({cxx}) on PATH")
    return path


def threadpool_config(headers):
    """``dnnl_config.h`` of ``headers`` with the CPU runtime set to oneDNN's threadpool (MindSpore's)."""
    text = (headers / "oneapi" / "dnnl" / "dnnl_config.h").read_text()
    for name, value in _RUNTIME_LINES.items():
        text, count = re.subn(rf"#define {name} \w+", f"#define {name} {value}", text)
        if count != 1:
            raise BuildUnavailable(f"unexpected dnnl_config.h in {headers}: no single {name}")
    return re.sub(r"#define DNNL_WITH_SYCL\b", "", text)


def build_key(headers):
    """Cache key: MindSpore's version, the source, flags and headers' version."""
    import importlib.metadata

    try:
        ms_version = importlib.metadata.version("mindspore")
    except importlib.metadata.PackageNotFoundError:
        ms_version = "unknown"
    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(source.read_bytes())
    digest.update(" ".join(CXX_FLAGS).encode())
    digest.update((headers / "oneapi" / "dnnl" / "dnnl_version.h").read_bytes())
    return f"mindspore-{ms_version}-{digest.hexdigest()[:16]}"


def library_path():
    """The built library, building it first if needed; raises BuildUnavailable."""
    lib_dir = mindspore_lib_dir()
    headers = find_headers()
    target = cache_root() / "kernels" / build_key(headers)
    library = target / LIBRARY_NAME
    if library.is_file():
        return library
    cxx = find_compiler()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        config = work / "include" / "oneapi" / "dnnl" / "dnnl_config.h"
        config.parent.mkdir(parents=True)
        config.write_text(threadpool_config(headers))
        cmd = [cxx, *CXX_FLAGS, f"-I{work / 'include'}", f"-I{headers}", *map(str, SOURCES),
               "-o", str(work / LIBRARY_NAME),  f"-L{lib_dir}", "-l:libdnnl.so.3", f"-Wl,-rpath,{lib_dir}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildUnavailable(f"{Path(cxx).name} failed to build the kernels:\n{done.stderr.strip()[-2000:]}")
        shutil.rmtree(work / "include")
        (work / "build.txt").write_text(" ".join(cmd) + "\n")
        try:
            os.rename(work, target)   # atomic; fails if another process finished first
        except OSError:
            if not library.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return library
