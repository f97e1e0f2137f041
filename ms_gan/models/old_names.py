"""Parameter names of checkpoints written before the networks were explicit classes.

Until the layer-list networks were replaced (issue 14), parameters were named by their
position in generated containers (``generator.body.layers.1.0.weight``). These tables give
each old cell path its new name (``generator.convt2.weight``); :func:`rename` applies them
to every parameter of a checkpoint that still carries the old names, optimizer moments and
EMA copies included, so old checkpoints load unchanged.

The MLP's old names (``gen_model.model.0.weight``) are also those of seed 003's own
MindSpore code, so the article's checkpoints load through the same table.
"""

_DCGAN64_G = (("body.layers.0.0.", "convt1."), ("body.layers.0.1.", "bn1."),
              ("body.layers.1.0.", "convt2."), ("body.layers.1.1.", "bn2."),
              ("body.layers.2.0.", "convt3."), ("body.layers.2.1.", "bn3."),
              ("body.layers.3.0.", "convt4."), ("body.layers.3.1.", "bn4."),
              ("body.layers.4.0.", "convt5."))
_DCGAN64_D = (("body.layers.0.0.", "conv1."), ("body.layers.1.0.", "conv2."), ("body.layers.2.0.", "conv3."),
              ("body.layers.3.0.", "conv4."), ("body.layers.4.0.", "conv5."))

# {preset: ((old G cell path, new), ...), ((old D cell path, new), ...)}
OLD_TO_NEW = {
    "mlp_mnist": (
        (("model.0.", "dense1."), ("model.2.", "bn1."), ("model.3.", "dense2."), ("model.5.", "bn2."),
         ("model.6.", "dense3."), ("model.8.", "bn3."), ("model.9.", "dense4.")),
        (("model.0.", "dense1."), ("model.2.", "dense2."), ("model.4.", "dense3.")),
    ),
    "dcgan_digits8": (
        (("body.layers.0.0.", "convt1."), ("body.layers.1.0.", "convt2."), ("body.layers.2.0.", "convt3.")),
        (("body.layers.0.0.", "conv1."), ("body.layers.1.0.", "conv2."), ("body.layers.2.0.", "conv3.")),
    ),
    "dcgan_mnist28": (
        (("stem.0.", "dense."), ("body.layers.0.0.", "convt1."), ("body.layers.0.1.", "bn1."),
         ("body.layers.1.0.", "convt2."), ("body.layers.1.1.", "bn2."), ("body.layers.2.0.", "convt3.")),
        (("body.layers.0.0.", "conv1."), ("body.layers.1.0.", "conv2."), ("body.layers.2.0.", "conv3."),
         ("head.", "dense.")),
    ),
    "dcgan64": (_DCGAN64_G, _DCGAN64_D),
    "sagan64": (_DCGAN64_G + (("body.attentions.0.", "attn16."), ("body.attentions.1.", "attn32.")),
                _DCGAN64_D + (("body.attentions.0.", "attn8."), ("body.attentions.1.", "attn4."))),
    "dcgan128_rgb": (
        (("stem.0.", "dense."), ("body.layers.0.0.", "bn1."), ("body.layers.0.2.", "conv1."),
         ("body.layers.1.0.", "bn2."), ("body.layers.1.2.", "conv2."),
         ("body.layers.2.0.", "bn3."), ("body.layers.2.1.", "conv3.")),
        (("body.layers.0.0.", "conv1."), ("body.layers.1.0.", "conv2."), ("body.layers.1.4.", "bn2."),
         ("body.layers.2.0.", "conv3."), ("body.layers.2.3.", "bn3."), ("body.layers.3.0.", "conv4."),
         ("head.", "dense.")),
    ),
}


def _new_name(name, prefixes, tables):
    """``name`` with its old cell path (after the network prefix, anywhere in the name) renamed, or None."""
    for prefix, table in zip(prefixes, tables):
        marker = prefix + "."
        at = name.find(marker)
        while at >= 0:
            if at == 0 or name[at - 1] == ".":
                rest = name[at + len(marker):]
                for old, new in table:
                    if rest.startswith(old):
                        return name[:at + len(marker)] + new + rest[len(old):]
            at = name.find(marker, at + 1)
    return None


def rename(params, preset_name, prefixes):
    """``params`` (dict name -> value) with old-style names given their new names.

    ``prefixes`` are the preset's (G, D) parameter prefixes. Names that are already new, or
    that belong to no network (e.g. optimizer step counters), are kept as they are.
    """
    tables = OLD_TO_NEW.get(preset_name)
    if tables is None:
        return params
    renamed = {}
    for name, value in params.items():
        new = _new_name(name, prefixes, tables)
        renamed[new if new is not None else name] = value
    return renamed
