"""One training iteration (and 50 for dcgan_digits8) in PyTorch and in MindSpore from identical
weights, batch and noise: losses and every parameter and buffer must agree."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ms_gan import presets  # noqa: E402
from ms_gan.reference import harness as h  # noqa: E402
from ms_gan.reference import torch_models as tm  # noqa: E402

TOL = 1e-4
BATCH = {"dcgan128_rgb": 4, "sagan64": 2, "dcgan64": 4}  # dcgan128_rgb: real half-batch 2, G batch 4
# dcgan128_rgb's G gradient is ill-conditioned in float32: from identical weights, torch float32 itself
# is 0.16% (conv 1.2) to 0.3% (stem) away from a float64 reference, MindSpore 0.46% / 0.9% (its training
# BatchNorm statistics are less precise, see test_forward_parity). Adam's first step is ~lr * sign(g),
# so the elements whose gradient is below that noise (~0.05% of G's 13.4M) move by up to 2 * lr apart.
# For it the test checks that count and Adam's bound instead of 1e-4 on every element.
SIGN_NOISE = {"dcgan128_rgb": 1e-3}


def _run_one(name, use_jit=True):
    p = h.parity_preset(presets.get(name))
    tG, tD = h.torch_pair(p, seed=3)
    G, D = h.ms_pair(p, tG, tD)
    steps, _, _ = h.ms_training(p, G, D, use_jit=use_jit)
    rec = tm.Recipe(p, tG, tD)
    real, zs = h.batch(p, BATCH.get(name, 8) // p.real_batch_div, seed=4)
    classes = h.class_plan(p, len(real), seed=4) if p.num_classes else None
    t_losses = rec.iteration(torch.from_numpy(real), zs, classes)
    m_losses = h.ms_iteration(p, steps, real, zs, classes)
    return p, (tG, tD, rec), (G, D), t_losses, m_losses


def _float64_losses(name):
    """The iteration's losses from the torch reference in float64 (weights, batch and noise as _run_one)."""
    p = h.parity_preset(presets.get(name))
    tG, tD = h.torch_pair(p, seed=3)
    real, zs = h.batch(p, BATCH.get(name, 8) // p.real_batch_div, seed=4)
    classes = h.class_plan(p, len(real), seed=4) if p.num_classes else None
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rec = tm.Recipe(p, tG.double(), tD.double())
        return rec.iteration(torch.from_numpy(real).double(), [np.asarray(z, np.float64) for z in zs], classes)
    finally:
        torch.set_default_dtype(default)


@pytest.mark.parametrize("name", presets.names())
def test_one_iteration_parity(name):
    p, (tG, tD, rec), (G, D), t_losses, m_losses = _run_one(name)
    assert [t[0] for t in t_losses] == [m[0] for m in m_losses] == list(p.steps)
    exact = None
    for i, (t, m) in enumerate(zip(t_losses, m_losses)):
        if np.allclose(m[1:], t[1:], rtol=1e-5, atol=1e-6):
            continue
        # Losses after an Adam update inherit Adam's sign noise (first step ~ lr * sign(g)): judge
        # them against the same iteration in float64, where MindSpore must be within 1e-5 or at
        # least as close as PyTorch float32 is (sagan64's G loss: torch 1.8e-5 away, ours 6e-7).
        exact = exact or _float64_losses(name)
        e = np.asarray(exact[i][1:])
        bound = np.maximum(1e-5 * np.abs(e) + 1e-6, np.abs(np.asarray(t[1:]) - e))
        assert np.all(np.abs(np.asarray(m[1:]) - e) <= bound), f"{name} {t[0]} losses: ms {m}, torch {t}, float64 {e}"
    g = h.update_diff(p, G, "G", tG, rec.opt_g)
    d = h.update_diff(p, D, "D", tD, rec.opt_d)
    print(f"PARITY step {name}: G max {g['max']:.2e} ({g['where']}) conditioned {g['max_conditioned']:.2e} "
          f"over1e-4 {g['n_over']} ill {g['n_ill']}/{g['n']} <= {g['ill_max']:.2e} | D max {d['max']:.2e} ({d['where']}) conditioned "
          f"{d['max_conditioned']:.2e} over1e-4 {d['n_over']} ill {d['n_ill']}/{d['n']} <= {d['ill_max']:.2e}")
    for role, r, lr in (("G", g, p.lr_g), ("D", d, p.lr_d)):
        if name in SIGN_NOISE:
            assert r["n_over"] <= SIGN_NOISE[name] * r["n"], f"{role}: {r}"
            assert r["max"] <= 2 * lr * p.d_updates + 1e-6, f"{role}: {r}"
            continue
        assert r["max_conditioned"] < TOL, f"{role}: {r}"
        # Near-zero-gradient elements (see update_diff): few, and never more than Adam's 2*lr per update.
        assert r["n_ill"] <= 1e-3 * r["n"], f"{role}: {r}"
        assert r["ill_max"] <= 2 * lr * p.d_updates + 1e-6, f"{role}: {r}"


def test_one_iteration_parity_pynative():
    """The same iteration with the step functions run eagerly (no mindspore.jit)."""
    p, (tG, tD, rec), (G, D), t_losses, m_losses = _run_one("dcgan_mnist28", use_jit=False)
    for t, m in zip(t_losses, m_losses):
        np.testing.assert_allclose(m[1:], t[1:], rtol=1e-5, atol=1e-6)
    assert h.update_diff(p, G, "G", tG, rec.opt_g)["max"] < TOL
    assert h.update_diff(p, D, "D", tD, rec.opt_d)["max"] < TOL


def test_digits8_fifty_iterations_track():
    """dcgan_digits8, 50 iterations from identical weights, data order and noise: every loss within 1%."""
    p = presets.get("dcgan_digits8")
    tG, tD = tm.build(p)
    torch.manual_seed(0)
    G, D = h.ms_pair(p, tG, tD)  # torch's default init, as the article's code starts
    steps, _, _ = h.ms_training(p, G, D)
    rec = tm.Recipe(p, tG, tD)
    images = _digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    worst = 0.0
    for it in range(50):
        real = images[order[(it * p.batch_size) % len(images):][:p.batch_size]]
        zs = tm.noise_plan(p, len(real), rng)
        t_losses = rec.iteration(torch.from_numpy(real), zs)
        m_losses = h.ms_iteration(p, steps, real, zs)
        for t, m in zip(t_losses, m_losses):
            rel = abs(m[1] - t[1]) / max(abs(t[1]), 1e-6)
            worst = max(worst, rel)
            assert rel < 0.01, f"iteration {it} {t[0]}: torch {t[1]} ms {m[1]}"
    print(f"PARITY digits8 50 iterations: largest relative loss difference {worst:.2e}")


def _digits():
    from ms_gan.data import ImageSpec, load_images

    x, _ = load_images("builtin", ImageSpec(8, 1))
    return np.ascontiguousarray(x, dtype=np.float32)
