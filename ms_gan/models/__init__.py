"""The networks. ``build(preset)`` returns (generator, discriminator) for any preset."""
from ms_gan.models.registry import build, build_discriminator, build_generator, primary

__all__ = ["build", "build_generator", "build_discriminator", "primary"]
