"""The EG3D tri-plane generator: mapping -> backbone planes -> volume render -> super-resolution.

The split `planes(ws)` / `render_planes(planes, ws, c)` lets a viewer compute the tri-planes once
per latent and re-render any number of cameras; `synthesis` is the two in one call, matching the
reference's outputs ('image', 'image_raw', 'image_depth').

One module of a little over 400 lines on purpose: `TriPlaneGenerator` is one nn.Module whose render
path (ray chunks, occupancy-limited rays, the per-generator plane-table cache) works on its own
state; the maths it calls lives in layers, decoder, volume and superres.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..checkpoint.spec import ModelSpec
from ..errors import CheckpointError, RenderCancelled
from . import occupancy as occ
from .backbone import Backbone
from .decoder import (
    OSGDecoder,
    PlaneTable,
    channels_last_planes,
    lookup,
    plane_table,
    reference_plane_axes,
    sample_from_planes,
)
from .superres import build_superresolution
from .volume import (
    SAMPLING_MODES,
    depths_between,
    importance_depths,
    march_weights,
    sample_coefficients,
    sample_rays,
    sort_samples,
    stratified_depths,
)

PLANE_CHANNELS = 32
PLANE_RESOLUTION = 256
CHUNK_POINTS = 1024 * 48
"""Points per decoder pass of one ray chunk (1024 rays of EG3D's 48 + 48 samples): a chunk's samples
stay in the CPU's caches, and per-chunk overhead stays small (measured best of 256-4096 rays)."""
CHUNK_POINTS_GPU = 2**22
"""The same on a GPU, where a frame's 128^2 x 48 points go as one chunk (fewer, larger kernels)."""
TABLE_CACHE_SIZE = 2
"""PlaneTables kept per generator (the last latents rendered)."""
_TABLE_LOCK = threading.Lock()
RANGE_SHIFT_MIN = 1e-4
"""Camera-distance changes (world units) below this keep the model's own ray range: at the model's
camera radius the render is exactly the reference's."""

_MAPPING_KEYS = {"num_layers", "lr_multiplier", "embed_features", "layer_features"}
_MAPPING_IGNORED = {"w_avg_beta", "activation"}
_SYNTHESIS_KEYS = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp"}
_INIT_IGNORED = {
    "class_name",
    "z_dim",
    "c_dim",
    "w_dim",
    "img_resolution",
    "img_channels",
    "mapping_kwargs",
    "rendering_kwargs",
    "sr_kwargs",
    "sr_num_fp16_res",
    "fused_modconv_default",
    "architecture",
    "plane_resolution",
}


def _split_init_kwargs(init_kwargs: dict[str, Any]) -> tuple[dict, dict]:
    """Mapping and backbone-synthesis kwargs from the reference's constructor kwargs; unknown options raise."""
    mk = dict(init_kwargs.get("mapping_kwargs") or {})
    if mk.get("activation", "lrelu") != "lrelu":
        raise ValueError(f"unsupported mapping activation {mk['activation']!r}")
    unknown = set(mk) - _MAPPING_KEYS - _MAPPING_IGNORED
    unknown |= set(init_kwargs) - _INIT_IGNORED - _SYNTHESIS_KEYS
    if init_kwargs.get("architecture", "skip") != "skip":
        raise ValueError(f"unsupported backbone architecture {init_kwargs['architecture']!r}")
    if unknown:
        raise ValueError(f"unsupported generator options: {', '.join(sorted(unknown))}")
    mapping = {k: v for k, v in mk.items() if k in _MAPPING_KEYS}
    synthesis = {k: init_kwargs[k] for k in _SYNTHESIS_KEYS if k in init_kwargs}
    return mapping, synthesis


class TriPlaneGenerator(nn.Module):
    """EG3D generator built from a ModelSpec; parameter names match the reference's state dict."""

    dataset_label_std: torch.Tensor  # buffers (registered in __init__)
    plane_axes: torch.Tensor

    def __init__(self, spec: ModelSpec):
        super().__init__()
        ik = spec.init_kwargs
        self.spec = spec
        self.z_dim, self.c_dim, self.w_dim = int(ik["z_dim"]), int(ik["c_dim"]), int(ik["w_dim"])
        self.img_resolution = int(ik["img_resolution"])
        self.img_channels = int(ik.get("img_channels", 3))
        self.rendering_kwargs = dict(spec.rendering_kwargs)
        self.neural_rendering_resolution = int(spec.neural_rendering_resolution)
        rk = self.rendering_kwargs
        if rk.get("clamp_mode", "softplus") != "softplus":
            raise ValueError(f"unsupported clamp_mode {rk['clamp_mode']!r} (the reference only supports 'softplus')")
        if rk.get("disparity_space_sampling", False):
            raise ValueError("disparity_space_sampling is not supported")
        mapping_kwargs, synthesis_kwargs = _split_init_kwargs(ik)
        self.plane_resolution = int(ik.get("plane_resolution", PLANE_RESOLUTION))
        """Tri-plane size: 256 in every EG3D checkpoint; smaller for compact models (a project extension)."""
        self.backbone = Backbone(
            self.z_dim,
            self.c_dim,
            self.w_dim,
            self.plane_resolution,
            PLANE_CHANNELS * 3,
            mapping_kwargs,
            **synthesis_kwargs,
        )
        self.num_ws = self.backbone.num_ws
        self.superresolution = build_superresolution(
            rk["superresolution_module"],
            PLANE_CHANNELS,
            self.w_dim,
            use_fp16=int(ik.get("sr_num_fp16_res", 0)) > 0,
            sr_antialias=bool(rk.get("sr_antialias", True)),
        )
        if rk.get("sr_background") is not None:  # a project extension, declared by the built-in model
            self.superresolution.background = float(rk["sr_background"])
        self.decoder = OSGDecoder(PLANE_CHANNELS, output_dim=32, lr_mul=float(rk.get("decoder_lr_mul", 1)))
        self.register_buffer("dataset_label_std", torch.zeros([self.c_dim]))
        axes = reference_plane_axes() if spec.plane_axes is None else torch.tensor(spec.plane_axes, dtype=torch.float32)
        if axes.shape != (3, 3, 3):
            raise ValueError(f"plane_axes must be 3x3x3, got {tuple(axes.shape)}")
        self.register_buffer("plane_axes", axes, persistent=False)
        self._tables: dict[tuple, tuple[torch.Tensor, PlaneTable]] = {}
        self.eval().requires_grad_(False)

    # ----------------------------------------------------------------- state
    def __getstate__(self) -> dict:
        """A copy (deepcopy, pickle) starts with no cached plane tables: their keys are the data pointers of the
        original's planes, which the allocator may hand to the copy's own planes once the original frees them
        (the copy would then sample a stale table; the photo fit's tuned model is such a copy)."""
        state = super().__getstate__()
        state["_tables"] = {}
        return state

    def load_state(self, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Copy tensors in by name; missing, unexpected or mis-shaped entries raise CheckpointError."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        bad = [
            f"{k}: {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
            for k, v in own.items()
            if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
        ]
        problems = []
        if missing:
            problems.append(f"missing tensors {_short(missing)}")
        if unexpected:
            problems.append(f"unexpected tensors {_short(unexpected)}")
        if bad:
            problems.append(f"shape mismatch {_short(bad)}")
        if problems:
            raise CheckpointError(f"{source}: tensors do not fit the model config: " + "; ".join(problems))
        with torch.no_grad():
            for k, v in own.items():
                src = state_dict[k]
                if not src.dtype.is_floating_point and v.dtype.is_floating_point:
                    raise CheckpointError(f"{source}: tensor {k} has non-float dtype {src.dtype}")
                v.copy_(src)

    def num_parameters(self) -> int:
        """Number of trainable parameters (buffers excluded)."""
        return sum(p.numel() for p in self.parameters())

    # ----------------------------------------------------------------- mapping
    def mapping(
        self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """z (N, z_dim), camera c (N, 25) -> ws (N, num_ws, w_dim); conditioning scaled as the reference does."""
        if self.rendering_kwargs.get("c_gen_conditioning_zero"):
            c = torch.zeros_like(c)
        c = c * self.rendering_kwargs.get("c_scale", 0)
        return self.backbone.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    # ----------------------------------------------------------------- planes
    @torch.no_grad()
    def planes(
        self, ws: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """ws (N, num_ws, w_dim) -> tri-planes (N, 3, 32, P, P), P = plane_resolution (256 for EG3D)."""
        p = self.backbone.synthesis(ws, noise_mode=noise_mode, generator=generator)
        return channels_last_planes(p.view(len(p), 3, PLANE_CHANNELS, p.shape[-2], p.shape[-1]))

    @torch.no_grad()
    def sample(self, points: torch.Tensor, planes: torch.Tensor) -> dict[str, torch.Tensor]:
        """points (N, M, 3) in world units -> {'sigma': (N, M, 1) raw pre-activation, 'rgb': (N, M, 32)}.

        The renderer's row-wise path (lookup + RowDecoder) in cache-sized chunks."""
        n, m, _ = points.shape
        out = torch.empty((n, m, 1 + self.decoder.output_dim), device=points.device)
        step = _chunk_points(points.device)
        decode = self.decoder.rows(points.device)
        for i in range(n):
            table = self._plane_table(planes, i)
            for a in range(0, m, step):
                out[i, a : a + step] = decode(lookup(table, points[i, a : a + step]))
        sigma = out[..., :1]
        sigma = self._with_density_noise(sigma)
        return {"sigma": sigma, "rgb": out[..., 1:]}

    def _with_density_noise(self, sigma: torch.Tensor) -> torch.Tensor:
        """sigma plus the model's `density_noise` (a training regulariser; none for released models)."""
        noise_std = self.rendering_kwargs.get("density_noise", 0) or 0
        return sigma + torch.randn_like(sigma) * noise_std if noise_std > 0 else sigma

    def _decode(self, points: torch.Tensor, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (N, M, 3) -> colour features (N, 32, M), raw sigma (N, 1, M): points on the last axis."""
        feats = sample_from_planes(self.plane_axes, planes, points, self.rendering_kwargs["box_warp"])
        rgb, sigma = self.decoder(feats)
        sigma = self._with_density_noise(sigma)
        return rgb, sigma

    # ----------------------------------------------------------------- rendering
    @torch.no_grad()
    def render_planes(
        self,
        planes: torch.Tensor,
        ws: torch.Tensor,
        c: torch.Tensor,
        sampling: str = "deterministic",
        neural_rendering_resolution: int | None = None,
        depth_multiplier: float = 1.0,
        importance_multiplier: float | None = None,
        generator: torch.Generator | None = None,
        superresolution: bool = True,
        raw_aliasing: bool = False,
        skip_empty: bool | None = None,
        occupancy: "occ.OccupancyGrid | None" = None,
        ray_range: tuple | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Render cached planes from cameras c (N, 25).

        Returns 'image' (N,3,R,R, not clamped; absent when superresolution=False), 'image_raw'
        (N,3,r,r) on [-1,1], 'image_depth' (N,1,r,r) ray distance, 'image_alpha' (N,1,r,r)
        accumulated opacity, 'features' (N,32,r,r) the whole rendered feature image.
        `raw_aliasing` reproduces the reference's in-place update of
        image_raw by same-resolution SR blocks (2X/4X modules at their input resolution).
        `skip_empty` (default: when the model declares an occupancy grid) samples rays only over
        occupied cells of `occupancy` (built from the planes when not given; see renderer.model.occupancy).
        The ray range follows the camera (`ray_range_for`): the model's [ray_start, ray_end] moved by the
        camera's distance to the origin less the model's camera radius, so a zoomed camera keeps the object;
        a given `ray_range` applies to the whole batch instead (no device-to-host copy of c: capturable).
        `should_stop()` is asked between ray chunks; when it says True the render raises RenderCancelled.
        """
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, not {sampling!r}")
        res = int(neural_rendering_resolution or self.neural_rendering_resolution)
        rk = self.rendering_kwargs
        n_coarse = max(2, int(rk["depth_resolution"] * depth_multiplier))
        imp_mult = depth_multiplier if importance_multiplier is None else importance_multiplier
        n_fine = int(rk["depth_resolution_importance"] * imp_mult)
        if res < 1 or n_coarse < 3 and n_fine > 0:
            raise ValueError("neural rendering resolution must be >= 1 and depth samples >= 3")
        draw = None
        if sampling == "stochastic":

            def draw(shape):
                return torch.rand(
                    shape, generator=generator, device=ws.device if generator is None else generator.device
                )

        cam2world = c[:, :16].view(-1, 4, 4)
        intrinsics = c[:, 16:25].view(-1, 3, 3)
        origins, dirs = sample_rays(cam2world, intrinsics, res)
        n = origins.shape[0]
        ranges = [ray_range] * n if ray_range is not None else [self.ray_range_for(row) for row in c.detach().cpu()]
        occupied = occ.declared(self) if skip_empty is None else skip_empty
        grid = (occupancy if occupancy is not None else occ.build(self, planes)) if occupied else None

        def render(i: int, j: int, r: tuple):
            """Cameras i..j-1 over the ray range r (occupied cells only where the model declares a grid)."""
            if grid is not None:
                return self._render_occupied(
                    planes[i:j], origins[i:j], dirs[i:j], n_coarse, n_fine, draw, grid, r, should_stop
                )
            return self._render_rays(
                planes[i:j], origins[i:j], dirs[i:j], n_coarse, n_fine, draw, ray_range=r, should_stop=should_stop
            )

        if all(r == ranges[0] for r in ranges):  # one range for the batch (always at the model's radius)
            rgb, depth, alpha = render(0, n, ranges[0])
        else:  # cameras at different distances: each with its own range (its own depth clamp too)
            rgb, depth, alpha = (torch.cat(t) for t in zip(*(render(i, i + 1, ranges[i]) for i in range(n))))
        feature_image = rgb.reshape(n, rgb.shape[1], res, res)
        depth_image = depth.reshape(n, 1, res, res)
        alpha_image = alpha.reshape(n, 1, res, res)
        out = {
            "image_raw": feature_image[:, :3],
            "image_depth": depth_image,
            "image_alpha": alpha_image,
            "features": feature_image,
        }
        if superresolution:
            out["image"] = self.superresolve(out, ws, raw_aliasing=raw_aliasing, generator=generator)
        return out

    def ray_range_for(self, camera) -> tuple:
        """[ray_start, ray_end] for a 25-value camera (host values): the model's own range, moved along the
        ray by how much farther the camera is from the world origin (the centre of the sphere the model's
        cameras sit on) than `avg_camera_radius` ('auto' ranges, from the box, follow the camera already).
        Unchanged within RANGE_SHIFT_MIN of the radius."""
        rk = self.rendering_kwargs
        start, end = rk["ray_start"], rk["ray_end"]
        if isinstance(start, str) or "avg_camera_radius" not in rk:
            return start, end
        cam = [float(v) for v in camera]
        distance = math.hypot(cam[3], cam[7], cam[11])  # the translation column of the 4x4 cam2world
        shift = distance - float(rk["avg_camera_radius"])
        if abs(shift) < RANGE_SHIFT_MIN:
            return start, end
        start = max(float(start) + shift, 1e-3 * (float(end) - float(start)))  # never behind the camera
        return start, max(float(end) + shift, start + 1e-3)

    @torch.no_grad()
    def superresolve(
        self,
        rendered: dict[str, torch.Tensor],
        ws: torch.Tensor,
        raw_aliasing: bool = False,
        generator: torch.Generator | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> torch.Tensor:
        """Final image (N, 3, R, R) from a render_planes result ('image_raw' and 'features') and ws;
        `should_stop()` is asked between the two blocks (RenderCancelled when True)."""
        rgb = rendered["image_raw"] if raw_aliasing else rendered["image_raw"].clone()
        return self.superresolution(
            rgb,
            rendered["features"],
            ws,
            noise_mode=self.rendering_kwargs.get("superresolution_noise_mode", "none"),
            generator=generator,
            between_blocks=None if should_stop is None else lambda: RenderCancelled.check(should_stop),
        )

    def _render_occupied(
        self,
        planes,
        origins,
        dirs,
        n_coarse: int,
        n_fine: int,
        draw: Callable | None,
        grid: "occ.OccupancyGrid",
        ray_range: tuple,
        should_stop: Callable[[], bool] | None = None,
    ):
        """_render_rays on the rays that meet occupied cells, with samples spread over [first, last] cell;
        the other rays are background (opacity 0, depth ray_end, no decoder work)."""
        rk = self.rendering_kwargs
        n, m, _ = origins.shape
        near, far, hit = occ.ray_ranges(grid, origins, dirs, *ray_range)
        background = 1.0 if rk.get("white_back", False) else -1.0
        rgb = torch.full((n, self.decoder.output_dim, m), background, device=origins.device)
        depth = torch.full((n, 1, m), float(ray_range[1]), device=origins.device)
        alpha = torch.zeros((n, 1, m), device=origins.device)
        for i in range(n):
            rays = hit[i].nonzero()[:, 0]
            if len(rays) == 0:
                continue
            limits = (near[i : i + 1, rays], far[i : i + 1, rays])
            r, d, a = self._render_rays(
                planes[i : i + 1],
                origins[i : i + 1, rays],
                dirs[i : i + 1, rays],
                n_coarse,
                n_fine,
                draw,
                limits,
                should_stop=should_stop,
            )
            rgb[i, :, rays], depth[i, :, rays], alpha[i, :, rays] = r[0], d[0], a[0]
        return rgb, depth, alpha

    def _render_rays(
        self,
        planes,
        origins,
        dirs,
        n_coarse: int,
        n_fine: int,
        draw: Callable | None,
        limits: tuple[torch.Tensor, torch.Tensor] | None = None,
        ray_range: tuple | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        """Coarse pass, importance pass, merge and march -> features (N,32,M), depth (N,1,M), alpha (N,1,M).

        Rays go through in chunks of about CHUNK_POINTS samples per pass, so they stay in the CPU's caches
        (no 100 MB intermediates), with the tri-plane lookup as one embedding_bag per pass (`lookup`).
        Colours are never sorted or averaged per interval: the marcher's weights become per-sample
        coefficients on the unsorted samples (same sum, far less memory traffic). Random draws
        keep the reference's order (all jitter, then all importance positions), and depth is
        clamped to the whole batch's sample range as the reference's marcher does.
        `limits` (near, far) (N, M, 1) replace the ray range per ray; else `ray_range` (default: the
        model's) applies to all. `should_stop()` is asked before each chunk (RenderCancelled when True).
        """
        rk = self.rendering_kwargs
        n, m, _ = origins.shape
        if limits is None:
            start, end = ray_range or (rk["ray_start"], rk["ray_end"])
            depths_c = stratified_depths(origins, dirs, start, end, n_coarse, rk["box_warp"], draw)
        else:
            depths_c = depths_between(*limits, n_coarse, draw)
        u = draw((n * m, n_fine)).view(n, m, n_fine) if draw is not None and n_fine > 0 else None
        rgb = torch.empty((n, self.decoder.output_dim, m), device=origins.device)
        depth = torch.empty((n, 1, m), device=origins.device)
        alpha = torch.empty((n, 1, m), device=origins.device)
        lo, hi = [], []
        rays = max(1, _chunk_points(origins.device) // max(n_coarse, n_fine))
        decode = self.decoder.rows(origins.device)
        for i in range(n):
            field = (self._plane_table(planes, i), decode)
            for a in range(0, m, rays):
                RenderCancelled.check(should_stop)
                b = min(m, a + rays)
                r, d, al, samples = self._render_chunk(
                    field, origins[i, a:b], dirs[i, a:b], depths_c[i, 0, a:b], n_fine, None if u is None else u[i, a:b]
                )
                rgb[i, :, a:b], depth[i, 0, a:b], alpha[i, 0, a:b] = r.t(), d, al
                lo.append(samples.min())
                hi.append(samples.max())
        depth = torch.clamp(depth, torch.stack(lo).min(), torch.stack(hi).max())
        if rk.get("white_back", False):
            rgb = rgb + 1 - alpha
        return rgb * 2 - 1, depth, alpha

    def _render_chunk(self, field: tuple, origins, dirs, depths_c, n_fine: int, u: torch.Tensor | None):
        """Rays (R, 3) with coarse depths (R, Dc) through `field` (PlaneTable, RowDecoder) ->
        features (R, 32), unclamped depth (R,), alpha (R,), and the sorted sample depths (R, Dc + n_fine)
        that bound the batch's depth clamp."""
        colors_c, sigma_c = self._decode_depths(field, origins, dirs, depths_c)
        dc, sc = depths_c[None, None], sigma_c[None, None]  # the marcher's (N, 1, M, S) layout
        if n_fine == 0:
            weights, depth, alpha = march_weights(sc, dc, clamp_depth=False)
            coef = sample_coefficients(weights)[0, 0]
            rgb = torch.bmm(coef.unsqueeze(1), colors_c)[:, 0]
            return rgb, depth[0, 0], alpha[0, 0], depths_c
        coarse_w, _, _ = march_weights(sc, dc, clamp_depth=False)
        depths_f = importance_depths(dc, coarse_w, n_fine, None if u is None else (lambda shape: u))[0, 0]
        colors_f, sigma_f = self._decode_depths(field, origins, dirs, depths_f)
        depths, sigma, idx = sort_samples(dc, sc, depths_f[None, None], sigma_f[None, None])
        weights, depth, alpha = march_weights(sigma, depths, clamp_depth=False)
        coef = torch.empty_like(depths).scatter_(-1, idx, sample_coefficients(weights))[0, 0].unsqueeze(1)
        n_coarse = depths_c.shape[-1]
        rgb = torch.bmm(coef[..., :n_coarse], colors_c).add_(torch.bmm(coef[..., n_coarse:], colors_f))[:, 0]
        return rgb, depth[0, 0], alpha[0, 0], depths[0, 0]

    def _decode_depths(self, field: tuple, origins, dirs, depths):
        """Rays (R, 3) at depths (R, S) -> colours (R, S, 32), raw sigma (R, S) (inference only)."""
        r, s = depths.shape
        table, decode = field
        pts = (origins.unsqueeze(-2) + depths[..., None] * dirs.unsqueeze(-2)).reshape(-1, 3)
        out = decode(lookup(table, pts))
        sigma = out[:, 0]
        sigma = self._with_density_noise(sigma)
        return out[:, 1:].view(r, s, -1), sigma.view(r, s)

    def _plane_table(self, planes: torch.Tensor, i: int) -> PlaneTable:
        """The PlaneTable of planes[i], cached for the last few plane tensors seen (keyed by storage and
        version, holding the planes so the key stays theirs)."""
        version = None if planes.is_inference() else planes._version  # inference tensors keep no version
        key = (planes.data_ptr(), tuple(planes.shape), planes.stride(), version, planes.dtype, i)
        with _TABLE_LOCK:
            hit = self._tables.get(key)
        if hit is None:
            hit = (planes, plane_table(self.plane_axes, planes[i], self.rendering_kwargs["box_warp"]))
            with _TABLE_LOCK:
                while len(self._tables) >= TABLE_CACHE_SIZE:
                    self._tables.pop(next(iter(self._tables)))
                self._tables[key] = hit
        return hit[1]

    def _query(self, planes, origins, dirs, depths):
        """Decode points origin + t*dir for depths (N,1,M,S) -> colours (N,32,M,S), raw sigma (N,1,M,S)
        (the autograd-friendly path that training uses)."""
        n, _, m, s = depths.shape
        pts = (origins.unsqueeze(-2) + depths[:, 0, :, :, None] * dirs.unsqueeze(-2)).reshape(n, -1, 3)
        rgb, sigma = self._decode(pts, planes)
        return rgb.view(n, -1, m, s), sigma.view(n, 1, m, s)

    @torch.no_grad()
    def synthesis(
        self,
        ws: torch.Tensor,
        c: torch.Tensor,
        noise_mode: str = "const",
        sampling: str = "deterministic",
        neural_rendering_resolution: int | None = None,
        **render_kwargs,
    ) -> dict[str, torch.Tensor]:
        """ws (N, num_ws, w_dim) + camera c (N, 25) -> {'image', 'image_raw', 'image_depth', 'image_alpha'}."""
        generator = render_kwargs.get("generator")
        planes = self.planes(ws, noise_mode=noise_mode, generator=generator)
        return self.render_planes(
            planes, ws, c, sampling=sampling, neural_rendering_resolution=neural_rendering_resolution, **render_kwargs
        )

    @torch.no_grad()
    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> dict[str, torch.Tensor]:
        """Mapping (conditioned on the render camera) followed by synthesis."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, c, **synthesis_kwargs)


def _chunk_points(device: torch.device) -> int:
    """Points decoded per pass on this device (CHUNK_POINTS on a CPU, CHUNK_POINTS_GPU elsewhere)."""
    return CHUNK_POINTS if device.type == "cpu" else CHUNK_POINTS_GPU


def _short(items: list[str], limit: int = 4) -> str:
    """First few entries of a list, for error messages."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
