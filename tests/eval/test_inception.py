"""FID Inception-v3: parity with a PyTorch reference, the converter, FID/KID/IS formulas, the CLI.

The PyTorch network below is written here from the architecture of pytorch-fid's
``fid_inception_v3`` (torchvision's inception_v3 with FIDInceptionA/C/E_1/E_2),
with the same module names, so its state_dict has the keys of
``pt_inception-2015-12-05-6726825d.pth``. Random seeded weights; BatchNorm
statistics taken from a real forward pass, then perturbed, so every BN matters.
~60-80 s on 2 busy cores (Inception at 299x299 is ~0.2 s per image here).
"""
import json

import numpy as np
import pytest

import ms_gan  # noqa: F401

from ms_gan import presets
from ms_gan.errors import UserError
from ms_gan.eval import evaluate as E
from ms_gan.eval import inception, metrics
from ms_gan.models import build
from ms_gan import checkpoint
from tests.helpers import assert_user_error, run_cli

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional


# ---------------------------------------------------------------------------- PyTorch reference


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def tf_avg_pool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(tf_avg_pool(x))], 1)


class BlockB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))), d,
                          self.branch_pool(tf_avg_pool(x))], 1)


class BlockD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b = x
        for i in range(1, 5):
            b = getattr(self, f"branch7x7x3_{i}")(b)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    def __init__(self, cin, max_pool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a), self.branch3x3dbl_3a(d),
                          self.branch3x3dbl_3b(d), self.branch_pool(pooled)], 1)


class ReferenceFIDInception(nn.Module):
    """Images in [0, 1] -> (pool3, logits), like pytorch-fid's InceptionV3 on fid_inception_v3()."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = BlockA(192, 32), BlockA(256, 64), BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b, self.Mixed_6c = BlockC(768, 128), BlockC(768, 160)
        self.Mixed_6d, self.Mixed_6e = BlockC(768, 160), BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b, self.Mixed_7c = BlockE(1280, max_pool=False), BlockE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x):
        x = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
        x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        pool3 = x.mean(dim=(2, 3))
        return pool3, self.fc(pool3)


def _images(n, size, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


# Inputs of the parity test: resized (bilinear, align_corners=False) from 32x32, and native 299x299.
PARITY_IMAGES = {32: _images(2, 32, 34), 299: _images(2, 299, 301)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(torch net in eval mode, path of its state_dict .pth, converted .ckpt path)."""
    torch.manual_seed(0)
    net = ReferenceFIDInception()
    # Random BN affine terms first, then the running statistics of the parity inputs themselves
    # (one train-mode pass with momentum 1), then mildly perturbed: every BN tensor matters, yet
    # the activations stay O(1) through 94 layers. A random BN+ReLU stack is chaotic: with betas
    # around 0, float32 round-off doubled every Mixed block (PyTorch float32 vs float64: 1.6e-4 on
    # pool3); betas around 0.6 (ReLU still zeroes ~27% of the units) keep it at ~3e-5.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 1.0
                m.weight.uniform_(0.6, 1.4)
                m.bias.normal_(0.6, 0.3)
        net.train()
        batch = [F.interpolate(torch.from_numpy(x).float() / 255, size=(299, 299), mode="bilinear",
                               align_corners=False) for x in PARITY_IMAGES.values()]
        net(torch.cat(batch))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean += 0.05 * torch.randn_like(m.running_mean) * m.running_var.sqrt()
                m.running_var *= torch.empty_like(m.running_var).uniform_(0.85, 1.2)
    net.eval()
    folder = tmp_path_factory.mktemp("inception")
    pth = str(folder / inception.PTH_NAME)
    torch.save(net.state_dict(), pth)
    ckpt = str(folder / "inception_fid.ckpt")
    converted = run_cli("convert", "--inception-weights", pth, "--out", ckpt)  # as a user would
    assert converted.returncode == 0, converted.stderr
    assert checkpoint.file_sha256(ckpt) in converted.stdout
    return net, pth, ckpt


def test_state_dict_has_the_keys_of_the_pytorch_fid_file(reference):
    net, _, _ = reference
    keys = set(net.state_dict())
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_mean", "Conv2d_1a_3x3.bn.running_var",
                "Mixed_5b.branch1x1.conv.weight", "Mixed_6e.branch7x7dbl_5.bn.bias",
                "Mixed_7c.branch3x3dbl_3b.bn.weight", "fc.weight", "fc.bias"):
        assert key in keys
    needed = inception.expected_torch_shapes()
    # Every tensor except BN's num_batches_tracked counters has its place, with the same shape.
    assert set(needed) == {k for k in keys if not k.endswith("num_batches_tracked")}
    assert all(needed[k][0] == tuple(v.shape) for k, v in net.state_dict().items() if k in needed)
    assert len(needed) == 94 * 5 + 2


@pytest.mark.slow
def test_mindspore_outputs_match_the_pytorch_reference(reference):
    net, _, ckpt = reference
    loaded = inception.load(ckpt)
    import mindspore as ms

    for images in PARITY_IMAGES.values():
        x = images.astype(np.float32) / 255
        with torch.no_grad():
            want_pool3, want_logits = (t.numpy() for t in net(torch.from_numpy(x)))
        got_pool3, got_logits = (t.asnumpy() for t in loaded.net(ms.Tensor(x)))
        assert want_pool3.std() > 0.1 and want_logits.std() > 0.1  # non-degenerate activations
        np.testing.assert_allclose(got_pool3, want_pool3, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got_logits, want_logits, rtol=0, atol=1e-4)
        feats, unbiased = loaded.features(images, batch_size=2)
        np.testing.assert_allclose(feats, want_pool3, rtol=0, atol=1e-4)
        weight = net.fc.weight.detach().double().numpy()
        np.testing.assert_allclose(unbiased, want_pool3.astype(np.float64) @ weight.T, rtol=0, atol=1e-4)


def test_converter_names_unmapped_missing_and_misshapen_tensors(reference):
    net, _, _ = reference
    state = dict(net.state_dict())
    extra = dict(state, **{"AuxLogits.fc.weight": torch.zeros(1008, 768)})
    with pytest.raises(UserError, match=r"cannot map tensor\(s\) AuxLogits.fc.weight"):
        inception.state_dict_to_params(extra)
    missing = {k: v for k, v in state.items() if k != "Mixed_6c.branch_pool.bn.running_var"}
    with pytest.raises(UserError, match=r"missing tensor\(s\) Mixed_6c.branch_pool.bn.running_var"):
        inception.state_dict_to_params(missing)
    wrong = dict(state, **{"fc.bias": torch.zeros(1000)})
    with pytest.raises(UserError, match=r"fc.bias has shape \(1000,\)"):
        inception.state_dict_to_params(wrong)
    torchvision_like = {k.replace("Mixed_", "mixed"): v for k, v in state.items()}
    with pytest.raises(UserError, match="and .* more"):
        inception.state_dict_to_params(torchvision_like)


def test_load_refuses_checkpoints_that_do_not_fit(reference, tmp_path):
    net, pth, _ = reference
    params = inception.state_dict_to_params(net.state_dict())
    meta = {"format": inception.FORMAT}
    del params["inception.Mixed_7a.branch3x3_2.bn.moving_variance"]
    short, _ = inception.save_params(params, meta, str(tmp_path / "short.ckpt"))
    with pytest.raises(UserError, match="Mixed_7a.branch3x3_2.bn.moving_variance"):
        inception.load(short)
    with pytest.raises(UserError, match="not an ms_gan FID Inception checkpoint"):
        inception.load(inception.save_params({"x": np.zeros(2, np.float32)}, {}, str(tmp_path / "other.ckpt"))[0])
    with pytest.raises(UserError, match="is a PyTorch file; convert it"):
        inception.check_weights_path(pth)


# ---------------------------------------------------------------------------- formulas in float64


def test_fid_kid_is_match_direct_float64_formulas():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 12)) @ rng.standard_normal((12, 12))
    b = rng.standard_normal((50, 12)) * 1.5 + 0.3
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert metrics.frechet_feature_distance(a, b) == pytest.approx(want, rel=1e-9)

    # KID: one subset of all rows = the plain unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3.
    def k(x, y):
        return (x @ y / x.size + 1) ** 3

    m = 40
    x, y = a[:m], b[:m]
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    mean, std = metrics.kid(x, y, num_subsets=3, subset_size=m, seed=1)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)

    logits = rng.standard_normal((30, 7)) * 3
    scores = []
    for part in np.split(logits, 3):
        p = np.exp(part) / np.exp(part).sum(1, keepdims=True)
        py = p.mean(0)
        scores.append(np.exp(np.mean([np.sum(pi * (np.log(pi) - np.log(py))) for pi in p])))
    got = metrics.inception_score(logits, splits=3)
    assert got[0] == pytest.approx(np.mean(scores), rel=1e-9) and got[1] == pytest.approx(np.std(scores), rel=1e-9)
    assert metrics.inception_score(np.zeros((8, 5)), splits=2)[0] == pytest.approx(1.0)


def test_quantization_follows_torch_fidelity():
    x = np.array([-1.5, -1.0, -0.999, 0.0, 0.5, 1.0], np.float32).reshape(1, 1, 1, 6)
    q = inception.quantize_generated(x)
    assert q.shape == (1, 3, 1, 6) and q.dtype == np.uint8
    want = (255 * (torch.from_numpy(x).clamp(-1, 1) * 0.5 + 0.5)).to(torch.uint8).numpy()
    assert np.array_equal(q[:, :1], want) and np.array_equal(q[:, 0], q[:, 2])
    levels = np.arange(256, dtype=np.float64)
    real = (levels / 255.0 * 2.0 - 1.0).astype(np.float32).reshape(1, 1, 16, 16)
    assert np.array_equal(inception.quantize_reference(real)[0, 1].ravel(), levels.astype(np.uint8))


# ---------------------------------------------------------------------------- CLI


def test_eval_without_weights_says_which_file_in_one_line(tmp_path):
    result = run_cli("eval", "--ckpt", str(tmp_path / "none.ckpt"), "--extractor", "inception")
    assert_user_error(result, inception.PTH_NAME, "ms-gan convert --inception-weights", "pytorch-fid")
    result = run_cli("eval", "--ckpt", str(tmp_path / "none.ckpt"), "--extractor", "inception",
                     "--inception-weights", str(tmp_path / "inception_fid.ckpt"))
    assert_user_error(result, "does not exist", inception.PTH_NAME)
    result = run_cli("convert", "--inception-weights", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "o.ckpt"))
    assert_user_error(result, "does not exist", inception.PTH_NAME)
    result = run_cli("eval", "--ckpt", str(tmp_path / "none.ckpt"), "--inception-weights", "x.ckpt")
    assert_user_error(result, "--inception-weights needs --extractor inception")


@pytest.mark.slow
def test_convert_and_eval_cli_end_to_end_record_the_protocol(reference, tmp_path):
    _, pth, out = reference

    preset = presets.get("dcgan_digits8")
    G, D = build(preset, seed=0)
    gen = str(tmp_path / "g.ckpt")
    checkpoint.save(gen, [G, D], {"preset": preset.name, "overrides": {}, "epoch": 0, "batch_in_epoch": 0,
                                  "step": 0, "seed": 0, "rng": None, "world": 1})
    data = str(tmp_path / "ref.npz")
    np.savez(data, images=np.random.default_rng(3).integers(0, 17, (6, 8, 8)).astype(np.uint8) * 15)
    report_path = tmp_path / "metrics.json"
    result = run_cli("eval", "--ckpt", gen, "--data", data, "--n", "5", "--extractor", "inception",
                     "--inception-weights", str(out), "--seed", "3", "--out", str(report_path))
    assert result.returncode == 0, result.stderr
    assert "fid" in result.stdout and "inception_score" in result.stdout
    report = json.loads(report_path.read_text())
    digest = checkpoint.file_sha256(str(out))
    assert report["extractor"]["sha256"] == digest
    assert report["extractor"]["source_sha256"] == checkpoint.file_sha256(pth)
    records = report["results"]
    assert {(r["metric"], r["comparison"]) for r in records} == {
        (m, c) for m in ("fid", "kid", "inception_score") for c in ("generated_vs_reference", "real_vs_real")}
    for r in records:
        p = r["protocol"]
        assert p["weights_sha256"] == digest and p["input_size"] == 299 and "bilinear" in p["resize"]
        assert "replicated" in p["gray_to_rgb"] and "torch-fidelity" in p["generated_quantization"]
        assert p["seed"] == 3 and p["n_generated"] == r["n_generated"] and p["n_reference"] == r["n_reference"]
    gen_records = {r["metric"]: r for r in records if r["comparison"] == "generated_vs_reference"}
    assert gen_records["fid"]["n_generated"] == 5 and gen_records["fid"]["n_reference"] == 6
    assert gen_records["kid"]["protocol"]["kid"]["subset_size"] == 5
    assert gen_records["inception_score"]["protocol"]["is_splits"] == 5
    assert report["protocol"]["reference_split"] == "all"

    # The recorded IS is the formula applied to the features this network gives the generated images.
    net = inception.load(str(out))
    loaded_g, _, _, _ = E.load_source(gen, None, with_d=False)
    _, logits = net.features(inception.quantize_generated(E.generate_images(loaded_g, preset, 5, 3)), batch_size=5)
    assert gen_records["inception_score"]["value"] == pytest.approx(metrics.inception_score(logits, 5)[0], rel=1e-5)
    assert gen_records["fid"]["value"] > report["baseline"]["fid"]  # an untrained G is further than real halves
