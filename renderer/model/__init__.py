"""The EG3D tri-plane generator in plain PyTorch, one module per part.

layers (StyleGAN2 building blocks) -> mapping (z, c -> ws) and backbone (ws -> tri-planes) ->
decoder (plane lookup + OSG MLP) and volume (rays, samples, marcher) -> superres -> generator
(`TriPlaneGenerator`, parameter names as the reference's state dict). density samples raw sigma on
a lattice from cached planes; occupancy turns it into the empty-space grid that renders skip by.
Nothing here reads files, caches per latent or writes output: that is renderer.checkpoint,
renderer.engine and renderer.export.
"""

from .generator import PLANE_CHANNELS, TriPlaneGenerator

__all__ = ["PLANE_CHANNELS", "TriPlaneGenerator"]
