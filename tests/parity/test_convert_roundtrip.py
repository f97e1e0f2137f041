"""The converter: PyTorch -> ms_gan checkpoint -> PyTorch bit for bit, the seed articles' naming,
G-only / D-only files, and one-line errors that name the offending tensor."""
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindspore as ms  # noqa: E402

from ms_gan import convert, presets  # noqa: E402
from ms_gan.errors import UserError  # noqa: E402
from ms_gan import checkpoint as ckpt_io  # noqa: E402
from ms_gan.reference import harness as h  # noqa: E402


def _with_counts(sd):
    # num_batches_tracked is not a MindSpore Parameter: the converter keeps it in the meta.
    for k in sd:
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1234 + len(k), dtype=torch.int64)
    return sd


@pytest.mark.parametrize("name", presets.names())
def test_round_trip_bit_for_bit(name, tmp_path):
    p = presets.get(name)
    tG, tD = h.torch_pair(p, seed=21)
    sd = {"G": _with_counts(tG.state_dict()), "D": _with_counts(tD.state_dict())}
    torch.save(sd, tmp_path / "w.pt")
    convert.torch_file_to_checkpoint(str(tmp_path / "c.ckpt"), name, path=str(tmp_path / "w.pt"))
    params, meta = ckpt_io.load(str(tmp_path / "c.ckpt"))
    assert meta["preset"] == name and meta["step"] == 0 and meta["overrides"] == {}
    back = convert.checkpoint_to_torch(str(tmp_path / "c.ckpt"), out=str(tmp_path / "back.pt"))
    again = torch.load(tmp_path / "back.pt", weights_only=True)
    for role in ("G", "D"):
        assert list(again[role]) == list(sd[role]), f"{role}: keys or their order differ"
        for k, v in sd[role].items():
            assert again[role][k].dtype == v.dtype and torch.equal(again[role][k], v), f"{role} {k}"
        assert back[role].keys() == sd[role].keys()
    # Spectral norm's sigma (MindSpore-only) is filled with u^T W v.
    for pname, value in params.items():
        if pname.endswith(".sigma"):
            base = pname[:-len(".sigma")].split(".", 1)[1]
            w = sd["D" if pname.startswith("discriminator") else "G"][base + ".weight_orig"]
            dim = 1 if pname.startswith("generator") else 0  # G: ConvTranspose (in, out, k, k)
            mat = w.movedim(dim, 0).reshape(w.shape[dim], -1).double()
            u = sd["D" if pname.startswith("discriminator") else "G"][base + ".weight_u"].double()
            v = sd["D" if pname.startswith("discriminator") else "G"][base + ".weight_v"].double()
            assert abs(float(value.asnumpy()[0]) - float(u @ mat @ v)) < 1e-4 * abs(float(u @ mat @ v)) + 1e-6


# Our names -> the seed articles' PyTorch module names, written out by hand (seed 004: nn.Sequential
# stages layer1..layer4 and last, D's last conv bare, "self_attntion" as the article spells it; seed 000:
# convt_1.. / conv_1..).
_SEED004 = {"G": {"convt1.": "layer1.0.", "bn1.": "layer1.1.", "convt2.": "layer2.0.", "bn2.": "layer2.1.",
                  "convt3.": "layer3.0.", "bn3.": "layer3.1.", "convt4.": "layer4.0.", "bn4.": "layer4.1.",
                  "convt5.": "last.0.", "attn16.": "self_attntion1.", "attn32.": "self_attntion2."},
            "D": {"conv1.": "layer1.0.", "conv2.": "layer2.0.", "conv3.": "layer3.0.", "conv4.": "layer4.0.",
                  "conv5.": "last.", "attn8.": "self_attntion1.", "attn4.": "self_attntion2."}}
_SEED000 = {"G": {"convt1.": "convt_1.", "convt2.": "convt_2.", "convt3.": "convt_3."},
            "D": {"conv1.": "conv_1.", "conv2.": "conv_2.", "conv3.": "conv_3."}}


def _article(sd, name, role):
    """Rename reference keys to the seed articles' module names."""
    table = (_SEED004 if name in ("dcgan64", "sagan64") else _SEED000)[role]
    out = {}
    for k, v in sd.items():
        owner = k.split(".", 1)[0] + "."
        out[table[owner] + k[len(owner):]] = v
    return out


@pytest.mark.parametrize("name,expected", [
    ("sagan64", {"G": ["layer1.0.weight_orig", "layer1.0.weight_u", "layer1.1.running_var", "last.0.weight",
                       "self_attntion1.query_conv.weight", "self_attntion2.gamma"],
                 "D": ["layer4.0.weight_v", "self_attntion2.value_conv.bias", "last.weight", "last.bias"]}),
    ("dcgan64", {"G": ["layer1.0.weight", "layer4.1.num_batches_tracked", "last.0.bias"],
                 "D": ["layer1.0.weight", "last.weight"]}),
    ("dcgan_digits8", {"G": ["convt_1.weight", "convt_3.bias"], "D": ["conv_1.weight", "conv_3.bias"]}),
])
def test_article_naming_both_ways(name, expected, tmp_path):
    p = presets.get(name)
    tG, tD = h.torch_pair(p, seed=5)
    art = {"G": _article(tG.state_dict(), name, "G"), "D": _article(tD.state_dict(), name, "D")}
    for role, keys in expected.items():
        assert set(keys) <= set(art[role]), sorted(art[role])[:8]
    # The article's own files: G and D saved separately, flat.
    torch.save(art["G"], tmp_path / "G.pt")
    torch.save(art["D"], tmp_path / "D.pt")
    _, info = convert.torch_file_to_checkpoint(str(tmp_path / "c.ckpt"), name, g_path=str(tmp_path / "G.pt"),
                                               d_path=str(tmp_path / "D.pt"))
    assert info["naming"] == {"G": "article", "D": "article"}
    back = convert.checkpoint_to_torch(str(tmp_path / "c.ckpt"), naming="article")
    for role in ("G", "D"):
        assert set(back[role]) == set(art[role])
        for k, v in art[role].items():
            if not k.endswith("num_batches_tracked"):
                assert torch.equal(back[role][k], v), k


def test_flat_file_is_recognised_as_d_and_g_only_works(tmp_path):
    p = presets.get("dcgan_mnist28")
    tG, tD = h.torch_pair(p, seed=2)
    torch.save(tD.state_dict(), tmp_path / "d.pt")
    _, info = convert.torch_file_to_checkpoint(str(tmp_path / "d.ckpt"), "dcgan_mnist28", path=str(tmp_path / "d.pt"))
    assert info["roles"] == ["D"]
    params, _ = ckpt_io.load(str(tmp_path / "d.ckpt"))
    assert all(k.startswith("discriminator.") for k in params)
    torch.save({"generator": tG.state_dict()}, tmp_path / "g.pt")
    _, info = convert.torch_file_to_checkpoint(str(tmp_path / "g.ckpt"), "dcgan_mnist28", path=str(tmp_path / "g.pt"))
    assert info["roles"] == ["G"]
    from ms_gan.generate import load_generator

    preset, G, meta = load_generator(str(tmp_path / "g.ckpt"))
    z = np.random.default_rng(0).uniform(-1, 1, (3, p.z_dim)).astype(np.float32)
    tG.eval()
    with torch.no_grad():
        ref = tG(torch.from_numpy(z)).numpy()
    assert np.abs(G(ms.Tensor(z)).asnumpy() - ref).max() < 1e-5
    assert meta["converted_from"].endswith("g.pt")


def _sd(name, role="G"):
    p = presets.get(name)
    tG, tD = h.torch_pair(p, seed=1)
    return dict((tG if role == "G" else tD).state_dict())


def test_errors_name_the_first_bad_tensor(tmp_path):
    p = presets.get("dcgan64")
    sd = _sd("dcgan64")
    bad = dict(sd)
    bad["convt2.weight"] = torch.zeros(512, 256, 3, 3)
    with pytest.raises(UserError, match=r"'convt2\.weight'.*\(512, 256, 3, 3\).*\(512, 256, 4, 4\)"):
        convert.torch_to_ms(p, g_state=bad)
    extra = dict(sd, **{"body.extra.weight": torch.zeros(3)})
    with pytest.raises(UserError, match=r"'body\.extra\.weight'.*no counterpart"):
        convert.torch_to_ms(p, g_state=extra)
    missing = {k: v for k, v in sd.items() if k != "bn3.running_var"}
    with pytest.raises(UserError, match=r"'bn3\.running_var'.*missing"):
        convert.torch_to_ms(p, g_state=missing)
    # a DCGAN G is not a SAGAN G: spectral norm tensors are missing
    with pytest.raises(UserError, match="sagan64"):
        convert.torch_to_ms(presets.get("sagan64"), flat_state=sd)
    for err in (UserError,):
        try:
            convert.torch_to_ms(p, g_state=bad)
        except err as exc:
            assert "\n" not in str(exc)


def test_file_errors(tmp_path):
    p = presets.get("dcgan_digits8")
    tG, _ = h.torch_pair(p)
    torch.save(tG, tmp_path / "module.pt")  # a pickled model object, not a state_dict
    with pytest.raises(UserError, match="state_dict"):
        convert.torch_file_to_checkpoint(str(tmp_path / "x.ckpt"), "dcgan_digits8", path=str(tmp_path / "module.pt"))
    with pytest.raises(UserError, match="does not exist"):
        convert.torch_file_to_checkpoint(str(tmp_path / "x.ckpt"), "dcgan_digits8", path=str(tmp_path / "no.pt"))
    torch.save({"optimizer": {"lr": 1}}, tmp_path / "odd.pt")
    with pytest.raises(UserError, match="no state_dict"):
        convert.torch_file_to_checkpoint(str(tmp_path / "x.ckpt"), "dcgan_digits8", path=str(tmp_path / "odd.pt"))


def test_without_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UserError, match=r"pip install torch==2\.13\.0"):
        convert._torch()
