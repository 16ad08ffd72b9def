"""Exports started from the viewer, of exactly what is on screen: meshes and videos (on the export thread,
viz/jobs/exporter.py), depth maps and screenshots with metadata (written at once), and the Path panel's camera
path files and path videos, and a photo fit's files. File names say which latent
they hold; errors go to the status line in the window's words."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from renderer.dataset import DatasetSettings, ViewSpec, export_seed
from renderer.engine import LatentSpec, RenderEngine
from renderer.errors import ExportError
from renderer.export.files import next_free
from renderer.export.mesh import default_level, export_mesh
from renderer.export.screenshot import save_depth, save_screenshot, screenshot_metadata
from renderer.export.video import VideoSpec, write_video
from renderer.fit.output import write_fit
from renderer.paths.files import load_any, save_nerfstudio, save_path
from renderer.paths.render import PathRenderOptions, write_path_video
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
    """File-name part naming a latent exactly (seeds as renderer.seeds.seed_label prints them; a fitted latent by
    its name, e.g. 'fit-2')."""
    if lat.custom is not None:
        return lat.custom
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
        meta = screenshot_metadata(out.job.request, "depth", app.model.path, custom_ws=_custom_ws(app, out))
        paths = save_depth(r.depth, r.alpha, stem, meta=meta, overwrite=False)
    except (ExportError, OSError) as e:
        _finish(app, None, f"depth export failed: {e}")
        return None
    _finish(app, f"{paths[0]} + {paths[1].name}", None)
    return paths


def save_screenshot_now(app: WidgetHost, pixels, out: FrameOut, view: str, path: Path) -> Path:
    """The shown render as PNG with metadata chunks and a .json sidecar (raises ExportError)."""
    assert app.model is not None  # a frame on screen is the current model's
    meta = screenshot_metadata(
        out.job.request, view, app.model.path, saved_as=out.job.pack_view, custom_ws=_custom_ws(app, out)
    )
    return save_screenshot(pixels, path, meta)


def _custom_ws(app: WidgetHost, out: FrameOut):
    """The ws of the fitted latent the frame shows (None for seeds): screenshots carry them to re-render."""
    name = out.job.request.latent.custom
    assert app.model is not None  # a frame on screen is the current model's
    return None if name is None else app.model.engine.custom_latents.get(name)


# ----------------------------------------------------------------- camera paths (the Path panel)
def _path_file(app: WidgetHost) -> Path:
    """The Path panel's file field (relative paths inside the output folder; empty: camera_path.json there)."""
    typed = app.paths.file.strip() or "camera_path.json"
    p = Path(os.path.expanduser(typed))
    return p if p.is_absolute() else out_folder(app) / p


def _path_note(app: WidgetHost, line: str | None, error: str | None) -> None:
    """A path file's outcome: the panel's note and the status line."""
    app.paths.error = window_words(error) if error else None
    _finish(app, line, error)


def save_camera_path(app: WidgetHost) -> Path | None:
    """Write the path as our JSON (atomic; an existing file only with 'overwrite' ticked in the Export panel)."""
    if app.paths.path is None:
        return None
    target = _path_file(app)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        p = save_path(app.paths.path, target, overwrite=app.export_settings.overwrite)
    except (ExportError, OSError) as e:
        _path_note(app, None, f"could not save the camera path: {e}")
        return None
    _path_note(app, f"saved camera path {p}", None)
    return p


def load_camera_path(app: WidgetHost) -> bool:
    """Read a path (ours, or nerfstudio's with the Latent panel's seed and psi); the old path stays on failure."""
    st = app.state
    target = _path_file(app)
    try:
        path, kind = load_any(target, seed=float(st.latent.seed), psi=float(st.trunc.psi), cutoff=st.trunc.cutoff)
    except (ExportError, OSError) as e:
        _path_note(app, None, f"could not load the camera path: {e}")
        return False
    ed = app.paths
    ed.path, ed.selected, ed.playing = path, 0, False
    ed.scrub(st, 0.0)
    _path_note(app, f"loaded {kind} camera path {target} ({len(path.keyframes)} keyframes)", None)
    return True


def export_nerfstudio_path(app: WidgetHost) -> Path | None:
    """Write nerfstudio's camera_path.json of the path, beside the path file (NAME.nerfstudio.json)."""
    if app.paths.path is None or app.model is None:
        return None
    res = app.model.engine.G.img_resolution
    target = _path_file(app).with_suffix(".nerfstudio.json")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        p = save_nerfstudio(app.paths.path, target, res, res, overwrite=app.export_settings.overwrite)
    except (ExportError, OSError) as e:
        _path_note(app, None, f"could not export the nerfstudio path: {e}")
        return None
    _path_note(app, f"saved nerfstudio camera path {p}", None)
    return p


def start_path_video(app: WidgetHost) -> ExportJob | None:
    """Render the path at full quality on the export thread: MP4 (+ PNG frames, depth maps and cameras.json),
    deterministic sampling, the View panel's resolution and sample counts; progress and Cancel in the panel."""
    ed, st = app.paths, app.state
    try:
        if ed.path is None:
            raise ExportError("no camera path: add keyframes first")
        if app.model is None:
            raise ExportError("no model loaded")
        path = ed.path
        target = _target(app, ed.video_path, f"path-{len(path.keyframes)}kf-{path.frame_count}f", ".mp4")
        png_dir = target.with_suffix("") if ed.png_sequence else None
        options = PathRenderOptions(
            view=ed.video_view,
            neural_rendering_resolution=st.view.neural_rendering_resolution,
            depth_multiplier=st.view.depth_multiplier,
            importance_multiplier=st.view.importance_multiplier,
            cond="render" if st.cond.mode == "camera" else "front",
            noise_mode=st.trunc.noise_mode,
        )
        engine = RenderEngine(app.model.engine.G, timed=False, cuda_graphs=False)  # the export thread's own
        overwrite = app.export_settings.overwrite

        def work(job: ExportJob) -> str:
            def progress(f, stage):
                job.progress, job.stage = f, stage

            return write_path_video(
                engine,
                path,
                target,
                options,
                overwrite=overwrite,
                progress=progress,
                cancel=job.cancel,
                png_dir=png_dir,
            ).line()

        return app.exporter.start("path video", str(target), work)
    except ExportError as e:
        app.ui.export_error = ed.error = window_words(str(e))
        return None


# ----------------------------------------------------------------- views of the latent on screen (a small dataset)
def start_views(app: WidgetHost) -> ExportJob | None:
    """Write views of exactly the latent on screen as a transforms.json dataset (images, depth, masks, z/w,
    cameras; renderer.dataset.export_seed) with the View panel's render settings, on the export thread."""
    s, st = app.export_settings, app.state
    try:
        _shown(app)
        assert app.model is not None  # _shown checked it
        req = st.snapshot(0)
        lat = req.latent
        draw_seed = int(lat.seed) if lat.custom is None else 0  # the seed whose view draws are used
        settings = DatasetSettings(
            network=app.model.path,
            views=ViewSpec(sampler=s.views_sampler, views=int(s.views_count)),
            psi=req.psi,
            cutoff=req.cutoff,
            neural_rendering_resolution=req.neural_rendering_resolution,
            depth_multiplier=req.depth_multiplier,
            sampling=req.sampling,
            cond_camera=req.cond_camera,  # the mapping's camera on screen (frontal, the render's or custom)
            raw=s.views_raw,
            normals=s.views_normals,
        )
        try:
            settings.check()
        except ValueError as e:
            raise ExportError(f"bad view settings: {e}") from None
        folder = _target(app, s.views_path, f"views-{latent_name(lat)}", "")
        engine = RenderEngine(app.model.engine.G, timed=False, cuda_graphs=False)  # the export thread's own
        engine.custom_latents.update(app.model.engine.custom_latents)  # a fitted latent renders there too
        overwrite = s.overwrite

        def work(job: ExportJob) -> str:
            def progress(f, stage):
                job.progress, job.stage = f, stage

            out = export_seed(
                engine,
                settings,
                draw_seed,
                folder,
                latent=lat,
                progress=progress,
                cancel=job.cancel,
                overwrite=overwrite,
            )
            return f"wrote {settings.views.views} views of {latent_name(lat)} to {out} (transforms.json)"

        return app.exporter.start("views", str(folder), work)
    except ExportError as e:
        app.ui.export_error = window_words(str(e))
        return None


# ----------------------------------------------------------------- a photo fit's files
def start_fit_files(app: WidgetHost) -> ExportJob | None:
    """Write the last finished photo fit as `triplane-render fit` does (crop.png, fit.json, w.npy, sheet.png and
    tuned.safetensors after tuning) into a new folder `fit-<picture>` of the output folder, on the export thread."""
    out = app.photo.finished
    try:
        if out is None or out.prepared is None or out.G is None:
            raise ExportError("no finished fit to save: fit a picture first")
        folder = next_free(out_folder(app), f"fit-{Path(out.path).stem}", "")
        G, prepared, fit = out.G, out.prepared, out

        def work(job: ExportJob) -> str:
            job.stage = "rendering the sheet"
            written = write_fit(folder, G, prepared, fit.result, fit.settings, network=fit.network, photo=fit.path)
            return f"wrote the fit of {Path(fit.path).name} to {folder} ({', '.join(p.name for p in written)})"

        return app.exporter.start("fit", str(folder), work)
    except ExportError as e:
        app.ui.export_error = window_words(str(e))
        return None
