"""MindIR / ONNX export: the exported graphs reproduce the checkpoint's networks.

Every preset's G is saved with fresh random weights (attention gammas set to 0.5
so self-attention is live in the graph), exported, and run at batch sizes 1, 2, 7
and 64 against the Cell. ~100 s on 2 busy cores (the 64x64 and 128x128 presets dominate).
"""
import json
import os

import numpy as np
import pytest

import ms_gan  # noqa: F401  (environment before MindSpore)
import mindspore as ms

from ms_gan import presets
from ms_gan.errors import UserError
from ms_gan.export import export, input_shape, repair_onnx, run_onnx
from ms_gan.generate import load_mindir
from ms_gan.models import build, primary
from ms_gan import checkpoint

BATCHES = (1, 2, 7, 64)


def _meta(name):
    return {"preset": name, "overrides": {}, "epoch": 0, "batch_in_epoch": 0, "step": 0, "seed": 0, "rng": None,
            "world": 1}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """name -> (ckpt path, G in eval mode, D in eval mode) for every preset."""
    folder = tmp_path_factory.mktemp("export")
    out = {}
    for name in presets.names():
        G, D = build(presets.get(name), seed=1)
        for p in list(G.get_parameters()) + list(D.get_parameters()):
            if p.name.endswith(".gamma") and ".attn" in p.name:
                p.set_data(ms.Tensor(np.full(p.shape, 0.5, np.float32)))
        if name == "sagan64":
            # Untrained spectral-norm vectors underestimate sigma, so activations reach
            # ~1e5 and float32 kernels of two runtimes differ by 1e-3 after tanh. A few
            # train-mode passes (power iterations, BN statistics) give realistic scales.
            G.set_train(True)
            D.set_train(True)
            for i in range(4):
                rng = np.random.default_rng(i)
                G(ms.Tensor(rng.standard_normal((2, 20)).astype(np.float32)))
                D(ms.Tensor(np.tanh(rng.standard_normal((2, 1, 64, 64))).astype(np.float32)))
        path = str(folder / f"{name}.ckpt")
        checkpoint.save(path, [G, D], _meta(name))
        G.set_train(False)
        D.set_train(False)
        out[name] = (path, G, D)
    return out


def _inputs(preset, net, batch):
    return np.random.default_rng(batch).standard_normal(input_shape(preset, net, batch)).astype(np.float32)


def _classes(preset, batch):
    """() or (labels,) for G's inputs: class-conditional presets take class labels (N,) int32."""
    return () if not preset.num_classes else ((np.arange(batch) * 7 % preset.num_classes).astype(np.int32),)


@pytest.mark.parametrize("name", presets.names())
def test_mindir_generator_matches_checkpoint_for_any_batch(checkpoints, tmp_path, name):
    path, G, _ = checkpoints[name]
    result = export(path, "MINDIR", str(tmp_path / "g"), "g")
    assert result["path"].endswith("g.mindir") and os.path.isfile(result["path"])
    loaded, preset = load_mindir(result["path"])
    assert preset.name == name
    for batch in BATCHES:
        z = _inputs(preset, "g", batch)
        y = _classes(preset, batch)   # conditional presets: the class input beside the noise
        expected = primary(G(ms.Tensor(z), *[ms.Tensor(c) for c in y])).asnumpy()
        got = loaded(ms.Tensor(z), *[ms.Tensor(c) for c in y])
        assert isinstance(got, ms.Tensor)  # one output: attention maps are dropped
        got = got.asnumpy()
        assert got.shape == (batch, preset.channels, preset.image_size, preset.image_size)
        assert np.max(np.abs(got - expected)) <= 1e-6, (name, batch)
    side = json.load(open(result["sidecar"]))
    assert side["preset"] == name and side["net"] == "g" and side["input_shape"] == [None, preset.z_dim]


@pytest.mark.parametrize("name", ["dcgan_digits8", "sagan64"])
def test_mindir_discriminator_matches_checkpoint(checkpoints, tmp_path, name):
    path, _, D = checkpoints[name]
    preset = presets.get(name)
    result = export(path, "MINDIR", str(tmp_path / "d.mindir"), "d")
    graph = ms.nn.GraphCell(ms.load(result["path"]))
    for batch in (1, 7):
        x = np.tanh(_inputs(preset, "d", batch))
        expected = primary(D(ms.Tensor(x))).asnumpy()
        got = graph(ms.Tensor(x)).asnumpy()
        assert got.shape == (batch, 1)
        assert np.max(np.abs(got - expected)) <= 1e-6 * max(1.0, np.max(np.abs(expected)))
    with pytest.raises(UserError, match="discriminator"):
        load_mindir(result["path"])  # sampling needs a generator


@pytest.mark.parametrize("name", presets.names())
def test_repaired_onnx_generator_matches_checkpoint_for_any_batch(checkpoints, tmp_path, name):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    path, G, _ = checkpoints[name]
    preset = presets.get(name)
    result = export(path, "ONNX", str(tmp_path / "g.onnx"), "g")
    assert result["max_abs_diff"] is not None and result["max_abs_diff"] <= 1e-5
    for batch in BATCHES:
        z = _inputs(preset, "g", batch)
        y = _classes(preset, batch)
        expected = primary(G(ms.Tensor(z), *[ms.Tensor(c) for c in y])).asnumpy()
        got = run_onnx(result["path"], z, *y)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= 1e-5, (name, batch)


def test_repaired_onnx_discriminator_with_spectral_norm_and_attention(checkpoints, tmp_path):
    # sagan64's D: spectral norm's sigma (a ReduceSum over all axes) and self-attention.
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    path, _, D = checkpoints["sagan64"]
    preset = presets.get("sagan64")
    result = export(path, "ONNX", str(tmp_path / "d.onnx"), "d")
    for batch in (1, 7):
        x = np.tanh(_inputs(preset, "d", batch))
        expected = primary(D(ms.Tensor(x))).asnumpy()
        got = run_onnx(result["path"], x)
        assert np.max(np.abs(got - expected)) <= 1e-5 * max(1.0, np.max(np.abs(expected)))


def test_unrepaired_onnx_is_rejected_by_onnxruntime(checkpoints, tmp_path):
    # The reason repair_onnx exists: MindSpore's 4-D ConvTranspose output_shape.
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path, G, _ = checkpoints["dcgan_digits8"]
    wrapper_out = str(tmp_path / "raw")
    from ms_gan.export import ONNX_EXPORT_BATCH, export_ready
    from ms_gan.generate import load_network

    _, cell, _, _ = load_network(path, "g")
    z = _inputs(presets.get("dcgan_digits8"), "g", ONNX_EXPORT_BATCH)
    ms.export(export_ready(cell, onnx=True), ms.Tensor(z), file_name=wrapper_out, file_format="ONNX")
    raw = wrapper_out + ".onnx"
    with pytest.raises(Exception, match="output_shape"):
        ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
    repair_onnx(raw)
    model = onnx.load(raw)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    got = run_onnx(raw, z[:2])
    assert np.max(np.abs(got - primary(G(ms.Tensor(z[:2]))).asnumpy())) <= 1e-5


def test_load_mindir_needs_its_sidecar(checkpoints, tmp_path):
    path, _, _ = checkpoints["dcgan_digits8"]
    result = export(path, "MINDIR", str(tmp_path / "g.mindir"), "g")
    os.remove(result["sidecar"])
    with pytest.raises(UserError, match="metadata"):
        load_mindir(result["path"])
    with pytest.raises(UserError, match="does not exist"):
        load_mindir(str(tmp_path / "missing.mindir"))


def test_export_rejects_bad_arguments(checkpoints, tmp_path):
    path, _, _ = checkpoints["dcgan_digits8"]
    with pytest.raises(UserError, match="format"):
        export(path, "TFLITE", str(tmp_path / "x"))
    with pytest.raises(UserError, match="--net"):
        export(path, "MINDIR", str(tmp_path / "x"), net="e")
    with pytest.raises(UserError, match="does not exist"):
        export(str(tmp_path / "nope.ckpt"), "MINDIR", str(tmp_path / "x"))
