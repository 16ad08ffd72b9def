"""The render engine: one `render(request)` call shared by the viewer, the CLI and the exports.

* engine.py: `RenderEngine` (ws, planes and occupancy cached per latent) and its `EngineStats`.
* request.py: `LatentSpec`, `RenderRequest` (frozen, hashable: the cache and de-duplication key),
  `RenderResult`.
* latents.py: `seed_z` (a seed's z, as the reference scripts draw it) and `slerp`.
* cuda_graphs.py: camera-only frames replayed from CUDA graphs on a GPU.
* frames.py: render outputs as 8-bit pixels (PNG views) and the viewer's RGBA8 display frames.
* memory.py: the process memory policy for rendering; cpu.py: what CPU this is (ISA features).
"""

from .engine import EngineStats, RenderEngine
from .latents import seed_z, slerp
from .request import LatentSpec, RenderRequest, RenderResult

__all__ = ["EngineStats", "LatentSpec", "RenderEngine", "RenderRequest", "RenderResult", "seed_z", "slerp"]
