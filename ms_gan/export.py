"""Export a checkpoint's G (or D) to MindIR or ONNX, and load an exported G for inference.

``ms-gan export --ckpt RUN_OR_CKPT --format MINDIR|ONNX --out FILE [--net g|d]``

* The exported network is in eval mode (BatchNorm moving statistics, no dropout)
  and returns only its primary output (attention maps are dropped).
* MindIR has a dynamic batch dimension: it is exported with
  ``mindspore.Tensor(shape=[None, ...])``. A fixed-shape MindIR fails on other
  batch sizes with a oneDNN "could not create a primitive descriptor" error.
* MindSpore 2.10 cannot export ONNX with a dynamic shape, and its ONNX files do
  not run under onnxruntime as written (ConvTranspose carries a 4-D
  ``output_shape``, which the ONNX spec defines as spatial only). The file is
  exported with a fixed batch of :data:`ONNX_EXPORT_BATCH` and then repaired with
  the optional ``onnx`` package (:func:`repair_onnx`): the ConvTranspose
  attribute is fixed and the batch dimension made symbolic. When onnxruntime is
  installed the repaired file is checked against the checkpoint's Cell.
* Next to the exported file a JSON sidecar ``FILE.json`` records the preset name
  and overrides, the network, the input shape and the source checkpoint, so
  ``ms-gan sample --mindir FILE`` needs no model code and no flags.
* A class-conditional network (``train --conditional``) takes a second input, the int32 class
  labels (N,), beside the noise (or images); the sidecar records it (``class_input``,
  ``num_classes``).
"""
import os
import shutil
import tempfile

from ms_gan import checkpoint as ckpt_io
from ms_gan.errors import UserError
from ms_gan.generate import SIDECAR_FORMAT, balanced_classes, load_network, sidecar_path

FORMATS = ("MINDIR", "ONNX")
SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx"}
# Fixed batch of the ONNX export before the repair makes it symbolic. A prime no
# layer of any preset uses as a size, so that a Reshape target equal to it can only
# be the batch dimension.
ONNX_EXPORT_BATCH = 13
# The pyproject 'onnx' extra; numpy<2 in the same command keeps pip from upgrading NumPy (onnx's
# ml_dtypes otherwise pulls NumPy 2, which MindSpore 2.10 cannot run with).
ONNX_INSTALL_HINT = ("pip install -e '.[onnx]' in the ms_gan source folder, or "
                     "pip install 'onnx==1.23.2' 'onnxruntime==1.32.0' 'numpy<2'")


# ---------------------------------------------------------------------------- export-ready networks


def _export_cells():
    """Cell classes used only for export (MindSpore imported lazily)."""
    from mindspore import nn, ops

    class PrimaryOutput(nn.Cell):
        """Wraps a network that may return (output, attention maps...) to return the output only."""

        def __init__(self, net):
            super().__init__()
            self.net = net
            self.has_attention = bool(getattr(net, "has_attention", False))

        def construct(self, x):
            out = self.net(x)
            if self.has_attention:
                return out[0]
            return out

    class Nearest2x(nn.Cell):
        """Nearest-neighbour 2x upsampling that exports with a dynamic batch and to ONNX.

        ``nn.Upsample(recompute_scale_factor=True)`` holds control flow that a
        dynamic-batch MindIR cannot run, and its ResizeNearestNeighborV2 has no
        ONNX converter. The spatial size is static in every preset.
        """

        def construct(self, x):
            resize = ops.ResizeNearestNeighbor((x.shape[2] * 2, x.shape[3] * 2))
            return resize(x)

    class ZeroPad(nn.Cell):
        """``nn.ZeroPad2d`` through the Pad primitive (PadV3 has no ONNX converter)."""

        def __init__(self, padding):
            super().__init__()
            left, right, top, bottom = padding
            self.pad = ops.Pad(((0, 0), (0, 0), (top, bottom), (left, right)))

        def construct(self, x):
            return self.pad(x)

    return PrimaryOutput, Nearest2x, ZeroPad


def _export_swaps(onnx):
    """{layer class: replacement factory}: layers an exported graph cannot hold, and their stand-ins."""
    from mindspore import nn

    from ms_gan.nn import workarounds

    _, Nearest2x, ZeroPad = _export_cells()

    def nearest2x(upsample):
        if upsample.mode != "nearest" or upsample.size is not None or float(upsample.scale_factor) != 2.0:
            raise UserError(f"cannot export {upsample}: only nearest 2x upsampling is supported")
        return Nearest2x()

    def zero_pad(pad):
        padding = tuple(int(v) for v in pad.padding)
        if len(padding) != 4:
            raise UserError(f"cannot export ZeroPad2d with padding {padding}")
        return ZeroPad(padding)

    swaps = {
        nn.Upsample: nearest2x,     # see Nearest2x
        workarounds.Upsample2x: lambda cell: nearest2x(cell.resize),
        nn.ZeroPad2d: zero_pad,     # see ZeroPad
        # Same function; ours only changes the backward, MindSpore's is two kernels with ONNX converters.
        workarounds.LeakyReLU: lambda cell: nn.LeakyReLU(cell.slope),
    }
    if onnx:
        # The accurate Tanh uses Sign and Select, which have no ONNX converter; onnxruntime's Tanh is accurate.
        swaps[workarounds.Tanh] = lambda cell: nn.Tanh()
    return swaps


def _export_settings():
    """{cell class: {attribute: value}} set on every such cell before export."""
    from ms_gan.nn.attention import AttentionCore

    # Chunks need the batch size, which the exported graph leaves open.
    return {AttentionCore: {"chunk_elements": 0}}


def export_ready(net, onnx=False):
    """``net`` in eval mode with export-hostile layers swapped for equivalents, primary output only.

    Modifies ``net`` in place (every child whose class is in :func:`_export_swaps` is replaced,
    every cell in :func:`_export_settings` gets its export attributes) and returns a wrapper
    Cell; build a fresh network for anything else.
    """
    PrimaryOutput, _, _ = _export_cells()
    swaps = _export_swaps(onnx)
    settings = _export_settings()
    for _, cell in list(net.cells_and_names()):
        for attribute, value in settings.get(type(cell), {}).items():
            setattr(cell, attribute, value)
        children = getattr(cell, "_cells", {})
        for key, child in list(children.items()):
            if type(child) in swaps:
                children[key] = swaps[type(child)](child)
    from ms_gan.nn.conditional import ClassInputOutput, is_conditional

    wrapper = ClassInputOutput(net) if is_conditional(net) else PrimaryOutput(net)
    wrapper.set_train(False)
    return wrapper


def input_shape(preset, net="g", batch=None):
    return [batch, preset.z_dim] if net == "g" else [batch, preset.channels, preset.image_size, preset.image_size]


def _with_suffix(out, fmt):
    suffix = SUFFIX[fmt]
    return out if out.lower().endswith(suffix) else out + suffix


def export(ckpt, fmt="MINDIR", out=None, net="g", verify=True, use_ema=True):
    """Export G or D of a checkpoint; returns a dict describing what was written.

    Args:
        ckpt: checkpoint file or run directory.
        fmt: 'MINDIR' or 'ONNX' (case-insensitive).
        out: output file; the format's suffix is added when missing. Default
            ``<preset>_<net>.mindir|.onnx`` in the current folder.
        net: 'g' or 'd'.
        verify: for ONNX, compare onnxruntime with the Cell when onnxruntime is installed.

    Returns:
        dict with ``path``, ``sidecar``, ``preset``, ``net``, ``format`` and for ONNX
        ``max_abs_diff`` (None when not verified).
    """
    import mindspore as ms
    import numpy as np

    fmt = str(fmt).upper()
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use MINDIR or ONNX")
    net = str(net).lower()
    if net not in ("g", "d"):
        raise UserError(f"--net must be g or d, got {net!r}")
    if fmt == "ONNX":
        _require_onnx()
    preset, cell, meta, path = load_network(ckpt, net, use_ema)
    out = _with_suffix(out or f"{preset.name}_{net}", fmt)
    rng = np.random.default_rng(0)
    # The reference for the ONNX check comes from the network as trained, before
    # export_ready swaps layers, at a batch other than the export's.
    check_x = rng.standard_normal(input_shape(preset, net, 3)).astype(np.float32)
    # a conditional network's second input: class labels (N,) int32
    classes = bool(preset.num_classes)
    check_inputs = (check_x,) + ((balanced_classes(preset, 3),) if classes else ())
    check_y = None
    if fmt == "ONNX" and verify and _has_onnxruntime():
        from ms_gan.models import primary

        check_y = primary(cell(*[ms.Tensor(a) for a in check_inputs])).asnumpy()
    wrapper = export_ready(cell, onnx=fmt == "ONNX")
    result = {"path": out, "sidecar": sidecar_path(out), "preset": preset.name, "net": net, "format": fmt}
    with ckpt_io.atomic_output(out) as tmp, tempfile.TemporaryDirectory(prefix="ms_gan_export_") as scratch:
        # MindSpore's file-name check refuses spaces and non-ASCII characters (issue 12):
        # it writes under a plain temporary name, then the file moves into place.
        base = os.path.join(scratch, "net")
        if fmt == "MINDIR":
            specs = [ms.Tensor(shape=input_shape(preset, net), dtype=ms.float32)]
            if classes:
                specs.append(ms.Tensor(shape=[None], dtype=ms.int32))
            ms.export(wrapper, *specs, file_name=base, file_format="MINDIR")
        else:
            example = [rng.standard_normal(input_shape(preset, net, ONNX_EXPORT_BATCH)).astype(np.float32)]
            if classes:
                example.append(balanced_classes(preset, ONNX_EXPORT_BATCH))
            ms.export(wrapper, *[ms.Tensor(a) for a in example], file_name=base, file_format="ONNX")
        written = base + SUFFIX[fmt]
        if not os.path.isfile(written):
            raise UserError(f"MindSpore did not write {out}")
        if fmt == "ONNX":
            repair_onnx(written, ONNX_EXPORT_BATCH)
            result["max_abs_diff"] = None
            if check_y is not None:
                expected = check_y
                got = run_onnx(written, *check_inputs)
                diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
                # Relative: a fresh spectrally normalised D outputs values near 1e6.
                if not diff <= 1e-4 * max(1.0, float(np.max(np.abs(expected)))):
                    raise UserError(f"the repaired ONNX file {out} does not reproduce the network "
                                    f"(max abs difference {diff}); please report this with the preset name")
                result["max_abs_diff"] = diff
        shutil.copyfile(written, tmp)
    sidecar = {
        "format": SIDECAR_FORMAT, "model_format": fmt, "net": net, "preset": preset.name,
        "overrides": meta.get("overrides", {}), "input_shape": input_shape(preset, net),
        "input": "noise (N, z_dim) from the preset's distribution" if net == "g" else "images (N, C, H, W) in [-1, 1]",
        "output": "images (N, C, H, W) in [-1, 1]" if net == "g" else f"D output (N, 1), a {preset.d_output}",
        "class_input": ("class labels (N,) int32 in 0..num_classes-1, the second input" if classes else None),
        "num_classes": int(preset.num_classes),
        "source_checkpoint": os.path.abspath(path), "step": meta.get("step"), "epoch": meta.get("epoch"),
        "sha256": ckpt_io.file_sha256(out), "mindspore": ms.__version__,
    }
    ckpt_io.write_json(sidecar_path(out), sidecar)
    return result


# ---------------------------------------------------------------------------- ONNX repair


def _require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UserError(f"ONNX export needs the optional 'onnx' package: {ONNX_INSTALL_HINT}") from None


def _has_onnxruntime():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def repair_onnx(path, batch=ONNX_EXPORT_BATCH, out=None):
    """Make a MindSpore 2.10 ONNX file run under onnxruntime with any batch size.

    * ConvTranspose: MindSpore writes ``output_shape`` as (N, C, H, W); ONNX
      defines it as spatial only. Where explicit ``pads`` or ``auto_pad=VALID``
      already fix the output, the attribute is dropped (onnxruntime ignores
      explicit pads when ``output_shape`` is present, which would re-distribute
      asymmetric padding); otherwise it is cut to (H, W). MindSpore also writes
      the ``pads`` in the order (top, bottom, left, right) instead of ONNX's
      (top, left, bottom, right), which matters for asymmetric padding
      (dcgan_mnist28's first layer): they are reordered. The repair of a
      ConvTranspose happens once (it keys on the 4-D ``output_shape``).
    * Batch: the graph input and output get a symbolic first dimension, and
      Reshape targets whose first entry is the export batch get 0 ("copy the
      input's dimension"); Resize nodes given the full output ``sizes`` (batch
      included) get the equivalent ``scales``.
    * Reduce nodes: MindSpore writes "over all axes" as an empty ``axes`` list,
      which onnxruntime reads as "over no axis"; the attribute is dropped.

    Args:
        path: the exported ``.onnx`` file.
        batch: the fixed batch size it was exported with.
        out: where to write the repaired model (default: over ``path``).

    Returns:
        The path written.
    """
    _require_onnx()
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    constants = {}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = attr
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "ConvTranspose":
            attrs = {a.name: a for a in node.attribute}
            shape_attr = attrs.get("output_shape")
            if shape_attr is not None and len(shape_attr.ints) == 4:
                pads_fix_it = "pads" in attrs or (
                    "auto_pad" in attrs and helper.get_attribute_value(attrs["auto_pad"]) == b"VALID")
                spatial = list(shape_attr.ints)[2:]
                node.attribute.remove(shape_attr)
                if "pads" in attrs and len(attrs["pads"].ints) == 4:
                    # MindSpore writes ConvTranspose pads as (top, bottom, left, right);
                    # ONNX wants (top, left, bottom, right).
                    top, bottom, left, right = attrs["pads"].ints
                    attrs["pads"].ClearField("ints")
                    attrs["pads"].ints.extend([top, left, bottom, right])
                if not pads_fix_it:
                    node.attribute.append(helper.make_attribute("output_shape", spatial))
        elif node.op_type.startswith("Reduce"):
            # MindSpore writes "reduce everything" as axes=[]; onnxruntime reads an empty
            # list as "reduce nothing" (spectral norm's sigma stays a vector).
            for attr in list(node.attribute):
                if attr.name == "axes" and len(attr.ints) == 0:
                    node.attribute.remove(attr)
        elif node.op_type == "Reshape" and len(node.input) > 1:
            name = node.input[1]
            if name in constants:
                attr = constants[name]
                shape = numpy_helper.to_array(attr.t).copy()
                if shape.size and shape[0] == batch:
                    shape[0] = 0
                    attr.t.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), attr.t.name))
            elif name in initializers:
                init = initializers[name]
                shape = numpy_helper.to_array(init).copy()
                if shape.size and shape[0] == batch:
                    shape[0] = 0
                    init.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), init.name))
    _resize_sizes_to_scales(model, constants, initializers, batch)
    for value in list(graph.input) + list(graph.output):
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == batch:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    # Intermediate shapes were inferred for the fixed batch; let onnxruntime re-infer them.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    out = out or path
    onnx.save(model, out)
    return out


def _resize_sizes_to_scales(model, constants, initializers, batch):
    """Resize nodes with a full (N, C, H, W) ``sizes`` input get ``scales`` instead.

    MindSpore writes the export batch into ``sizes``; scales (1, 1, H'/H, W'/W)
    hold no batch. Input shapes come from ONNX shape inference on the fixed-batch graph.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    resizes = [n for n in graph.node if n.op_type == "Resize" and len(n.input) == 4 and n.input[3]]
    if not resizes:
        return
    inferred = onnx.shape_inference.infer_shapes(model)
    dims = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for node in resizes:
        name = node.input[3]
        if name in constants:
            sizes = numpy_helper.to_array(constants[name].t)
        elif name in initializers:
            sizes = numpy_helper.to_array(initializers[name])
        else:
            continue
        if sizes.size != 4 or sizes[0] != batch:
            continue
        in_dims = dims.get(node.input[0])
        if not in_dims or len(in_dims) != 4 or 0 in in_dims:
            raise UserError(f"cannot repair Resize node {node.name or node.output[0]}: unknown input shape")
        scales = (sizes.astype(np.float64) / np.asarray(in_dims, dtype=np.float64)).astype(np.float32)
        scales_name = node.output[0] + "_scales"
        graph.initializer.append(numpy_helper.from_array(scales, scales_name))
        node.input[2] = scales_name
        del node.input[3]
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def run_onnx(path, x, classes=None):
    """Run an ONNX file with onnxruntime on one float32 input (and int32 class labels for a
    conditional network); returns the first output."""
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"running ONNX needs the optional 'onnxruntime' package: {ONNX_INSTALL_HINT}") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = {names[0]: np.ascontiguousarray(x, dtype=np.float32)}
    if classes is not None:
        feed[names[1]] = np.ascontiguousarray(classes, dtype=np.int32)
    return session.run(None, feed)[0]


