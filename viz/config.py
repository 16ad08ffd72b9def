"""How the viewer starts: its command-line options as one typed dataclass (the composition root reads it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .gfx.present import Interop

DEFAULT_OUT_DIR = str(Path("~") / "Pictures" / "triplane-viz")
"""Where saved renders, meshes and videos go unless told otherwise: per user, never the working folder."""


@dataclass
class AppConfig:
    """How to start the viewer (the command-line options)."""

    checkpoint: str | None = None
    device: str = "cpu"
    interop: Interop = "auto"
    width: int = 1280
    height: int = 800
    headless: bool = False
    """GLFW's NULL platform + EGL: no X server needed, nothing visible (screenshots, CI)."""
    visible: bool = True
    debug_gl: bool = False
    """Check glGetError after every frame; errors are logged and counted."""
    title: str = "triplane-viz"
    max_fps: float = 60.0
    """UI frame-rate cap, so the UI loop leaves the CPU to the render thread."""
    idle_trim_s: float = 5.0
    """Seconds without rendering or loading after which the heap's free pages go back to the OS (the render
    memory policy, renderer/engine/memory.py, keeps them while frames come)."""
    torch_threads: int | None = 2
    out_dir: str = DEFAULT_OUT_DIR
    log: Callable[[str], None] | None = None
    adaptive: bool = True
    """Render cheaper previews while the view moves (see viz/resolution.py); full quality at rest."""
    target_ms: float = 100.0
    """Frame time the previews aim for."""
    bf16_previews: bool | None = False
    """Render previews under bf16 autocast; None: where the model runs on a CPU with bf16 units. Off by default:
    the fp32 path's fused oneDNN kernels now beat it (bf16 previews measure 0.5-0.9x of fp32 in
    bench/bench_orbit.py), and each new preview size first pays oneDNN's bf16 set-up."""


def device_name(device: str) -> str:
    """The torch device as the performance panel names it (with the GPU's name on CUDA)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device
