"""Adopting what background jobs finished, on the UI thread: a loaded model, a preview mesh, an export, a new
snapshot of a followed training run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .host import ViewerHost
    from .session import FrameOut


def take_loaded_model(app: ViewerHost) -> None:
    """Adopt a finished load (the old model's frame and mesh go), or show why it failed (the old model stays)."""
    out = app.loader.poll()
    if out is None:
        return
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
