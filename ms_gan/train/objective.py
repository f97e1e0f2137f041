"""The training objective a preset may be given beyond its article: loss, penalties, n-critic, DiffAugment.

MindSpore-free on purpose: :func:`ms_gan.presets.override` calls :func:`resolve` while the CLI
checks its flags, before MindSpore starts. The maths lives in :mod:`ms_gan.train.losses`,
:mod:`ms_gan.train.penalties` and :mod:`ms_gan.train.augment`.

Preset fields (defaults: the article's recipe, bit-identical to before they existed):

* ``loss``: one of :data:`LOSSES`. Only ``bce`` takes probabilities. The families whose D ends
  in a sigmoid (their presets' default loss is ``bce``) give D's logit before the sigmoid for
  any other loss (:func:`ms_gan.models.registry.build_discriminator` drops the sigmoid, which has
  no parameters, so checkpoints and the converter are unaffected). Why not ``log(p / (1 - p))``
  after it: float32 sigmoids saturate to exactly 0 or 1 for |logit| > ~17, where that logit,
  and its gradient, are lost. ``bce`` on a logit D is refused: ``bce_logits`` is the same loss,
  computed stably.
* ``gp``: WGAN-GP weight lambda (0: off); ``r1``: R1 weight gamma (0: off), applied every
  ``r1_every`` iterations with gain ``r1_every`` (lazy regularisation, StyleGAN2).
* ``n_critic``: D updates per G update; the step order's D part is repeated (each repeat draws
  fresh noise; all repeats of one iteration judge the same real batch).
* ``diffaugment``: comma-separated subset of :data:`AUGMENT_POLICIES`, stored in that fixed order.
"""
from ms_gan.errors import UserError

LOSSES = ("bce", "bce_logits", "ns", "hinge", "lsgan", "wasserstein")
AUGMENT_POLICIES = ("color", "translation", "cutout")
FIELDS = ("loss", "gp", "r1", "r1_every", "n_critic", "diffaugment")
# Architecture families whose D has BatchNorm (a test checks this against the built networks).
D_WITH_BATCHNORM = ("dcgan128_rgb",)


def parse_policies(text):
    """'translation,color' -> 'color,translation' (canonical order); UserError on an unknown name."""
    names = [t.strip() for t in str(text or "").split(",") if t.strip()]
    unknown = [n for n in names if n not in AUGMENT_POLICIES]
    if unknown:
        raise UserError(f"--diffaugment: unknown policy {unknown[0]!r}: give a comma-separated subset of "
                        f"{','.join(AUGMENT_POLICIES)}")
    return ",".join(p for p in AUGMENT_POLICIES if p in names)


def resolve(preset, changes):
    """``changes`` (field -> value) with the objective fields validated and their implied fields added.

    ``n_critic`` also rewrites ``steps``.
    """
    changes = dict(changes)
    if "loss" in changes:
        if changes["loss"] not in LOSSES:
            raise UserError(f"--loss {changes['loss']!r} is unknown: choose one of {', '.join(LOSSES)}")
        if changes["loss"] == "bce" and preset.loss != "bce":
            raise UserError(f"--loss bce takes probabilities, but {preset.name}'s D gives logits: "
                            f"use --loss bce_logits (the same loss, computed stably on the logit)")
    for key in ("gp", "r1"):
        if key in changes and not float(changes[key]) >= 0:
            raise UserError(f"--{key} must be >= 0, got {changes[key]}")
    for key in ("r1_every", "n_critic"):
        if key in changes and int(changes[key]) < 1:
            raise UserError(f"--{key.replace('_', '-')} must be at least 1, got {changes[key]}")
    if "diffaugment" in changes:
        changes["diffaugment"] = parse_policies(changes["diffaugment"])
    if int(changes.get("n_critic", 1)) > 1:
        steps = tuple(preset.steps)
        if steps[-1:] != ("g",) or "g" in steps[:-1]:
            raise UserError(f"--n-critic: preset {preset.name}'s step order {steps} does not end in one G update")
        changes["steps"] = steps[:-1] * int(changes["n_critic"]) + ("g",)
    return changes


def check_penalties(preset):
    """UserError when ``preset`` cannot take its gradient penalty or R1 (in either mode: PyNative compiles
    the penalty's input gradient, :func:`ms_gan.nn.workarounds.compiled_in_pynative`)."""
    if not (preset.gp or preset.r1):
        return
    flag = "--gp" if preset.gp else "--r1"
    if preset.loss == "bce":
        raise UserError(f"{flag} differentiates D's logit, but {preset.name}'s D ends in a sigmoid (loss bce): "
                        f"add --loss bce_logits (the same loss on the logit) or another logit loss")
    if preset.family in D_WITH_BATCHNORM:
        raise UserError(f"{flag}: {preset.name}'s D uses BatchNorm, whose batch statistics mix the images, so the "
                        f"per-image input gradient the penalty bounds is ill-defined (WGAN-GP drops BN from D)")
