"""Building blocks shared by the models: layers, initialisation, spectral norm, self-attention."""
