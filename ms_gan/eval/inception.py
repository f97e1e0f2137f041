"""The FID Inception-v3 network in MindSpore, its weights, and feature extraction.

FID, KID and IS are only comparable across papers when they use the same
network: the port of TensorFlow's 2015-12-05 Inception graph that pytorch-fid and
torch-fidelity both load (``pt_inception-2015-12-05-6726825d.pth``). It is
torchvision's ``inception_v3`` layout with the TF graph's differences:

* 1008 output classes (the TF graph's label map), no auxiliary head;
* the average-pool branch of Mixed_5b..5d, 6b..6e and 7b (blocks A, C, E_1)
  averages over the window's real pixels only (``count_include_pad=False``);
* Mixed_7c's pool branch (block E_2) is a 3x3 *max* pool, a quirk of that graph;
* BatchNorm eps 0.001 (moving statistics only: the network runs in eval mode).

The Cell takes RGB images in [0, 1] of any size, resizes them to 299x299 with
bilinear interpolation (``align_corners=False``, no antialiasing, like
``torch.nn.functional.interpolate`` in pytorch-fid), maps them to ``2 x - 1`` and
returns the 2048 pool3 features and the 1008 logits.

The weights cannot be downloaded here. :func:`convert_torch_file` turns the
PyTorch state_dict (pytorch-fid's file, or torch-fidelity's identical-layout
``weights-inception-2015-12-05-6726825d.pth``) into a MindSpore checkpoint; torch
is imported only there. :func:`load` reads that checkpoint.
"""
import json
import os

import numpy as np

from ms_gan.errors import UserError

FORMAT = "ms_gan-inception-fid-1"
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
CKPT_NAME = "inception_fid.ckpt"
NAME = "inception-v3-fid-2015-12-05"
INPUT_SIZE = 299
FEATURES = 2048
NUM_CLASSES = 1008
PREFIX = "inception."
_META_KEY = "ms_gan_inception"
CONVERT_COMMAND = f"ms-gan convert --inception-weights {PTH_NAME} --out {CKPT_NAME}"
WEIGHTS_HINT = (f"it needs {CKPT_NAME}, converted from {PTH_NAME} (the PyTorch port of TensorFlow's "
                f"inception-2015-12-05 graph that pytorch-fid downloads from its GitHub release 'fid_weights' "
                f"on first use): {CONVERT_COMMAND}")

# torch BatchNorm names -> MindSpore BatchNorm names; every other tensor keeps its name.
_BN_RENAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_IGNORED_SUFFIX = ".num_batches_tracked"  # a training counter; eval-mode BatchNorm never reads it
_CELL_CLASS = None


def _cell_class():
    """The Inception Cell class (built lazily: importing this module must not import MindSpore)."""
    global _CELL_CLASS
    if _CELL_CLASS is not None:
        return _CELL_CLASS
    from mindspore import nn, ops

    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    class BasicConv2d(nn.Cell):
        """Conv (no bias) + BatchNorm (eps 0.001) + ReLU: torchvision's ``BasicConv2d``."""

        def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
            super().__init__()
            ph, pw = pair(padding)
            pad = {"pad_mode": "pad", "padding": (ph, ph, pw, pw)} if ph or pw else {"pad_mode": "valid"}
            self.conv = nn.Conv2d(cin, cout, pair(kernel_size), stride=stride, has_bias=False, **pad)
            self.bn = nn.BatchNorm2d(cout, eps=1e-3)
            self.relu = nn.ReLU()

        def construct(self, x):
            return self.relu(self.bn(self.conv(x)))

    def avg_pool_3x3_same(x):
        # TF's average pool ignores the zero padding (pytorch-fid's "Patch" in A, C, E_1).
        return ops.avg_pool2d(x, 3, 1, 1, False, False)

    class InceptionA(nn.Cell):
        def __init__(self, cin, pool_features):
            super().__init__()
            self.branch1x1 = BasicConv2d(cin, 64, 1)
            self.branch5x5_1 = BasicConv2d(cin, 48, 1)
            self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
            self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
            self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
            self.branch_pool = BasicConv2d(cin, pool_features, 1)

        def construct(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(avg_pool_3x3_same(x))
            return ops.concat((b1, b5, b3, bp), 1)

    class InceptionB(nn.Cell):
        def __init__(self, cin):
            super().__init__()
            self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
            self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
            self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)
            self.pool = nn.MaxPool2d(3, 2)

        def construct(self, x):
            b3 = self.branch3x3(x)
            bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return ops.concat((b3, bd, self.pool(x)), 1)

    class InceptionC(nn.Cell):
        def __init__(self, cin, c7):
            super().__init__()
            self.branch1x1 = BasicConv2d(cin, 192, 1)
            self.branch7x7_1 = BasicConv2d(cin, c7, 1)
            self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
            self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
            self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
            self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
            self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
            self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
            self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
            self.branch_pool = BasicConv2d(cin, 192, 1)

        def construct(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = self.branch7x7dbl_1(x)
            bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))
            bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
            bp = self.branch_pool(avg_pool_3x3_same(x))
            return ops.concat((b1, b7, bd, bp), 1)

    class InceptionD(nn.Cell):
        def __init__(self, cin):
            super().__init__()
            self.branch3x3_1 = BasicConv2d(cin, 192, 1)
            self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
            self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
            self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
            self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
            self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)
            self.pool = nn.MaxPool2d(3, 2)

        def construct(self, x):
            b3 = self.branch3x3_2(self.branch3x3_1(x))
            b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
            return ops.concat((b3, b7, self.pool(x)), 1)

    class InceptionE(nn.Cell):
        """Mixed_7b (``max_pool=False``: E_1) or Mixed_7c (``max_pool=True``: E_2, the TF graph's max pool)."""

        def __init__(self, cin, max_pool):
            super().__init__()
            self.branch1x1 = BasicConv2d(cin, 320, 1)
            self.branch3x3_1 = BasicConv2d(cin, 384, 1)
            self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
            self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
            self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
            self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
            self.branch_pool = BasicConv2d(cin, 192, 1)
            self.max_pool = max_pool
            self.pool_max = nn.MaxPool2d(3, 1, pad_mode="pad", padding=1)

        def construct(self, x):
            b1 = self.branch1x1(x)
            b3 = self.branch3x3_1(x)
            b3 = ops.concat((self.branch3x3_2a(b3), self.branch3x3_2b(b3)), 1)
            bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = ops.concat((self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)), 1)
            pooled = self.pool_max(x) if self.max_pool else avg_pool_3x3_same(x)
            return ops.concat((b1, b3, bd, self.branch_pool(pooled)), 1)

    class FIDInceptionV3(nn.Cell):
        """Images (N, 3, H, W) in [0, 1] -> (pool3 features (N, 2048), logits (N, 1008))."""

        def __init__(self):
            super().__init__()
            self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
            self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
            self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
            self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
            self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
            self.pool = nn.MaxPool2d(3, 2)
            self.Mixed_5b = InceptionA(192, 32)
            self.Mixed_5c = InceptionA(256, 64)
            self.Mixed_5d = InceptionA(288, 64)
            self.Mixed_6a = InceptionB(288)
            self.Mixed_6b = InceptionC(768, 128)
            self.Mixed_6c = InceptionC(768, 160)
            self.Mixed_6d = InceptionC(768, 160)
            self.Mixed_6e = InceptionC(768, 192)
            self.Mixed_7a = InceptionD(768)
            self.Mixed_7b = InceptionE(1280, max_pool=False)
            self.Mixed_7c = InceptionE(2048, max_pool=True)
            self.fc = nn.Dense(FEATURES, NUM_CLASSES)

        def construct(self, x):
            if x.shape[2] != INPUT_SIZE or x.shape[3] != INPUT_SIZE:
                x = ops.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
            x = 2.0 * x - 1.0
            x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
            x = self.pool(x)
            x = self.pool(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
            x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
            x = self.Mixed_6a(x)
            x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
            x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
            feats = ops.mean(x, (2, 3))
            return feats, self.fc(feats)

    _CELL_CLASS = FIDInceptionV3
    return _CELL_CLASS


def build():
    """A FID Inception-v3 in eval mode with untrained weights; parameter names start with ``inception.``."""
    net = _cell_class()()
    net.update_parameters_name(PREFIX)
    net.set_train(False)
    return net


# ---------------------------------------------------------------------------- torch names


def torch_name(ms_name):
    """The torchvision/pytorch-fid state_dict key of a MindSpore parameter name."""
    name = ms_name[len(PREFIX):] if ms_name.startswith(PREFIX) else ms_name
    module, _, leaf = name.rpartition(".")
    if module.endswith(".bn") or module == "bn":
        leaf = {v: k for k, v in _BN_RENAMES.items()}[leaf]
    return f"{module}.{leaf}"


def expected_torch_shapes(net=None):
    """``{torch key: (shape, MindSpore name)}`` of every tensor the network needs."""
    net = net if net is not None else build()
    return {torch_name(p.name): (tuple(p.shape), p.name) for p in net.get_parameters()}


def _listing(names, limit=3):
    names = sorted(names)
    more = f" (and {len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def state_dict_to_params(state, source="state_dict", net=None):
    """Map a FID-Inception PyTorch state_dict to ``{MindSpore name: float32 array}``.

    Args:
        state: mapping of torch key -> tensor or array (``num_batches_tracked`` is skipped).
        source: how to name the input in errors.

    Raises:
        UserError: naming the first tensors that have no place in the network, that
        are missing, or whose shape differs.
    """
    expected = expected_torch_shapes(net)
    keys = [k for k in state if not str(k).endswith(_IGNORED_SUFFIX)]
    unmapped = [k for k in keys if k not in expected]
    if unmapped:
        raise UserError(f"{source}: cannot map tensor(s) {_listing(unmapped)} onto the FID Inception-v3 "
                        f"(expected the keys of {PTH_NAME})")
    missing = [k for k in expected if k not in state]
    if missing:
        raise UserError(f"{source}: missing tensor(s) {_listing(missing)} of the FID Inception-v3 "
                        f"({len(missing)} of {len(expected)} missing)")
    params = {}
    for key in keys:
        value = state[key]
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        shape, ms_name = expected[key]
        if tuple(value.shape) != shape:
            raise UserError(f"{source}: tensor {key} has shape {tuple(value.shape)}, the network needs {shape}")
        params[ms_name] = np.ascontiguousarray(value, dtype=np.float32)
    return params


def convert_torch_file(pth, out):
    """Convert a FID-Inception state_dict file (.pth) to a MindSpore checkpoint; returns (out, sha256 of out)."""
    from ms_gan.convert import _torch
    from ms_gan.checkpoint import file_sha256

    if not str(out).lower().endswith(".ckpt"):
        raise UserError(f"--out {out!r} must end in .ckpt")
    if not os.path.isfile(pth):
        raise UserError(f"--inception-weights {pth!r} does not exist; it should be {PTH_NAME}, the file "
                        f"pytorch-fid downloads on first use")
    torch = _torch()
    try:
        state = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"cannot read {pth} as a PyTorch state_dict ({first[:120]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{pth} holds a {type(state).__name__}, not a state_dict of tensors")
    params = state_dict_to_params(state, source=pth)
    meta = {"format": FORMAT, "name": NAME, "source_file": os.path.basename(pth),
            "source_sha256": file_sha256(pth)}
    return save_params(params, meta, out)


def save_params(params, meta, out):
    """Write ``{name: array}`` and its metadata as a MindSpore checkpoint (atomically); returns (out, sha256)."""
    import mindspore as ms

    from ms_gan.checkpoint import atomic_output, file_sha256

    entries = [{"name": name, "data": ms.Tensor(value)} for name, value in params.items()]
    with atomic_output(out, ".ckpt") as tmp:
        ms.save_checkpoint(entries, tmp, append_dict={_META_KEY: json.dumps(meta, sort_keys=True)}, crc_check=True)
    return out, file_sha256(out)


# ---------------------------------------------------------------------------- loading and features


def check_weights_path(path):
    """One-line errors for a missing or unconverted weights file, before any work."""
    if path is None:
        raise UserError(f"--extractor inception needs --inception-weights FILE: {WEIGHTS_HINT}")
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise UserError(f"--inception-weights {path!r} does not exist: {WEIGHTS_HINT}")
    if path.lower().endswith((".pth", ".pt")):
        raise UserError(f"--inception-weights {path} is a PyTorch file; convert it once with "
                        f"'ms-gan convert --inception-weights {path} --out {CKPT_NAME}' and pass the .ckpt")
    return path


class Inception:
    """A loaded FID Inception: the Cell, the checkpoint's path, sha256 and metadata."""

    def __init__(self, net, path=None, sha256=None, meta=None):
        self.net = net
        self.path = path
        self.sha256 = sha256
        self.meta = meta or {}

    def provenance(self):
        return {"name": NAME, "path": self.path and os.path.abspath(self.path), "sha256": self.sha256,
                "source_file": self.meta.get("source_file"), "source_sha256": self.meta.get("source_sha256"),
                "feature_dim": FEATURES, "feature_layer": "pool3 (2048)",
                "is_logits": "pool3 @ fc.weight^T without the bias (the original IS code, torch-fidelity's "
                             "logits_unbiased)"}

    def features(self, images_uint8, batch_size=16):
        """(pool3 (N, 2048) float64, unbiased logits (N, 1008) float64) of uint8 RGB images (N, 3, H, W)."""
        return extract(self.net, images_uint8, batch_size)


def load(path):
    """An :class:`Inception` from a checkpoint written by :func:`convert_torch_file`."""
    import mindspore as ms

    from ms_gan.checkpoint import file_sha256

    path = check_weights_path(path)
    try:
        params = ms.load_checkpoint(path, crc_check=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"--inception-weights {path} is corrupt or not a MindSpore checkpoint ({first[:120]})") \
            from None
    raw = params.pop(_META_KEY, None)
    meta = json.loads(raw if isinstance(raw, str) else str(raw)) if raw is not None else {}
    if meta.get("format") != FORMAT:
        raise UserError(f"--inception-weights {path} is not an ms_gan FID Inception checkpoint; "
                        f"make one with '{CONVERT_COMMAND}'")
    net = build()
    try:
        not_loaded, _ = ms.load_param_into_net(net, params, strict_load=True)
    except (RuntimeError, ValueError) as exc:  # a shape mismatch
        not_loaded = [(str(exc).strip().splitlines() or ["?"])[0][:160]]
    if not_loaded:
        raise UserError(f"--inception-weights {path} does not fit the FID Inception-v3 ({_listing(not_loaded)}); "
                        f"re-convert it with '{CONVERT_COMMAND}'")
    net.set_train(False)
    return Inception(net, path, file_sha256(path), meta)


def extract(net, images_uint8, batch_size=16):
    """Run the Cell on uint8 RGB images in batches; returns float64 (pool3, unbiased logits).

    Batches of 16 299x299 images keep the activations under ~0.5 GB (the largest,
    Conv2d_2b's output, is 16 x 64 x 147 x 147 floats: 88 MB; a whole ``ms-gan eval``
    of 64 + 64 images peaked at 1.1 GB RSS). The last batch is padded to the full size: graph mode compiles the
    network once per input shape (~13 s here), then runs ~25% faster than PyNative.
    """
    import mindspore as ms

    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise UserError(f"Inception features need uint8 RGB images (N, 3, H, W); got {images.dtype} {images.shape}")
    net.set_train(False)
    weight = net.fc.weight.asnumpy().astype(np.float64)
    batch_size = max(1, min(int(batch_size), len(images)))
    feats = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32) / np.float32(255.0)
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - real,) + batch.shape[1:], np.float32)])
        pool3, _ = net(ms.Tensor(np.ascontiguousarray(batch)))
        feats.append(pool3.asnumpy()[:real].astype(np.float64))
    feats = np.concatenate(feats) if feats else np.zeros((0, FEATURES))
    return feats, feats @ weight.T


def quantize_generated(images):
    """Generator outputs in [-1, 1] (N, C, H, W) -> uint8 RGB, as torch-fidelity's example does.

    ``uint8(255 * (clip(x, -1, 1) + 1) / 2)`` truncates (torch-fidelity's
    ``sngan_cifar10.py``: ``(255 * (x.clamp(-1, 1) * 0.5 + 0.5)).to(torch.uint8)``);
    one channel is replicated to three.
    """
    x = np.clip(np.asarray(images, dtype=np.float32), -1.0, 1.0)
    q = (np.float32(255.0) * (x * np.float32(0.5) + np.float32(0.5))).astype(np.uint8)
    return to_rgb(q)


def quantize_reference(images):
    """Real images in [-1, 1] (N, C, H, W) -> uint8 RGB, rounding to the nearest level.

    Rounding (not truncation) gives back the exact pixel values of 8-bit sources,
    whose [-1, 1] float32 copies sit a rounding error below or above each level.
    """
    x = np.clip(np.asarray(images, dtype=np.float64), -1.0, 1.0)
    return to_rgb(np.rint((x + 1.0) * 127.5).astype(np.uint8))


def to_rgb(images):
    """(N, 1 or 3, H, W) -> (N, 3, H, W): a gray channel is replicated."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise UserError(f"expected images (N, 1 or 3, H, W); got shape {images.shape}")
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images
