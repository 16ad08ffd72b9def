"""Exports started from the viewer, of exactly what is on screen: meshes and videos (on the export thread,
viz/jobs/exporter.py), depth maps and screenshots with metadata (written at once). File names say which latent
they hold; errors go to the status line in the window's words."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from renderer.engine import LatentSpec, RenderEngine
from renderer.errors import ExportError
from renderer.export.files import next_free
from renderer.export.mesh import default_level, export_mesh
from renderer.export.screenshot import save_depth, save_screenshot, screenshot_metadata
from renderer.export.video import VideoSpec, write_video
from renderer.seeds import seed_label

from .jobs.exporter import ExportJob, window_words

if TYPE_CHECKING:
    from .host import WidgetHost
    from .session import FrameOut


def out_folder(app: WidgetHost) -> Path:
    """The output folder the Export panel names (~ expanded; not created here)."""
    return Path(os.path.expanduser(app.ui.out_dir or "."))


def _seed_name(out: FrameOut) -> str:
    """What a file holds, by the latent on screen: 'seed5.80', 'seed5-to-7-t0.37', '...-mix3'."""
    return latent_name(out.job.request.latent)


def latent_name(lat: LatentSpec) -> str:
    """File-name part naming a latent exactly (seeds as renderer.seeds.seed_label prints them)."""
    name = f"seed{seed_label(lat.seed)}"
    if lat.seed_b is not None:
        name += f"-to-{seed_label(lat.seed_b)}-t{lat.t:.2f}"
    if lat.mix_seed is not None:
        name += f"-mix{seed_label(lat.mix_seed)}"
    return name


def _target(app: WidgetHost, typed: str, stem: str, suffix: str) -> Path:
    """The typed path (relative ones inside the output folder), or the next free automatic name."""
    if typed.strip():
        p = Path(os.path.expanduser(typed.strip()))
        return p if p.is_absolute() else out_folder(app) / p
    return next_free(out_folder(app), stem, suffix)


def _shown(app: WidgetHost) -> FrameOut:
    out = app.shown
    if out is None or app.model is None:
        raise ExportError("nothing to export yet: no render on screen")
    return out


def start_mesh(app: WidgetHost) -> ExportJob | None:
    """Export the shown latent's mesh with the panel's resolution, level, format and path."""
    s = app.export_settings
    try:
        out = _shown(app)
        if out.result.planes is None:
            raise ExportError("the shown frame has no tri-planes to mesh")
        assert app.model is not None  # _shown checked it
        G, planes = app.model.engine.G, out.result.planes
        level = default_level(G) if s.mesh_level is None else s.mesh_level
        path = _target(app, s.mesh_path, f"mesh-{_seed_name(out)}-{s.mesh_resolution}", "." + s.mesh_format)

        def work(job: ExportJob) -> str:
            def progress(f, stage):
                job.progress, job.stage = f, stage

            return export_mesh(
                G, planes, path, s.mesh_resolution, level, overwrite=s.overwrite, progress=progress, cancel=job.cancel
            ).line()

        return app.exporter.start("mesh", str(path), work)
    except ExportError as e:
        app.ui.export_error = window_words(str(e))
        return None


def video_spec(app: WidgetHost, out: FrameOut) -> VideoSpec:
    """The panel's video of exactly the latent on screen: an orbit of it (fractional seed, A/B blend at its t,
    style mixing as shown), or its A -> B interpolation (a loop); sampler settings as on screen."""
    s, st = app.export_settings, app.state
    try:
        req = st.snapshot(0)  # the settings on screen (the geometry view's planes-only request is not one)
    except ValueError as e:
        raise ExportError(f"bad settings: {e}") from None
    lat = req.latent
    if s.video_kind == "interp" and lat.seed_b is None:
        raise ExportError(
            "an interpolation video goes from seed A to seed B: tick 'interpolate A -> B' in the Latent panel first"
        )
    seeds = [lat.seed] if s.video_kind == "orbit" else [lat.seed, lat.seed_b]
    view = st.view.view if st.view.view in ("image", "raw", "depth") else "image"
    return VideoSpec(
        seeds=cast("list[float]", seeds),  # seed_b is set for 'interp' (above); check() rejects other kinds
        kind=s.video_kind,
        frames=int(s.video_frames),
        fps=float(s.video_fps),
        psi=req.psi,
        cutoff=req.cutoff,
        view=view,
        neural_rendering_resolution=req.neural_rendering_resolution,
        depth_multiplier=req.depth_multiplier,
        importance_multiplier=req.importance_multiplier,
        noise_mode=req.noise_mode,
        sampling=req.sampling,
        latent=lat,
        cond="render" if st.cond.mode == "camera" else "front",
    )


def start_video(app: WidgetHost) -> ExportJob | None:
    """Record the panel's video on the export thread (its own engine: the render thread keeps its own)."""
    s = app.export_settings
    try:
        out = _shown(app)
        spec = video_spec(app, out)
        spec.check()
        assert spec.latent is not None  # video_spec sets it
        name = (
            latent_name(spec.latent)
            if s.video_kind == "orbit"
            else f"seed{seed_label(spec.seeds[0])}-to-{seed_label(spec.seeds[1])}"
        )
        path = _target(app, s.video_path, f"video-{s.video_kind}-{name}", ".mp4")
        assert app.model is not None  # _shown checked it
        engine = RenderEngine(app.model.engine.G, timed=False, cuda_graphs=False)  # no captures on this thread (D3)

        def work(job: ExportJob) -> str:
            def progress(f, stage):
                job.progress, job.stage = f, stage

            return write_video(engine, spec, path, overwrite=s.overwrite, progress=progress, cancel=job.cancel).line()

        return app.exporter.start("video", str(path), work)
    except ExportError as e:
        app.ui.export_error = window_words(str(e))
        return None


def _finish(app: WidgetHost, line: str | None, error: str | None) -> None:
    if error:
        error = app.ui.export_error = window_words(error)
        app.log(error)
    else:
        assert line is not None  # callers give the line when there is no error
        app.ui.export_error, app.ui.last_saved = None, line
        app.log(line)


def save_depth_now(app: WidgetHost) -> tuple[Path, Path] | None:
    """Write the shown frame's depth as float32 .npy + 16-bit PNG (with the camera metadata)."""
    try:
        out = _shown(app)
        if app.state.view.view == "geometry":
            raise ExportError("the geometry view has no depth map; switch to a neural view (image, raw, depth)")
        r = out.result
        folder = out_folder(app)
        stem = next_free(folder, f"depth-{_seed_name(out)}", ".npy").with_suffix("")
        assert app.model is not None  # _shown checked it
        meta = screenshot_metadata(out.job.request, "depth", app.model.path)
        paths = save_depth(r.depth, r.alpha, stem, meta=meta, overwrite=False)
    except (ExportError, OSError) as e:
        _finish(app, None, f"depth export failed: {e}")
        return None
    _finish(app, f"{paths[0]} + {paths[1].name}", None)
    return paths


def save_screenshot_now(app: WidgetHost, pixels, out: FrameOut, view: str, path: Path) -> Path:
    """The shown render as PNG with metadata chunks and a .json sidecar (raises ExportError)."""
    assert app.model is not None  # a frame on screen is the current model's
    meta = screenshot_metadata(out.job.request, view, app.model.path, saved_as=out.job.pack_view)
    return save_screenshot(pixels, path, meta)
