"""Tri-plane feature lookup and the OSG decoder MLP (eg3d-math §9)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FullyConnected


def reference_plane_axes() -> torch.Tensor:
    """The reference's plane matrices, including its axis quirk: planes read (x,y), (x,z), (z,x)."""
    return torch.tensor(
        [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 1], [0, 1, 0]], [[0, 0, 1], [1, 0, 0], [0, 1, 0]]],
        dtype=torch.float32,
    )


def project_onto_planes(plane_axes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """points: (N, M, 3) -> plane coordinates (N * n_planes, M, 2): first two entries of p @ inv(A_k)."""
    n, m, _ = points.shape
    k = plane_axes.shape[0]
    pts = points.unsqueeze(1).expand(-1, k, -1, -1).reshape(n * k, m, 3)
    inv = torch.linalg.inv(plane_axes.to(points)).unsqueeze(0).expand(n, -1, -1, -1).reshape(n * k, 3, 3)
    return torch.bmm(pts, inv)[..., :2]


def sample_from_planes(
    plane_axes: torch.Tensor, planes: torch.Tensor, points: torch.Tensor, box_warp: float
) -> torch.Tensor:
    """planes: (N, 3, C, H, W), points: (N, M, 3) world -> features (N, 3, C, M); zero outside the box.

    Channels-last planes (see `channels_last_planes`) make the bilinear lookup about 2.5x faster.
    """
    n, k, c, h, w = planes.shape
    m = points.shape[1]
    planes = planes.reshape(n * k, c, h, w)
    coords = (2 / box_warp) * points
    grid = project_onto_planes(plane_axes, coords).unsqueeze(1)
    out = F.grid_sample(planes, grid.to(planes.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(n, k, c, m)


def channels_last_planes(planes: torch.Tensor) -> torch.Tensor:
    """Same (N, 3, C, H, W) values, stored so each plane is channels-last (fast grid_sample)."""
    n, k, c, h, w = planes.shape
    return planes.reshape(n * k, c, h, w).contiguous(memory_format=torch.channels_last).view(n, k, c, h, w)


@dataclass(frozen=True)
class PlaneTable:
    """One latent's three planes as rows of a zero-bordered texel table, for `lookup`.

    Bilinear lookup plus the mean over the three planes is a weighted sum of 12 table rows per
    point (4 corners x 3 planes), which one `F.embedding_bag` call does about 3x faster than
    grid_sample + mean on CPU. The border (1 texel low, 2 high) holds zeros, so clamped
    coordinates give grid_sample's zero padding (align_corners=False) exactly.
    """

    rows: torch.Tensor
    """(3 * (H+3) * (W+3), C) texels, channels last."""
    proj: torch.Tensor
    """(3, 6): world point -> plane coordinates (x, y) on each plane (sample_from_planes' matrices / box)."""
    size: torch.Tensor
    """(6,) plane width and height for each coordinate."""
    width: float
    """Row length of the bordered table (W + 3)."""
    corner_rows: torch.Tensor
    """(6, 12): a point's texel cells (x, y per plane) -> the rows of its 12 corners, less `corner_start`."""
    corner_plane: torch.Tensor
    """(12,) plane of each of a point's 12 corners."""
    corner_start: torch.Tensor
    """(12,) row offset of each corner from the plane's (x0, y0) row (plane start and border included)."""
    square: float | None
    """W when the planes are square (one scalar clamp), else None."""


def plane_table(plane_axes: torch.Tensor, planes: torch.Tensor, box_warp: float) -> PlaneTable:
    """planes (3, C, H, W) of one latent -> its PlaneTable (a 25 MB copy for EG3D's 256^2 x 32)."""
    k, c, h, w = planes.shape
    width, height = w + 3, h + 3
    rows = F.pad(planes, (1, 2, 1, 2)).permute(0, 2, 3, 1).reshape(k * height * width, c)
    inv = torch.linalg.inv(plane_axes.to(torch.float32))  # plane coords = first two entries of p @ inv
    proj = inv[:, :, :2].permute(1, 0, 2).reshape(3, 2 * k) * (2 / box_warp)  # exact for EG3D's 0/1 matrices
    size = torch.tensor([float(w), float(h)] * k)
    if k * height * width >= 2**24:
        raise ValueError(f"planes of {h}x{w} are too large for float32 row arithmetic in lookup")
    corner_plane = torch.arange(k).repeat_interleave(4)
    corner_rows = torch.zeros(2 * k, 4 * k)
    corner_rows[2 * corner_plane, torch.arange(4 * k)] = 1
    corner_rows[2 * corner_plane + 1, torch.arange(4 * k)] = width
    corner_start = torch.arange(k)[:, None] * (height * width) + torch.tensor([0, 1, width, width + 1]) + width + 1
    dev = planes.device
    return PlaneTable(
        rows.contiguous(),
        proj.to(dev),
        size.to(dev),
        float(width),
        corner_rows.to(dev),
        corner_plane.to(dev),
        corner_start.reshape(-1).float().to(dev),
        float(w) if w == h else None,
    )


def fp32_matmul_settings(device_type: str) -> dict[str, object]:
    """Every torch setting that can lower the precision of fp32 matmuls on this device type, as read now.

    - `torch.get_float32_matmul_precision()` (all torch versions): 'high' allows TF32 on CUDA, 'medium' bf16
      (also in oneDNN on CPUs);
    - CUDA: `torch.backends.cuda.matmul.allow_tf32` (all versions) and `.fp32_precision` (torch >= 2.9);
    - CPU: `torch.backends.mkldnn.matmul.fp32_precision` (torch >= 2.9);
    - `torch.backends.fp32_precision`, the global default that 'none' settings inherit (torch >= 2.9).

    A setting this torch does not have is left out; one torch refuses to read (its error after the legacy
    and the new API were mixed) reads as 'unreadable'."""
    b = torch.backends
    readers = {
        "float32_matmul_precision": torch.get_float32_matmul_precision,
        "fp32_precision": lambda: b.fp32_precision,  # type: ignore[attr-defined]  # torch >= 2.9, not in stubs
    }
    if device_type == "cuda":
        readers["cuda.matmul.allow_tf32"] = lambda: b.cuda.matmul.allow_tf32
        readers["cuda.matmul.fp32_precision"] = lambda: b.cuda.matmul.fp32_precision
    else:
        readers["mkldnn.matmul.fp32_precision"] = lambda: b.mkldnn.matmul.fp32_precision  # type: ignore[attr-defined]
    settings: dict[str, object] = {}
    for name, read in readers.items():
        try:
            settings[name] = read()
        except AttributeError:
            continue
        except RuntimeError:
            settings[name] = "unreadable"
    return settings


_EXACT = ("none", "ieee", "highest", False)
"""Setting values that keep fp32 matmuls in full fp32 ('none': not set, or inheriting such a value)."""


def _exact_fp32_matmul(device_type: str) -> bool:
    """Whether fp32 matmuls on this device type run in full fp32: every setting of fp32_matmul_settings says so.

    Where torch >= 2.9's per-backend setting exists it is authoritative: the legacy setters write it too,
    and it reads as the global default it inherits when 'none' (so the global one is not consulted), and a
    legacy getter that torch refuses to read after the new API was used does not count. Without it
    (torch 2.1-2.8) the legacy settings decide, and an unreadable setting counts as inexact."""
    settings = fp32_matmul_settings(device_type)
    leaf = "cuda.matmul.fp32_precision" if device_type == "cuda" else "mkldnn.matmul.fp32_precision"
    if settings.get(leaf, "unreadable") != "unreadable":
        settings = {k: v for k, v in settings.items() if v != "unreadable" and k != "fp32_precision"}
    return all(v in _EXACT for v in settings.values())


def lookup(table: PlaneTable, points: torch.Tensor) -> torch.Tensor:
    """points (K, 3) world -> mean of the three planes' bilinear features (K, C), as sample_from_planes.

    Texel coordinates and corner weights follow grid_sample's own float order; only the order of
    the final 12-term sum differs (within 5e-7 of it on unit-scale planes).
    """
    # Coordinates and corner rows must stay exact fp32 (rows are whole numbers below 2^24): matmuls when fp32
    # matmuls are exact, elementwise when TF32 or bf16 matmul precision is set (half-texel errors, wrong rows)
    p = points.float()
    exact = _exact_fp32_matmul(p.device.type)
    with torch.autocast(p.device.type, enabled=False):  # bf16 previews too
        if exact:
            g = torch.mm(p, table.proj)  # (K, 6): x, y per plane, on [-1, 1] inside the box
        else:
            g = (p[:, 0:1] * table.proj[0]).addcmul_(p[:, 1:2], table.proj[1]).addcmul_(p[:, 2:3], table.proj[2])
        u = g.add_(1).mul_(table.size).sub_(1).div_(2)  # ((g + 1) * size - 1) / 2, align_corners=False
        # beyond [-1, size] every corner is border
        u = u.clamp_(-1, table.square) if table.square is not None else torch.minimum(u.clamp_(min=-1), table.size)
        cell = u.nan_to_num(-1.0).floor_()  # a NaN point reads the border, with NaN weights: NaN features
        if exact:
            idx = torch.addmm(table.corner_start, cell, table.corner_rows)  # (K, 12)
        else:
            idx = (cell[:, 1::2] * table.width).add_(cell[:, 0::2]).index_select(1, table.corner_plane)
            idx.add_(table.corner_start)
        idx = idx.int()
    w0, w1 = (cell + 1).sub_(u), u - cell  # weights of the low and high corner on each axis
    x0, x1, y0, y1 = w0[:, 0::2], w1[:, 0::2], w0[:, 1::2], w1[:, 1::2]
    weights = torch.empty((len(u), 3, 4), dtype=u.dtype, device=u.device)
    for j, (wx, wy) in enumerate(((x0, y0), (x1, y0), (x0, y1), (x1, y1))):  # nw, ne, sw, se
        torch.mul(wx, wy, out=weights[..., j])
    weights = weights.view(-1, 12).mul_(1 / 3)  # the mean over planes
    return F.embedding_bag(idx, table.rows, per_sample_weights=weights.to(table.rows.dtype), mode="sum")


class OSGDecoder(nn.Module):
    """Mean of the three plane features -> FC 32-64 softplus FC 64-33 -> raw sigma + 32 colour features."""

    def __init__(self, n_features: int = 32, hidden_dim: int = 64, output_dim: int = 32, lr_mul: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.net = nn.Sequential(
            FullyConnected(n_features, hidden_dim, lr_multiplier=lr_mul),
            nn.Softplus(),
            FullyConnected(hidden_dim, 1 + output_dim, lr_multiplier=lr_mul),
        )

    def forward(self, sampled_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sampled_features: (N, 3, C, M) -> (rgb (N, 32, M) in (-0.001, 1.001), sigma (N, 1, M) raw).

        Points stay on the last axis throughout (no transposes of the big tensors); the FC layers
        are the same equalized-lr maths as `FullyConnected`, applied as W @ x.
        """
        x = sampled_features.mean(1)
        x = _fc_points_last(cast(FullyConnected, self.net[0]), x)
        x = torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))  # softplus, 2.5x faster on CPU
        x = _fc_points_last(cast(FullyConnected, self.net[2]), x)
        rgb = torch.sigmoid(x[:, 1:])
        if torch.is_grad_enabled() and rgb.requires_grad:  # training: keep sigmoid's output for backward
            rgb = rgb * (1 + 2 * 0.001) - 0.001
        else:  # in place: saves two 100 MB allocations per pass at 128^2 x 48 samples
            rgb.mul_(1 + 2 * 0.001).sub_(0.001)
        return rgb, x[:, 0:1]

    def rows(self, device: torch.device | None = None) -> "RowDecoder":
        """The MLP prepared for row-wise inference over one frame (weights with their gains, once).

        fp32 CPU inference with oneDNN, outside autocast, takes softplus as -log(sigmoid(-z)) with
        the sigmoid fused into oneDNN's matmul: 3x faster than matmul + logaddexp, the same values to
        float rounding. Where a chunk has pre-activations past FUSED_SOFTPLUS_LIMIT (sigmoid(-z) near
        underflow), RowDecoder takes softplus(z) = z there from one extra matmul.
        """
        fc0, fc1 = cast(FullyConnected, self.net[0]), cast(FullyConnected, self.net[2])
        assert fc0.bias is not None and fc1.bias is not None  # the decoder's layers have biases
        b0, w0 = fc0.bias * fc0.bias_gain, fc0.weight * fc0.weight_gain
        b1, w1 = fc1.bias * fc1.bias_gain, fc1.weight * fc1.weight_gain
        dev = device or w0.device
        fused = (
            _HAS_FUSED_LINEAR
            and dev.type == "cpu"
            and w0.dtype == torch.float32
            and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
        )
        negated = ((-b0).contiguous(), (-w0).contiguous(), (-w1).t().contiguous()) if fused else None
        return RowDecoder(b0, w0.t(), b1, w1.t(), negated)


FUSED_SOFTPLUS_LIMIT = 60.0
"""Above this pre-activation softplus(z) = z to float precision (e^-60 = 9e-27), and sigmoid(-z) nears the
smallest normal floats, so the fused path takes z itself there."""
_SIGMOID_FLOOR = 1e-30
"""sigmoid(-z) is floored here before the log: logs of underflowed values are 5x slower on CPUs."""
_HAS_FUSED_LINEAR = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@dataclass(frozen=True)
class RowDecoder:
    """The decoder MLP for points as rows (OSGDecoder.rows): features (K, 32) -> (K, 33),
    raw sigma then colour (sigmoid applied, in (-0.001, 1.001)); the same maths as OSGDecoder.forward."""

    b0: torch.Tensor
    w0: torch.Tensor
    """(in, out), for addmm."""
    b1: torch.Tensor
    w1: torch.Tensor
    negated: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    """-b0, -W0 (out, in) and -W1^T for the fused path; None where it does not apply."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.negated is not None:
            nb0, nw0, nw1 = self.negated
            sig = torch.ops.mkldnn._linear_pointwise(x, nw0, nb0, "sigmoid", [], "")  # sigmoid(-z)
            h = sig.clamp_min_(_SIGMOID_FLOOR).log_()  # -softplus(z), exact below the limit
            if bool(h.min() < -FUSED_SOFTPLUS_LIMIT):  # some z past the limit: there -softplus(z) = -z
                z = torch.addmm(self.b0, x, self.w0)
                h = torch.where(z > FUSED_SOFTPLUS_LIMIT, z.neg(), h)
            out = torch.addmm(self.b1, h, nw1)
        else:
            h = torch.addmm(self.b0, x, self.w0)
            h = torch.logaddexp(h, torch.zeros((), dtype=h.dtype, device=h.device))
            out = torch.addmm(self.b1.to(h.dtype), h, self.w1.to(h.dtype))
        out[:, 1:].sigmoid_().mul_(1 + 2 * 0.001).sub_(0.001)
        return out


def _fc_points_last(fc: FullyConnected, x: torch.Tensor) -> torch.Tensor:
    """Linear equalized-lr layer on (N, in, M) -> (N, out, M)."""
    w = fc.weight.to(x.dtype) * fc.weight_gain
    assert fc.bias is not None  # the decoder's layers have biases
    b = fc.bias.to(x.dtype)
    if fc.bias_gain != 1:
        b = b * fc.bias_gain
    return torch.baddbmm(b[None, :, None], w.expand(x.shape[0], -1, -1), x)
