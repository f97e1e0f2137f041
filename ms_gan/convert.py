"""``ms-gan convert``: PyTorch state_dicts <-> ms_gan checkpoints, for every preset.

Every tensor is mapped both ways; nothing is guessed from shapes alone:

=====================================  ==========================================
MindSpore (relative to G / D)          PyTorch
=====================================  ==========================================
``<bn>.gamma`` / ``<bn>.beta``         ``<bn>.weight`` / ``<bn>.bias``
``<bn>.moving_mean``                   ``<bn>.running_mean``
``<bn>.moving_variance``               ``<bn>.running_var``
(none)                                 ``<bn>.num_batches_tracked`` (kept in the meta)
``<sn>.layer.weight``                  ``<sn>.weight_orig``
``<sn>.layer.bias``                    ``<sn>.bias``
``<sn>.weight_u`` / ``<sn>.weight_v``  ``<sn>.weight_u`` / ``<sn>.weight_v``
``<sn>.sigma``                         (none: recomputed as u^T W v)
``<cbn>.norm.gamma`` / ``.beta``       (none: conditional BN's inner BatchNorm has no affine;
                                       fixed at 1 / 0)
``<embed>.table`` (class embedding,    ``<embed>.weight`` (``nn.Embedding(classes, dim)``)
projection)
``<cbn>.class_scale`` / ``class_shift`` the same name (``nn.Parameter`` (classes, channels))
anything else (Dense, Conv, ConvT,     the same name; Dense (out, in), Conv (out, in, kh, kw)
attention convs and gamma)             and ConvTranspose (in, out, kh, kw) layouts agree
=====================================  ==========================================

Two PyTorch namings are understood, detected from the keys:

* ``reference``: the attribute names of ms_gan's own networks (``convt1``, ``bn1``,
  ``attn16``, ``dense``, ...), as the PyTorch reference models in :mod:`ms_gan.reference`
  save them;
* ``article``: the seed articles' PyTorch code (:data:`ARTICLE_NAMES`): seed 004 (dcgan64,
  sagan64: ``layer1``..``layer4``, ``last``, ``self_attntion1``/``2``) and seed 000
  (dcgan_digits8: ``convt_1``.., ``conv_1``..).

A ``.pt`` file may hold one state_dict (G or D, recognised by its tensors), or both
(``{'G': sd, 'D': sd}``, ``{'generator': ..., 'discriminator': ...}``, ``netG``/``netD``).
PyTorch is imported only when this command runs.
"""
import os

import numpy as np

from ms_gan.errors import UserError

NAMINGS = ("reference", "article")
_G_KEYS = ("G", "generator", "netG", "gen", "g", "G_state_dict", "generator_state_dict", "model_G")
_D_KEYS = ("D", "discriminator", "netD", "disc", "d", "D_state_dict", "discriminator_state_dict", "model_D")
_WRAPPERS = ("state_dict", "model_state_dict", "model")


def _torch():
    try:
        import torch
    except ImportError:
        raise UserError("ms-gan convert needs PyTorch: pip install torch==2.13.0") from None
    return torch


# ---------------------------------------------------------------------------- name rules


# The seed articles' PyTorch module names -> ours, by preset and role: (article prefix, our prefix).
# Seed 004 wraps each stage in nn.Sequential(conv, [bn,] activation); its D's last conv is bare.
# Its attention attribute is spelled "self_attntion"; the corrected spelling is read too (the
# first spelling is the one written back).
_SEED004_G = (
    ("layer1.0.", "convt1."), ("layer1.1.", "bn1."),
    ("layer2.0.", "convt2."), ("layer2.1.", "bn2."),
    ("layer3.0.", "convt3."), ("layer3.1.", "bn3."),
    ("layer4.0.", "convt4."), ("layer4.1.", "bn4."),
    ("last.0.", "convt5."),
)
_SEED004_D = (
    ("layer1.0.", "conv1."), ("layer2.0.", "conv2."), ("layer3.0.", "conv3."), ("layer4.0.", "conv4."),
    ("last.", "conv5."),
)
ARTICLE_NAMES = {
    ("dcgan64", "G"): _SEED004_G,
    ("dcgan64", "D"): _SEED004_D,
    ("sagan64", "G"): _SEED004_G + (
        ("self_attntion1.", "attn16."), ("self_attention1.", "attn16."),
        ("self_attntion2.", "attn32."), ("self_attention2.", "attn32."),
    ),
    ("sagan64", "D"): _SEED004_D + (
        ("self_attntion1.", "attn8."), ("self_attention1.", "attn8."),
        ("self_attntion2.", "attn4."), ("self_attention2.", "attn4."),
    ),
    ("dcgan_digits8", "G"): (("convt_1.", "convt1."), ("convt_2.", "convt2."), ("convt_3.", "convt3.")),
    ("dcgan_digits8", "D"): (("conv_1.", "conv1."), ("conv_2.", "conv2."), ("conv_3.", "conv3.")),
}

# MindSpore attribute -> torch state_dict attribute, by the kind of cell that owns it.
BATCH_NORM_TO_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                       "moving_variance": "running_var"}
# Inside a SpectralNorm cell ``<sn>``: the wrapped layer's ``<sn>.layer.<attr>`` is torch's ``<sn>.<attr>``.
SPECTRAL_LAYER_TO_TORCH = {"weight": "weight_orig", "bias": "bias"}


def _article_rules(preset_name, role):
    """(article prefix, our prefix) pairs of the seed article's PyTorch modules, or ()."""
    return ARTICLE_NAMES.get((preset_name, role), ())


def _rename(key, rules):
    for src, dst in rules:
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def _param_map(net, prefix):
    """[(torch key in reference naming or None, ms Parameter, kind)] for every Parameter of ``net``.

    kind: 'value' (copied), 'sigma' (spectral norm's derived sigma), with owner info for sigma.
    """
    from mindspore import nn

    from ms_gan.nn.conditional import ClassEmbedding, Projection
    from ms_gan.nn.spectral_norm import SpectralNorm

    cells = dict(net.cells_and_names())
    out = []
    for p in net.get_parameters():
        rel = p.name[len(prefix) + 1:] if p.name.startswith(prefix + ".") else p.name
        owner, attr = rel.rsplit(".", 1) if "." in rel else ("", rel)
        cell = cells.get(owner)
        parent_name = owner.rsplit(".", 1)[0] if owner.endswith(".layer") else None
        bn = isinstance(cell, nn.layer.normalization._BatchNorm)
        if bn and attr in ("gamma", "beta") and not cell.gamma.requires_grad:
            out.append((None, p, "fixed", owner))   # conditional BN's inner BatchNorm: no affine in PyTorch
        elif isinstance(cell, (ClassEmbedding, Projection)):
            out.append((f"{owner}.weight", p, "value", owner))
        elif bn:
            out.append((f"{owner}.{BATCH_NORM_TO_TORCH[attr]}", p, "value", owner))
        elif isinstance(cell, SpectralNorm):
            out.append((None if attr == "sigma" else rel, p, "sigma" if attr == "sigma" else "value", owner))
        elif parent_name is not None and isinstance(cells.get(parent_name), SpectralNorm):
            out.append((f"{parent_name}.{SPECTRAL_LAYER_TO_TORCH[attr]}", p, "value", parent_name))
        else:
            out.append((rel, p, "value", owner))
    return out


def _bn_owners(net):
    from mindspore import nn

    return [name for name, cell in net.cells_and_names() if isinstance(cell, nn.layer.normalization._BatchNorm)]


# ---------------------------------------------------------------------------- torch -> MindSpore


def _to_numpy(value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _normalise_keys(sd, preset_name, role):
    """(dict in reference naming, naming found). Strips DataParallel's ``module.``."""
    keys = list(sd)
    if keys and all(k.startswith("module.") for k in keys):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    rules = _article_rules(preset_name, role)
    if rules and any(_rename(k, rules) is not None for k in sd):
        renamed = {}
        for k, v in sd.items():
            new = _rename(k, rules)
            renamed[new if new is not None else k] = v
        return renamed, "article"
    return dict(sd), "reference"


def _sigma(weight, u, v, dim):
    w = np.moveaxis(np.asarray(weight, np.float64), dim, 0).reshape(weight.shape[dim], -1)
    return np.float32(np.dot(np.asarray(u, np.float64), w @ np.asarray(v, np.float64)))


def _check(state, net, prefix, source, what):
    """Map ``state`` (reference naming) onto ``net``. Returns (assignments, error or None)."""
    entries = _param_map(net, prefix)
    by_key = {key: (param, owner) for key, param, kind, owner in entries if kind == "value"}
    bn_counts = {f"{owner}.num_batches_tracked" for owner in _bn_owners(net)}
    assigns = {}
    for key, value in state.items():
        if key in bn_counts:
            continue
        if key not in by_key:
            return None, f"{source}: tensor {key!r} ({what}) has no counterpart in the preset's network"
        shape = tuple(np.shape(value))
        param = by_key[key][0]
        if shape != tuple(param.shape):
            return None, (f"{source}: tensor {key!r} ({what}) has shape {shape}, the preset's "
                          f"{param.name} needs {tuple(param.shape)}")
        assigns[key] = value
    for key, (param, _) in by_key.items():
        if key not in assigns:
            return None, f"{source}: tensor {key!r} ({what}) is missing (needed for {param.name})"
    return assigns, None


def load_torch_state(net, prefix, state, source="state_dict", what="G"):
    """Copy a PyTorch state_dict in reference naming into the MindSpore network ``net``.

    Returns {bn num_batches_tracked key: int} found in ``state``.

    Raises:
        UserError: a tensor is unmapped, missing, or has another shape (the first one is named).
    """
    import mindspore as ms

    assigns, error = _check(state, net, prefix, source, what)
    if error:
        raise UserError(error)
    entries = _param_map(net, prefix)
    for key, param, kind, _ in entries:
        if kind == "value":
            param.set_data(ms.Tensor(np.ascontiguousarray(_to_numpy(assigns[key]), dtype=np.float32)))
    cells = dict(net.cells_and_names())
    for key, param, kind, owner in entries:
        if kind == "sigma":
            sn = cells[owner]
            value = _sigma(sn.layer.weight.asnumpy(), sn.weight_u.asnumpy(), sn.weight_v.asnumpy(), sn.dim)
            param.set_data(ms.Tensor(np.array([value], np.float32)))
    counts = {}
    for owner in _bn_owners(net):
        key = f"{owner}.num_batches_tracked"
        if key in state:
            counts[key] = int(np.asarray(_to_numpy(state[key])).reshape(-1)[0])
    return counts


def _state_of(obj):
    torch = _torch()
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    return obj


def _is_flat(obj):
    torch = _torch()
    return isinstance(obj, dict) and obj and all(isinstance(v, (torch.Tensor, np.ndarray)) for v in obj.values())


def split_file_object(obj, path):
    """(G state or None, D state or None, flat state or None) found in a loaded ``.pt`` object."""
    obj = _state_of(obj)
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state_dict or a dict of state_dicts")
    if _is_flat(obj):
        return None, None, obj
    g = next((_state_of(obj[k]) for k in _G_KEYS if k in obj), None)
    d = next((_state_of(obj[k]) for k in _D_KEYS if k in obj), None)
    if g is None and d is None:
        for k in _WRAPPERS:
            if k in obj:
                return split_file_object(obj[k], path)
        raise UserError(f"{path}: no state_dict found (expected tensors, or keys like "
                        f"'G'/'D' or 'generator'/'discriminator'; found {sorted(obj)[:6]})")
    for name, sd in (("G", g), ("D", d)):
        if sd is not None and not _is_flat(sd):
            raise UserError(f"{path}: the {name} entry is not a state_dict of tensors")
    return g, d, None


def _load_pt(path):
    torch = _torch()
    if not os.path.isfile(path):
        raise UserError(f"PyTorch file {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"cannot read {path} as PyTorch weights ({first}); save model.state_dict() "
                        f"rather than the model object") from None


def torch_to_ms(preset, g_state=None, d_state=None, flat_state=None, source="state_dict"):
    """Build the preset's networks and fill them from PyTorch state_dicts.

    Args:
        preset: the Preset.
        g_state, d_state: state_dicts known to be G's / D's (either naming).
        flat_state: a state_dict of unknown role: G or D, whichever it maps onto.
        source: file name for messages.

    Returns:
        (cells, info): cells = [G] / [D] / [G, D]; info = {"naming": {...}, "num_batches_tracked": {...}}.
    """
    from ms_gan.models import build_discriminator, build_generator

    builders = {"G": (build_generator, preset.param_prefixes[0]), "D": (build_discriminator, preset.param_prefixes[1])}
    roles = {}
    if flat_state is not None:
        errors = {}
        for role in ("G", "D"):
            state, naming = _normalise_keys(flat_state, preset.name, role)
            net = builders[role][0](preset)
            _, err = _check(state, net, builders[role][1], source, role)
            if err is None:
                roles[role] = (state, naming, net)
                break
            errors[role] = err
        else:
            # Report against the role the file resembles most (more keys in common).
            def overlap(role):
                state, _ = _normalise_keys(flat_state, preset.name, role)
                net = builders[role][0](preset)
                known = {k for k, _, kind, _ in _param_map(net, builders[role][1]) if k}
                return len(known & set(state))

            best = max(("G", "D"), key=overlap)
            raise UserError(errors[best].replace(f"({best})", f"(as preset {preset.name}'s {best})"))
    for role, state in (("G", g_state), ("D", d_state)):
        if state is not None:
            if role in roles:
                raise UserError(f"{source}: two state_dicts for {role}")
            norm, naming = _normalise_keys(state, preset.name, role)
            roles[role] = (norm, naming, builders[role][0](preset))
    if not roles:
        raise UserError(f"{source}: no weights to convert")
    cells, info = [], {"naming": {}, "num_batches_tracked": {}}
    for role in ("G", "D"):
        if role not in roles:
            continue
        state, naming, net = roles[role]
        counts = load_torch_state(net, builders[role][1], state, source, f"preset {preset.name}'s {role}")
        info["naming"][role] = naming
        if counts:
            info["num_batches_tracked"][role] = counts
        cells.append(net)
    info["roles"] = [r for r in ("G", "D") if r in roles]
    return cells, info


def _one_state(path, role, already):
    """The single ``role`` ('G' or 'D') state_dict of a --g/--d file; error if it has none or ``already`` is set."""
    g_state, d_state, flat = split_file_object(_load_pt(path), path)
    own = g_state if role == "G" else d_state
    if already is not None or (own is None and flat is None):
        raise UserError(f"{path}: expected one {role} state_dict")
    return own if own is not None else flat


def torch_file_to_checkpoint(out, preset_name, path=None, g_path=None, d_path=None):
    """Write an ms_gan checkpoint from PyTorch file(s); returns (out, info)."""
    from ms_gan import presets
    from ms_gan import checkpoint as ckpt_io

    preset = presets.get(preset_name)
    g_state = d_state = flat = None
    sources = []
    if path is not None:
        g_state, d_state, flat = split_file_object(_load_pt(path), path)
        sources.append(path)
    if g_path is not None:
        g_state = _one_state(g_path, "G", g_state)
        sources.append(g_path)
    if d_path is not None:
        d_state = _one_state(d_path, "D", d_state)
        sources.append(d_path)
    source = " + ".join(sources)
    cells, info = torch_to_ms(preset, g_state, d_state, flat, source)
    meta = {"preset": preset.name, "overrides": {}, "epoch": 0, "batch_in_epoch": 0, "step": 0, "seed": 0,
            "rng": None, "world": 1, "converted_from": source, "torch_naming": info["naming"],
            "torch_num_batches_tracked": info["num_batches_tracked"]}
    ckpt_io.save(out, cells, meta)
    return out, info


# ---------------------------------------------------------------------------- MindSpore -> torch


def ms_to_torch_state(net, prefix, preset_name, role, naming="reference", num_batches_tracked=None):
    """A PyTorch state_dict (dict of CPU tensors) from the MindSpore network ``net``."""
    torch = _torch()
    if naming not in NAMINGS:
        raise UserError(f"--naming must be one of {', '.join(NAMINGS)}, got {naming!r}")
    rules = _article_rules(preset_name, role)
    if naming == "article" and not rules:
        raise UserError(f"preset {preset_name} has no PyTorch article naming (its article is not PyTorch): "
                        f"use --naming reference")
    counts = num_batches_tracked or {}
    state = {}
    bn = set(_bn_owners(net))
    for key, param, kind, owner in _param_map(net, prefix):
        if kind != "value":
            continue
        state[key] = torch.from_numpy(np.array(param.asnumpy(), dtype=np.float32))
        if owner in bn and key.endswith(".running_var"):
            nbt = f"{owner}.num_batches_tracked"
            state[nbt] = torch.tensor(int(counts.get(nbt, 0)), dtype=torch.int64)
    if naming == "article":
        inverse = [(dst, src) for src, dst in rules]
        seen = set()
        inverse = [(a, b) for a, b in inverse if not (a in seen or seen.add(a))]  # first spelling wins
        inverse.sort(key=lambda r: -len(r[0]))
        state = {(_rename(k, inverse) or k): v for k, v in state.items()}
    return _torch_order(state)


def _torch_order(state):
    """Order keys as torch's state_dict would: BN weight, bias, running_mean, running_var, num_batches_tracked."""
    rank = {"weight": 0, "bias": 1, "weight_orig": 1.5, "running_mean": 2, "running_var": 3,
            "num_batches_tracked": 4, "weight_u": 5, "weight_v": 6}
    groups = {}
    for k in state:
        owner, attr = k.rsplit(".", 1) if "." in k else ("", k)
        groups.setdefault(owner, []).append((rank.get(attr, -1), k))
    ordered = {}
    for owner in groups:
        for _, k in sorted(groups[owner], key=lambda t: t[0]):
            ordered[k] = state[k]
    return ordered


def checkpoint_to_torch(ckpt, out=None, g_out=None, d_out=None, naming="reference"):
    """Write PyTorch state_dicts from an ms_gan checkpoint; returns {'G': sd, 'D': sd} (present ones).

    ``out`` gets ``{'G': sd, 'D': sd}``; ``g_out`` / ``d_out`` get one flat state_dict each.
    """
    torch = _torch()
    from ms_gan.generate import preset_from_meta
    from ms_gan.models import build_discriminator, build_generator
    from ms_gan import checkpoint as ckpt_io

    path = ckpt_io.resolve(ckpt)
    params, meta = ckpt_io.load(path)
    preset = preset_from_meta(meta, path)
    counts = meta.get("torch_num_batches_tracked") or {}
    result = {}
    for role, builder, prefix in (("G", build_generator, preset.param_prefixes[0]),
                                  ("D", build_discriminator, preset.param_prefixes[1])):
        if not any(name.startswith(prefix + ".") for name in params):
            continue
        net = builder(preset)
        ckpt_io.assign([net], params, path)
        result[role] = ms_to_torch_state(net, prefix, preset.name, role, naming, counts.get(role))
    if g_out is not None and "G" not in result:
        raise UserError(f"{path} holds no generator weights to write to {g_out}")
    if d_out is not None and "D" not in result:
        raise UserError(f"{path} holds no discriminator weights to write to {d_out}")
    for target, obj in ((out, result), (g_out, result.get("G")), (d_out, result.get("D"))):
        if target is not None:
            with ckpt_io.atomic_output(target) as tmp:
                torch.save(obj, tmp)
    return result
