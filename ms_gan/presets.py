"""The registry of presets: every number of every recipe, in one frozen config each.

A preset names its networks (an architecture ``family`` of :mod:`ms_gan.models`, with
keyword options for its G and D classes), losses, optimizer
settings, data handling and its *step order*: the sequence of updates one training
iteration makes. The trainer reads only these fields; it knows nothing of any one
model. ``--flag`` overrides go through :func:`override`.

Step order tokens (see :mod:`ms_gan.train.steps`):

* ``"d"``: one D update on the real batch and a fake batch together (loss = real + fake terms).
* ``"d_real"`` / ``"d_fake"``: a D update on the real batch only / on a fake batch only.
* ``"g"``: a G update on ``g_batch_mult`` x batch of noise, D frozen.

Per-update batch sizes: the real batch is ``batch_size // real_batch_div`` images (2 for
the Keras recipe's half batches), a fake batch has the same size, the G batch is
``g_batch_mult`` times it.
"""
import dataclasses
from dataclasses import dataclass, field

from ms_gan.errors import UserError


@dataclass(frozen=True)
class Preset:
    """One recipe. Field comments say where a number comes from."""

    name: str
    summary: str
    source: str                      # the article it reproduces
    fixes: str                       # the article's bugs this preset fixes
    family: str                      # architecture in ms_gan.models: mlp, dcgan_digits8, dcgan_mnist28, dcgan64,
                                     # dcgan128_rgb (one G and one D class each, docs/recipes.md)
    image_size: int
    channels: int
    z_dim: int
    noise: str                       # "normal" N(0,1) or "uniform" U(-1,1)
    init: str                        # ms_gan.nn.init scheme
    loss: str                        # "bce" (D ends in sigmoid), "bce_logits", "hinge"
    steps: tuple                     # step order, see module docstring
    batch_size: int
    epochs: int
    lr_g: float
    lr_d: float
    beta1_g: float = 0.9
    beta2_g: float = 0.999
    beta1_d: float = 0.9
    beta2_d: float = 0.999
    adam_eps: float = 1e-8
    adam_eps_mode: str = "torch"     # where eps sits: "torch" (PyTorch) or "tf" (TF/Keras/MindSpore)
    g_batch_mult: int = 1
    real_batch_div: int = 1
    sampling: str = "shuffle"        # "shuffle" (epochs) or "replacement" (Keras recipe's randint)
    drop_remainder: bool = True
    fake_for_d_eval_mode: bool = False  # G in inference mode when it makes D's fakes (Keras predict, TF recipe)
    d_l2_coef: float = 0.0           # coef * sum(||W||^2 / 2) over d_l2_params, added to every D loss
    d_l2_params: tuple = ()
    sn_iterations: int = 1           # spectral norm's power iterations per forward (families with spectral=True)
    g_options: dict = field(default_factory=dict)   # keyword arguments of the family's G class
    d_options: dict = field(default_factory=dict)   # ... and of its D class (e.g. spectral, attention_at)
    # outputs
    grid_rows: int = 8
    grid_cols: int = 8
    grid_gap: int = 2
    sample_images: int = 0           # extra single sample images written every sample_images_every epochs
    sample_images_every: int = 2
    attention_every: int = 1
    param_prefixes: tuple = ("generator", "discriminator")
    # CPU kernel threads in graph mode when --threads is not given: 0 = every core this process
    # may use. The small models run faster on one core (hundreds of short kernels per iteration,
    # each a cross-core hand-off with two threads; bench/NOTES.md); the conv presets need both,
    # and so does PyNative (its queue threads work beside the Python thread).
    cpu_threads: int = 0
    ema: float = 0.0                 # default EMA decay of G's weights (train --ema overrides; 0: no EMA)
    notes: tuple = field(default_factory=tuple)
    # training objective beyond the article (ms_gan.train.objective); the defaults are the article's
    gp: float = 0.0                  # WGAN-GP weight lambda
    r1: float = 0.0                  # R1 weight gamma
    r1_every: int = 1                # lazy R1: every k iterations, with gain k
    n_critic: int = 1                # D updates per G update
    diffaugment: str = ""            # DiffAugment policies, e.g. "color,translation,cutout"
    # class-conditional model (ms_gan.nn.conditional): G takes a class, D is a projection discriminator
    conditional: bool = False
    num_classes: int = 0             # set from the training data's labels (train --conditional records it)
    # mode seeking (MSGAN, Mao et al. 2019) weight lambda: G's batch is pairs (z1, y), (z2, y) and G's loss
    # gains lambda / (mean|G(z1,y) - G(z2,y)| / mean|z1 - z2| + 1e-5) (ms_gan.train.steps); 0: off
    mode_seeking: float = 0.0

    @property
    def d_output(self):
        """'prob' when D ends in a sigmoid, else 'logit'."""
        return "prob" if self.loss == "bce" else "logit"

    @property
    def has_attention(self):
        """True when G or D has self-attention blocks (and so returns attention maps)."""
        return bool(self.g_options.get("attention_at") or self.d_options.get("attention_at"))

    @property
    def d_updates(self):
        return sum(1 for s in self.steps if s.startswith("d"))


_DCGAN64 = dict(
    family="dcgan64", image_size=64, channels=1, z_dim=20, noise="normal", init="dcgan_normal",
    batch_size=64, lr_g=1e-4, lr_d=4e-4, beta1_g=0.0, beta2_g=0.9, beta1_d=0.0, beta2_d=0.9,
    steps=("d", "g"), grid_rows=8, grid_cols=8,
)

PRESETS = {}


def _register(preset):
    PRESETS[preset.name] = preset
    return preset


_register(Preset(
    name="mlp_mnist",
    summary="MLP GAN on MNIST 28x28 (BCE, Adam 2e-4), 10 epochs",
    source="seed 003: MindSpore MLP GAN article",
    fixes="the article's GeneratorDataset-over-MnistDataset map has mismatched columns and its loop never "
          "computes gradients; here MnistDataset feeds value_and_grad steps directly",
    family="mlp", image_size=28, channels=1, z_dim=128, noise="normal", init="torch_default",
    loss="bce", steps=("d", "g"), batch_size=32, epochs=10, lr_g=2e-4, lr_d=2e-4,
    grid_rows=5, grid_cols=5, param_prefixes=("gen_model", "disc_model"), cpu_threads=1,
))

_register(Preset(
    name="dcgan_digits8",
    summary="tiny DCGAN on the 8x8 digits: D on fakes, D on reals, G on 2x batch; 200 epochs",
    source="seed 000: PyTorch DCGAN on scikit-learn's 8x8 digits",
    fixes="none needed in the recipe; runs on the built-in copy of the digits (no scikit-learn)",
    family="dcgan_digits8", image_size=8, channels=1, z_dim=64, noise="normal", init="torch_default",
    loss="bce", steps=("d_fake", "d_real", "g"), g_batch_mult=2, batch_size=16, epochs=200,
    lr_g=1e-3, lr_d=1e-3, drop_remainder=False,
    grid_rows=16, grid_cols=16, grid_gap=2, cpu_threads=1,
))

# The same networks and data as dcgan_digits8 with what measured best on the digits within its
# wall time (bench/digits8_plus.py, docs/ablation_digits8.md): an EMA of G's weights and Adam's beta1 0.5
# (3 seeds, `ms-gan eval --n 1797`: FCD 4.8 +- 0.2 at 100 epochs, 5.2 +- 0.8 at 200, against dcgan_digits8's
# 14.8 +- 6.5 at its 200 and the EMA alone's 10.3 +- 0.5 / 6.6 +- 1.0): 100 epochs, half the time.
_register(dataclasses.replace(
    PRESETS["dcgan_digits8"],
    name="dcgan_digits8_plus",
    summary="dcgan_digits8's G and D plus an EMA of G (0.999) and Adam beta1 0.5; 100 epochs: "
            "lower FCD in half the time",
    source="beyond seed 000: issue 15's measured recipe on the built-in digits",
    fixes="none: Adam's beta1 0.5 for G and D (the article's 0.9) and an exponential moving average of G's "
          "weights, used by sample/eval/export; 100 epochs",
    ema=0.999, beta1_g=0.5, beta1_d=0.5, epochs=100,
))

_register(Preset(
    name="dcgan_mnist28",
    summary="DCGAN on MNIST 28x28 with TF 'SAME' transposed convs and an L2 penalty on D; 51 epochs",
    source="seed 002: TensorFlow 1 DCGAN on MNIST",
    fixes="the article's D applied a sigmoid before sigmoid_cross_entropy_with_logits (double sigmoid): "
          "logits are used once; its inference path skipped BatchNorm: BN uses moving statistics in eval",
    family="dcgan_mnist28", image_size=28, channels=1, z_dim=100, noise="uniform", init="tf_normal",
    loss="bce_logits", steps=("d", "g"), batch_size=100, epochs=51, lr_g=2e-4, lr_d=2e-4,
    beta1_g=0.5, beta1_d=0.1, adam_eps_mode="tf", fake_for_d_eval_mode=True,
    d_l2_coef=0.001, d_l2_params=("conv2.weight", "conv3.weight"),
    grid_rows=10, grid_cols=10, sample_images=5, sample_images_every=2,
))

_register(Preset(
    name="dcgan64",
    summary="DCGAN 64x64 grayscale (BCE with logits, Adam G 1e-4 / D 4e-4, betas (0, 0.9)); 200 epochs",
    source="seed 004 (first half): PyTorch DCGAN on 64x64 MNIST sevens and eights",
    fixes="the article printed epoch loss sums divided by the batch size; per-batch means are logged",
    loss="bce_logits", epochs=200, **_DCGAN64,
))

_register(Preset(
    name="sagan64",
    summary="SAGAN 64x64: spectral norm, self-attention at 16x16/32x32 (G) and 8x8/4x4 (D), hinge loss; 300 epochs",
    source="seed 004 (second half): PyTorch SAGAN",
    fixes="the article printed epoch loss sums divided by the batch size; per-batch means are logged",
    loss="hinge", epochs=300,
    g_options=dict(spectral=True, attention_at=(16, 32)), d_options=dict(spectral=True, attention_at=(8, 4)),
    **_DCGAN64,
))

_register(Preset(
    name="dcgan128_rgb",
    summary="upsampling DCGAN on 128x128 RGB (Keras): half-batch D updates, G with D frozen",
    source="seed 001: Keras DCGAN on anime icons",
    fixes="none in the recipe; Keras' BatchNormalization(momentum=0.8) maps to MindSpore momentum 0.8, eps 1e-3",
    family="dcgan128_rgb", image_size=128, channels=3, z_dim=100, noise="uniform", init="keras_default",
    loss="bce", steps=("d_real", "d_fake", "g"), batch_size=128, epochs=4665, lr_g=2e-4, lr_d=2e-4,
    beta1_g=0.5, beta1_d=0.5, adam_eps=1e-7, adam_eps_mode="tf", real_batch_div=2, g_batch_mult=2,
    sampling="replacement", fake_for_d_eval_mode=True,
    grid_rows=4, grid_cols=4,
))


# ---- class-conditional presets (issue 15): an article recipe with G and D taking the class
# cdcgan_digits8 is not an article recipe. dcgan_digits8's recipe with only --conditional collapses within
# each class (100 epochs: recognition 1.000 but recall 0.000, FCD 88.7): G learns to ignore z once the class
# decides the image. The mode-seeking term (MSGAN) rewards G for images that differ as their noises do, which
# cures it (30 epochs, seed 0: recall 0.000 -> 0.809, FCD 158.8 -> 14.9), and G samples with its EMA (as
# dcgan_digits8_plus; FCD 14.9 -> 12.3). 100 epochs: an iteration costs ~1.5x dcgan_digits8's (class layers,
# the term, the EMA: kernel launches on tiny nets; interleaved, bench in docs/ablation_cdcgan_digits8.md), so
# 100 epochs stay within dcgan_digits8's 200-epoch wall time; seed 0 at 100 epochs: FCD 4.5, recall 0.795.
_register(dataclasses.replace(
    PRESETS["dcgan_digits8"], name="cdcgan_digits8",
    summary="class-conditional tiny DCGAN on the 8x8 digits (class embedding to z, projection D, mode seeking, "
            "EMA of G); 100 epochs",
    source="beyond seed 000: its recipe made conditional (Miyato & Koyama 2018 projection discriminator) plus "
           "MSGAN's mode-seeking term (Mao et al. 2019) and an EMA of G, measured on the built-in digits",
    fixes="none in the recipe; G concatenates a learned class embedding to z, D adds a class projection, G's loss "
          "adds the mode-seeking term (weight 1), sampling uses the EMA of G (decay 0.999); 100 epochs",
    conditional=True, num_classes=10, mode_seeking=1.0, ema=0.999, epochs=100,
))


def names():
    return sorted(PRESETS)


def get(name):
    """The preset called ``name``; UserError listing the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(names())} "
                        f"(ms-gan presets lists them)") from None


# Families whose networks take a class (ms_gan.nn.conditional); the MLP has no conditional form.
CONDITIONAL_FAMILIES = ("dcgan_digits8", "dcgan_mnist28", "dcgan64", "dcgan128_rgb")

OVERRIDABLE = ("epochs", "batch_size", "lr_g", "lr_d", "beta1_g", "beta2_g", "beta1_d", "beta2_d", "z_dim",
               "d_l2_coef", "sn_iterations", "g_batch_mult", "attention_every",
               "loss", "gp", "r1", "r1_every", "n_critic", "diffaugment", "conditional", "num_classes",
               "mode_seeking")


def override(preset, **values):
    """A copy of ``preset`` with the given (non-None) fields replaced, validated."""
    changes = {k: v for k, v in values.items() if v is not None}
    for key in changes:
        if key not in OVERRIDABLE:
            raise UserError(f"{key} cannot be overridden")
    for key in ("epochs", "batch_size", "z_dim", "sn_iterations", "g_batch_mult", "attention_every"):
        if key in changes and int(changes[key]) < 1:
            raise UserError(f"--{key.replace('_', '-')} must be at least 1, got {changes[key]}")
    for key in ("lr_g", "lr_d"):
        if key in changes and not float(changes[key]) > 0:
            raise UserError(f"--{key.replace('_', '-')} must be positive, got {changes[key]}")
    for key in ("beta1_g", "beta2_g", "beta1_d", "beta2_d"):
        if key in changes and not 0.0 <= float(changes[key]) < 1.0:
            raise UserError(f"--{key.replace('_', '-')} must be in [0, 1), got {changes[key]}")
    if "mode_seeking" in changes and not float(changes["mode_seeking"]) >= 0:
        raise UserError(f"--mode-seeking must be >= 0, got {changes['mode_seeking']}")
    if "d_l2_coef" in changes and float(changes["d_l2_coef"]) < 0:
        raise UserError(f"--d-l2-coef must be >= 0, got {changes['d_l2_coef']}")
    if "batch_size" in changes and int(changes["batch_size"]) % preset.real_batch_div:
        raise UserError(f"preset {preset.name} splits batches in {preset.real_batch_div}: "
                        f"--batch-size must be a multiple of {preset.real_batch_div}")
    _check_conditional(preset, changes)
    from ms_gan.train import objective

    result = dataclasses.replace(preset, **objective.resolve(preset, changes))
    if not result.conditional:   # the class count means nothing without the class inputs
        result = dataclasses.replace(result, num_classes=0)
    return result


def _check_conditional(preset, changes):
    conditional = bool(changes.get("conditional", preset.conditional))
    if conditional and preset.family not in CONDITIONAL_FAMILIES:
        usable = ", ".join(p.name for p in PRESETS.values() if p.family in CONDITIONAL_FAMILIES and not p.conditional)
        raise UserError(f"--conditional: preset {preset.name} ({preset.family}) has no class-conditional form; use "
                        f"one of the conv presets ({usable})")
    if "num_classes" in changes:
        k = int(changes["num_classes"])
        if not conditional:
            raise UserError("num_classes applies to conditional models only (train --conditional)")
        if k < 2:
            raise UserError(f"a conditional model needs labels of at least 2 classes; the data has {k}")


def to_dict(preset):
    return dataclasses.asdict(preset)
