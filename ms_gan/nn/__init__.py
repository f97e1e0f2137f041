"""Building blocks shared by the models: layers (blocks), MindSpore CPU replacements (workarounds),
initialisation, spectral norm, self-attention."""
