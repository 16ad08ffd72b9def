"""Pose-conditioned mapping network z, c -> ws with w_avg truncation (eg3d-math §7)."""

from __future__ import annotations

import torch
from torch import nn

from .layers import FullyConnected, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """z (and embedded camera c) -> w, broadcast to num_ws copies; truncation towards w_avg."""

    w_avg: torch.Tensor  # a buffer (registered in __init__)

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
        embed_features: int | None = None,
        layer_features: int | None = None,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        embed_features = w_dim if embed_features is None else embed_features
        layer_features = w_dim if layer_features is None else layer_features
        if c_dim == 0:
            embed_features = 0
        if z_dim == 0 and c_dim == 0:
            raise ValueError("mapping network needs z_dim > 0 or c_dim > 0")
        if c_dim > 0:
            self.embed = FullyConnected(c_dim, embed_features)
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(
                self,
                f"fc{i}",
                FullyConnected(features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier),
            )
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """z: (N, z_dim), c: (N, c_dim) -> ws: (N, num_ws, w_dim)."""
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            # torch.lerp is the reference's exact (fma-based) formula
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x
