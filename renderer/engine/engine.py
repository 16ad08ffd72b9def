"""RenderEngine: the one render(request) call shared by the viewer and the CLI.

A request (renderer.engine.request) is a frozen description of a frame (latent, truncation,
cameras, render options). The engine caches ws and tri-planes per (latent, truncation,
conditioning, noise), so a camera move or a view switch never re-runs mapping or the backbone.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import RenderCancelled
from ..model import occupancy as occ
from ..model.generator import TriPlaneGenerator
from ..model.occupancy import OccupancyGrid
from .cuda_graphs import FrameGraphs, capturable
from .latents import seed_z, slerp
from .request import LatentSpec, RenderRequest, RenderResult


@dataclass
class EngineStats:
    """Counters for tests and the performance panel."""

    mapping_calls: int = 0
    backbone_calls: int = 0
    renders: int = 0


def _plane_key(req: RenderRequest) -> tuple:
    """What a request's tri-planes depend on."""
    return (req.latent, req.psi, req.cutoff, req.cond_camera, req.noise_mode)


class RenderEngine:
    """Model + caches + render(request). Not thread-safe: one render thread owns it."""

    def __init__(self, G: TriPlaneGenerator, cache_size: int = 4, timed: bool = True, cuda_graphs: bool = True):
        self.G = G
        self.device = next(G.parameters()).device
        self.cache_size = cache_size
        self.timed = timed
        self.stats = EngineStats()
        self.graphs = FrameGraphs() if cuda_graphs and self.device.type == "cuda" else None
        """Camera-only frames replayed from CUDA graphs (GPU only; see renderer/engine/cuda_graphs.py)."""
        self.custom_latents: dict[str, torch.Tensor] = {}
        """Named ws (1, num_ws, w_dim) that LatentSpec.custom refers to (fitted latents)."""
        self._ws: OrderedDict = OrderedDict()
        self._planes: OrderedDict = OrderedDict()
        self._grids: OrderedDict = OrderedDict()

    # ----------------------------------------------------------------- latents
    def _tensor(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)

    def _map(self, z: np.ndarray, req: RenderRequest) -> torch.Tensor:
        self.stats.mapping_calls += 1
        c = self._tensor(req.cond_camera)[None]
        return self.G.mapping(self._tensor(z), c, truncation_psi=req.psi, truncation_cutoff=req.cutoff)

    def _seed_ws(self, seed: float, req: RenderRequest) -> torch.Tensor:
        lo = math.floor(seed)
        frac = seed - lo
        w = self._map(seed_z(lo, self.G.z_dim), req)
        if frac > 0:
            w = torch.lerp(w, self._map(seed_z(lo + 1, self.G.z_dim), req), frac)
        return w

    def _seed_z(self, seed: float) -> np.ndarray:
        lo = math.floor(seed)
        frac = seed - lo
        z = seed_z(lo, self.G.z_dim)
        return slerp(z, seed_z(lo + 1, self.G.z_dim), frac) if frac > 0 else z

    def _blend_ws(self, lat: LatentSpec, req: RenderRequest) -> torch.Tensor:
        """ws of one latent's seed / seed_b / t (its blend_to aside), in its space."""
        if lat.seed_b is None or lat.t == 0:
            return self._seed_ws(lat.seed, req)
        if lat.space == "z":
            return self._map(slerp(self._seed_z(lat.seed), self._seed_z(lat.seed_b), lat.t), req)
        return torch.lerp(self._seed_ws(lat.seed, req), self._seed_ws(lat.seed_b, req), float(lat.t))

    def _blend_z(self, lat: LatentSpec) -> np.ndarray:
        """z of one latent's seed / seed_b / t (its blend_to aside), blended along the great circle."""
        z = self._seed_z(lat.seed)
        return z if lat.seed_b is None or lat.t == 0 else slerp(z, self._seed_z(lat.seed_b), lat.t)

    def set_custom_latent(self, name: str, ws) -> None:
        """Register ws (num_ws, w_dim) or (1, num_ws, w_dim) under `name` for LatentSpec(custom=name); a name
        given again replaces its ws and drops what was cached for it."""
        a = np.asarray(ws, dtype=np.float32)
        shape = (self.G.num_ws, self.G.w_dim)
        if a.shape not in (shape, (1, *shape)) or not np.isfinite(a).all():
            raise ValueError(
                f"custom latent {name!r}: needs {shape[0]} x {shape[1]} finite values, not an array of shape {a.shape}"
            )
        t = torch.as_tensor(a, device=self.device).reshape(1, *shape)
        self.custom_latents[name] = t
        for cache in (self._ws, self._planes, self._grids):
            for key in [k for k in cache if k[0].custom == name]:
                del cache[key]

    def ws_for(self, req: RenderRequest) -> torch.Tensor:
        """ws (1, num_ws, w_dim) of a request's latent, truncation and conditioning (cached)."""
        key = (req.latent, req.psi, req.cutoff, req.cond_camera)
        if key in self._ws:
            self._ws.move_to_end(key)
            return self._ws[key]
        lat = req.latent
        if lat.custom is not None:
            if lat.custom not in self.custom_latents:
                raise ValueError(f"no custom latent named {lat.custom!r} (RenderEngine.set_custom_latent)")
            return self._remember(self._ws, key, self.custom_latents[lat.custom])
        blends = (lat.seed_b is not None and lat.t != 0) or (lat.blend_to is not None and lat.blend_t != 0)
        if blends and lat.space not in ("w", "z"):
            raise ValueError(f"interpolation space must be 'w' or 'z', not {lat.space!r}")
        if lat.blend_to is None or lat.blend_t == 0:
            ws = self._blend_ws(lat, req)
        elif lat.space == "z":
            ws = self._map(slerp(self._blend_z(lat), self._blend_z(lat.blend_to), lat.blend_t), req)
        else:
            ws = torch.lerp(self._blend_ws(lat, req), self._blend_ws(lat.blend_to, req), float(lat.blend_t))
        if lat.mix_seed is not None:
            mix = self._seed_ws(lat.mix_seed, req)
            end = self.G.num_ws if lat.mix_end is None else lat.mix_end
            ws = ws.clone()
            ws[:, lat.mix_start : end] = mix[:, lat.mix_start : end]
        return self._remember(self._ws, key, ws)

    def _remember(self, cache: OrderedDict, key, value):
        cache[key] = value
        while len(cache) > self.cache_size:
            cache.popitem(last=False)
        return value

    # ----------------------------------------------------------------- render
    def planes_for(self, req: RenderRequest, ws: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Tri-planes for a request (cached unless noise is random); returns (planes, backbone_ran)."""
        calls = self.stats.backbone_calls
        planes = self._per_latent(self._planes, req, lambda: self._backbone(ws, req.noise_mode))
        return planes, self.stats.backbone_calls > calls

    def _backbone(self, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
        self.stats.backbone_calls += 1
        return self.G.planes(ws, noise_mode=noise_mode)

    def occupancy_for(self, req: RenderRequest, planes: torch.Tensor) -> OccupancyGrid | None:
        """The empty-space grid of a request's planes when the model declares one (cached with the planes)."""
        if not occ.declared(self.G):
            return None
        return self._per_latent(self._grids, req, lambda: occ.build(self.G, planes))

    def _per_latent(self, cache: OrderedDict, req: RenderRequest, make):
        """make()'s value for a request's latent, from `cache` (LRU) unless noise is random (never cached)."""
        if req.noise_mode == "random":
            return make()
        key = _plane_key(req)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        return self._remember(cache, key, make())

    def _sync(self):
        if self.timed and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.no_grad()
    def render(self, req: RenderRequest, should_stop: Callable[[], bool] | None = None) -> RenderResult:
        """Render one request; only the stages whose inputs changed since a cached request run.

        `should_stop()` is asked between stages and between ray chunks: when it says True the render
        raises RenderCancelled (what finished stays cached: ws, planes)."""

        clock = time.perf_counter
        t0 = clock()
        ws = self.ws_for(req)
        RenderCancelled.check(should_stop)
        self._sync()
        t1 = clock()
        planes, ran = self.planes_for(req, ws)
        RenderCancelled.check(should_stop)
        grid = self.occupancy_for(req, planes)
        self._sync()
        t2 = clock()
        ray_range = self.G.ray_range_for(req.camera)  # from the host tuple: nothing to synchronise
        cam = self._tensor(req.camera)[None]
        gen = None
        if req.sampling == "stochastic" and req.rng_seed is not None:
            gen = torch.Generator(self.device).manual_seed(req.rng_seed)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=req.bf16):  # matmuls and convs

            def render(c: torch.Tensor, occupancy=None, stop=should_stop):
                return self.G.render_planes(
                    planes,
                    ws,
                    c,
                    sampling=req.sampling,
                    generator=gen,
                    neural_rendering_resolution=req.neural_rendering_resolution,
                    depth_multiplier=req.depth_multiplier,
                    importance_multiplier=req.importance_multiplier,
                    superresolution=False,
                    occupancy=occupancy,
                    ray_range=ray_range,
                    should_stop=stop,
                )

            if self.graphs is not None and req.sampling == "deterministic" and grid is None and capturable(self.G):

                def frame(c: torch.Tensor):  # fixed shapes, no host synchronisation: capturable
                    o = render(c, stop=None)  # a replay is not interruptible: never raise inside a capture
                    return o, (self.G.superresolve(o, ws) if req.superresolution else None)

                key = (
                    req.neural_rendering_resolution,
                    req.depth_multiplier,
                    req.importance_multiplier,
                    req.superresolution,
                    req.bf16,
                    ray_range,
                )
                out, image = self.graphs.frame(key, planes, ws, cam, frame)
                image = image[0] if image is not None else None
                self._sync()
                t3 = clock()  # render and super-resolution are one replay: all of it counts as render
            else:
                out = render(cam, grid)
                RenderCancelled.check(should_stop)
                self._sync()
                t3 = clock()
                image = self.G.superresolve(out, ws, should_stop=should_stop)[0] if req.superresolution else None
        self._sync()
        t4 = clock()
        self.stats.renders += 1
        out = {k: v.float() for k, v in out.items()}  # no-ops unless bf16
        image = image.float() if image is not None else None
        parts = [out["image_raw"], out["image_depth"]] + ([image] if image is not None else [])
        nonfinite = not all(bool(torch.isfinite(p).all()) for p in parts)
        ms = lambda a, b: (b - a) * 1000.0  # noqa: E731
        return RenderResult(
            stamp=req.stamp,
            image=image,
            raw=out["image_raw"][0],
            depth=out["image_depth"][0],
            alpha=out["image_alpha"][0],
            ws=ws,
            backbone_ran=ran,
            nonfinite=nonfinite,
            planes=planes,
            features=out["features"][0],
            timings={
                "mapping": ms(t0, t1),
                "backbone": ms(t1, t2),
                "render": ms(t2, t3),
                "superres": ms(t3, t4) if image is not None else 0.0,
            },
        )
