"""``ms-gan convert`` end to end: a PyTorch G file -> checkpoint -> ``ms-gan sample`` (and ``export``)
gives the PyTorch G's images; ``--to-torch`` writes loadable state_dicts; mistakes are one line."""
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ms_gan import cli, presets  # noqa: E402
from ms_gan.generate import noise  # noqa: E402
from ms_gan.reference import harness as h  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "ms_gan", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_convert_then_sample_and_export(tmp_path, capsys):
    p = presets.get("sagan64")
    tG, tD = h.torch_pair(p, seed=9)
    torch.save({"G": tG.state_dict()}, tmp_path / "g.pt")  # G alone is enough to sample
    ckpt = str(tmp_path / "g.ckpt")
    assert cli.main(["convert", "--from-torch", str(tmp_path / "g.pt"), "--preset", "sagan64", "--out", ckpt]) == 0
    assert "G (reference naming)" in capsys.readouterr().out

    res = _run("sample", "--ckpt", ckpt, "--n", "3", "--seed", "4", "--out", str(tmp_path / "s.npy"))
    assert res.returncode == 0, res.stderr
    images = np.load(tmp_path / "s.npy")
    tG.eval()
    with torch.no_grad():
        ref = tG(torch.from_numpy(noise(p, 3, 4)))[0].numpy()
    assert images.shape == (3, 1, 64, 64)
    assert np.abs(images - ref).max() < 1e-5

    try:
        import ms_gan.export  # noqa: F401
    except ModuleNotFoundError:
        return
    res = _run("export", "--ckpt", ckpt, "--out", str(tmp_path / "g.mindir"))
    assert res.returncode == 0, res.stderr
    assert os.path.getsize(tmp_path / "g.mindir") > 0


def test_to_torch_and_back(tmp_path, capsys):
    p = presets.get("dcgan_digits8")
    tG, tD = h.torch_pair(p, seed=3)
    torch.save(tG.state_dict(), tmp_path / "G.pt")
    torch.save(tD.state_dict(), tmp_path / "D.pt")
    ckpt = str(tmp_path / "c.ckpt")
    assert cli.main(["convert", "--g", str(tmp_path / "G.pt"), "--d", str(tmp_path / "D.pt"),
                     "--preset", "dcgan_digits8", "--out", ckpt]) == 0
    assert cli.main(["convert", "--to-torch", ckpt, "--g", str(tmp_path / "G2.pt"), "--naming", "article",
                     "--out", str(tmp_path / "both.pt")]) == 0
    g2 = torch.load(tmp_path / "G2.pt", weights_only=True)
    assert sorted(g2) == ["convt_1.bias", "convt_1.weight", "convt_2.bias", "convt_2.weight", "convt_3.bias",
                          "convt_3.weight"]
    both = torch.load(tmp_path / "both.pt", weights_only=True)
    assert set(both) == {"G", "D"} and torch.equal(both["D"]["conv_2.weight"], tD.state_dict()["conv2.weight"])
    out = capsys.readouterr().out
    assert f"wrote G 6 tensors, D 6 tensors to {tmp_path / 'both.pt'}; G 6 tensors to {tmp_path / 'G2.pt'} " \
           f"(article naming)" in out


@pytest.mark.parametrize("argv,message", [
    (["convert", "--from-torch", "nope.pt", "--preset", "dcgan64", "--out", "x.ckpt"], "does not exist"),
    (["convert", "--from-torch", "a.pt", "--out", "x.ckpt"], "--preset is required"),
    (["convert", "--preset", "dcgan64", "--out", "x.ckpt"], "nothing to convert"),
    (["convert", "--from-torch", "a.pt", "--preset", "nosuch", "--out", "x.ckpt"], "unknown preset"),
    (["convert", "--to-torch", "x.ckpt"], "--out FILE.pt"),
    (["convert", "--to-torch", "missing.ckpt", "--out", "y.pt"], "does not exist"),
])
def test_one_line_errors(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.pt").write_bytes(b"")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_convert_mismatch_exit_code(tmp_path):
    sd = h.torch_pair(presets.get("dcgan64"), seed=1)[0].state_dict()
    sd["bn1.weight"] = torch.ones(7)
    torch.save(sd, tmp_path / "bad.pt")
    res = _run("convert", "--from-torch", str(tmp_path / "bad.pt"), "--preset", "dcgan64", "--out",
               str(tmp_path / "x.ckpt"))
    assert res.returncode == 2
    assert res.stderr.startswith("ms-gan: error:") and "bn1.weight" in res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "x.ckpt").exists()
