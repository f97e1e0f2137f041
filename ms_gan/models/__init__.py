"""The networks: one G and one D class per architecture family. ``build(preset)`` returns (G, D)."""
from ms_gan.models.registry import build, build_discriminator, build_generator, family_classes, primary

__all__ = ["build", "build_generator", "build_discriminator", "family_classes", "primary"]
