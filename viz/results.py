"""Adopting what background jobs finished, on the UI thread: a loaded model, a preview mesh, an export, a new
snapshot of a followed training run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from renderer.camera import focal_to_fov
from renderer.checkpoint import write_native
from renderer.errors import CheckpointError, ExportError
from renderer.export.files import next_free
from renderer.fit.crop import FitInputError
from renderer.fit.output import TUNED
from renderer.fit.saved import SavedFit, fit_folder, read_fit

from .exports import out_folder
from .jobs.photo_fit import PendingFit, label_of
from .orbit import OrbitCamera

if TYPE_CHECKING:
    from .host import ViewerHost
    from .session import FrameOut


def take_loaded_model(app: ViewerHost) -> None:
    """Adopt a finished load (the old model's frame and mesh go), or show why it failed (the old model stays)."""
    out = app.loader.poll()
    if out is None:
        return
    pending = app.pending_fit if app.pending_fit is not None and app.pending_fit.model_path == out.path else None
    if pending is not None:
        app.pending_fit = None  # applied below, or dropped with a failed load
    if out.error is not None:
        app.ui.load_error = out.error
        app.log(f"load failed: {out.error}")
        if out.details:
            app.log(out.details)
        return
    m = out.model
    assert m is not None  # a load without an error has a model
    app.model, app.model_id = m, app.model_id + 1
    app.shown = None  # never the old model's frame under the new name
    app.session.adopt_model(m)
    app.mesh_view.set_mesh(None)  # the old model's mesh; a new preview follows the first frame
    app.mesh_key = None
    app.state.apply_model(m.defaults, keep_view=out.keep_view)
    app.ui.load_error = app.ui.render_error = None
    app.recent.add(m.path)
    if app.recent.warning:
        app.log(f"warning: {app.recent.warning}")
        app.recent.warning = None
    app.log(f"loaded {m.path} in {m.seconds:.1f} s")
    fit = pending if pending is not None else fit_beside(app, m.path)
    if fit is not None:  # a tuned fit's model, or a saved fit's network: its latent goes with it
        adopt_fit(app, fit)


def fit_beside(app: ViewerHost, path: str) -> PendingFit | None:
    """The saved fit a checkpoint was tuned for, when it is opened from its fit folder (tuned.safetensors beside
    fit.json and w.npy); a broken fit there is a note, and the model stays loaded."""
    if Path(path).name != TUNED or fit_folder(path) is None:
        return None
    try:
        return pending_of(read_fit(path))
    except FitInputError as e:
        app.log(f"the fit beside {path} was not applied: {e}")
        app.notify(f"fit not applied: {e}")
        return None


def pending_of(fit: SavedFit) -> PendingFit:
    """What adopting a saved fit needs once its model is loaded."""
    return PendingFit(fit.network, fit.ws, fit.label, (fit.yaw, fit.pitch, fit.radius, fit.focal))


def adopt_fit(app: ViewerHost, fit: PendingFit) -> bool:
    """Make a fit's ws the current latent (a custom latent of the engine), at its camera when it has one; ws the
    engine refuses (another shape than the model's) are one line naming both."""
    m = app.model
    assert m is not None  # called once a model is loaded
    name = f"fit-{app.fits + 1}"
    try:
        m.engine.set_custom_latent(name, fit.ws)
    except ValueError:
        G = m.engine.G
        app.ui.load_error = (
            f"the fit {fit.label} holds ws of shape {tuple(fit.ws.shape)}, but {m.path} takes "
            f"({G.num_ws}, {G.w_dim}): open the model it was fitted with"
        )
        app.log(app.ui.load_error)
        return False
    app.fits += 1
    app.state.latent.custom, app.state.latent.custom_label = name, fit.label
    if fit.orbit is not None:
        yaw, pitch, radius, focal = fit.orbit
        app.state.camera = OrbitCamera(yaw, pitch, radius, m.defaults.pivot, (0.0, 0.0, 0.0), focal_to_fov(focal))
    return True


def take_fit(app: ViewerHost) -> None:
    """Adopt a finished photo fit: its ws become the current latent (a custom latent of the engine) at the fitted
    camera; a tuned fit's generator is saved as a native checkpoint in the output folder and opened, its latent
    registered once it is loaded. A fit of a model that has since been replaced is dropped."""
    out = app.photo.poll()
    if out is None:
        return
    if out.model_id != app.model_id or app.model is None:
        app.log("a photo fit finished for a model that is no longer loaded: dropped")
        return
    r = out.result
    label = label_of(out.path)
    line = f"fitted {label}: PSNR {r.psnr:.1f} dB in the input view, {r.steps} steps in {r.seconds:.0f} s"
    if r.tuned is not None:
        folder = out_folder(app)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = next_free(folder, f"tuned-{Path(out.path).stem}", ".safetensors")
            write_native(target, r.tuned.spec, r.tuned.state_dict())
        except (OSError, CheckpointError, ExportError) as e:
            app.ui.export_error = f"could not save the tuned model: {e}"
            app.log(app.ui.export_error)
            return
        app.pending_fit = PendingFit(str(target), r.ws, label, (r.yaw, r.pitch, r.radius, r.focal))
        app.load_model(str(target), keep_view=True)
        line += f"; tuned model saved as {target}, opening it"
    else:
        adopt_fit(app, PendingFit(app.model.path, r.ws, label, (r.yaw, r.pitch, r.radius, r.focal)))
    app.notify(line)
    app.log(line)


def follow_training_run(app: ViewerHost, now: float) -> None:
    """Load the newest snapshot of a followed training run once it is complete (latent and camera kept)."""
    snap = app.training.update(now)
    if snap is not None and app.loader.loading is None:
        app.training.loaded = snap.path
        app.load_model(snap.path, keep_view=True)
        app.log(f"following the run: kimg {snap.kimg} appeared, loading it")


def geometry_key(app: ViewerHost, out: FrameOut) -> tuple:
    """What a preview mesh depends on: the frame's latent and settings, and the mesh resolution and level."""
    req, g = out.job.request, app.geometry
    return (out.job.model_id, req.latent, req.psi, req.cutoff, req.cond_camera, req.noise_mode, g.resolution, g.level)


def update_geometry(app: ViewerHost) -> None:
    """Adopt a finished preview mesh; start one when the geometry is shown and the latent changed."""
    res = app.mesher.poll()
    if res is not None:
        if res.error:
            app.ui.geometry_error = res.error
        if res.key is not None and (res.key[0] == app.model_id):
            app.mesh_view.set_mesh(res.mesh)
            app.mesh_key = res.key
            if res.mesh is not None:
                app.ui.geometry_error = None
                app.log(f"mesh preview: {res.mesh.n_vertices:,} vertices in {res.seconds:.1f} s")
    wanted = app.state.view.view == "geometry" or app.geometry.overlay
    out = app.shown
    if not wanted or out is None or out.result.planes is None or out.job.model_id != app.model_id:
        return
    key = geometry_key(app, out)
    if key != app.mesher.requested_key:
        assert app.model is not None  # the frame on screen is the current model's (model_id checked)
        app.mesher.request(key, app.model.engine.G, out.result.planes, app.geometry.resolution, app.geometry.level)


def take_exports(app: ViewerHost) -> None:
    """Show how a finished background export went (a cancel the user asked for is a note, not an error)."""
    job = app.exporter.poll()
    if job is None:
        return
    if job.ok:
        app.ui.export_error, app.ui.last_saved = None, job.target
    elif job.cancelled:
        app.ui.export_error, app.ui.info = None, job.message
    else:
        app.ui.export_error = job.message
    assert job.message is not None  # a finished job has its outcome line (Exporter._run)
    app.log(job.message)
