"""Photo panel: put a picture into the generator. Open a picture (or drop it on the window): its crop and camera
estimate appear to confirm or adjust; Fit runs in the background with a live preview beside the crop, the loss
curve, time left and Cancel; the result becomes the current latent (and, after tuning, the model) at the fitted
camera, to orbit, render and export like any seed."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui

from ..exports import start_fit_files
from ..gfx.textures import Same
from ..validate import clamp_int
from ._ui import LABEL_WIDTH, help_marker, mark, show_image

if TYPE_CHECKING:
    from viz.host import WidgetHost
    from viz.jobs.photo_fit import FitView

MAX_STEPS = 2000
PITCH_LIMIT_DEG = 60.0


def draw(app: WidgetHost) -> None:
    job, s = app.photo, app.photo_settings
    imgui.set_next_item_width(-60)
    entered, s.path = imgui.input_text("##photo_path", s.path, imgui.InputTextFlags_.enter_returns_true.value)
    mark(app, "photo_path")
    imgui.same_line()
    clicked = imgui.button("Open##photo")
    mark(app, "photo_open")
    if (entered or clicked) and s.path.strip():
        app.open_photo(os.path.expanduser(s.path.strip()))
    imgui.text_disabled("or drop a .png / .jpg on the window")
    v = job.view
    if v.stage == "idle":
        return
    if v.stage == "preparing":
        imgui.text_colored(imgui.ImVec4(1.0, 0.8, 0.3, 1.0), "finding the subject and its camera...")
    if v.error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), v.error)
        imgui.pop_text_wrap_pos()
    if v.crop is None:
        if v.stage == "failed" and v.picture_size != (0, 0):
            _box(app, v)  # e.g. no face found, or a box outside the picture: give (another) box by hand
        return
    spacing = imgui.get_style().item_spacing.x
    width = (imgui.get_content_region_avail().x - spacing) / 2
    crop, preview = v.crop, v.preview
    show_image(app, "photo_crop", app.textures.get("photo_crop", Same(crop), lambda: crop), width)
    imgui.same_line()
    if preview is not None:
        show_image(app, "photo_fit", app.textures.get("photo_fit", Same(preview), lambda: preview), width)
    else:
        imgui.text_disabled("the fit shows here")
    for note in v.notes:
        imgui.text_disabled(note)
    if v.stage in ("ready", "cancelled", "failed", "done"):
        _box(app, v)
    if v.guess is not None and v.stage in ("ready", "cancelled", "failed", "done"):
        _camera_and_settings(app, v)
    if v.stage == "fitting":
        frac = v.step / max(v.total, 1)
        left = "" if v.time_left is None else f", {v.time_left:.0f} s left"
        imgui.progress_bar(frac, imgui.ImVec2(-80, 0), f"{v.phase} {v.step}/{v.total}{left}")
        mark(app, "photo_progress")
        imgui.same_line()
        if imgui.button("cancel##photo"):
            job.cancel()
        mark(app, "photo_cancel")
    if v.losses:
        imgui.plot_lines("##loss", np.asarray(v.losses, np.float32), graph_size=imgui.ImVec2(-LABEL_WIDTH, 50))
        imgui.same_line()
        psnr = "" if v.psnr is None else f"\nPSNR {v.psnr:.1f} dB"
        imgui.text(f"loss {v.losses[-1]:.4f}{psnr}")
    if v.stage == "done":
        imgui.text_colored(imgui.ImVec4(0.55, 0.85, 1.0, 1.0), "fitted: now the current latent, at its camera")
        if app.photo.finished is not None:
            if imgui.button("save fit files##photo"):
                start_fit_files(app)
            mark(app, "photo_save")
            help_marker(
                "What `triplane-render fit` writes (crop.png, fit.json with the camera, w.npy, sheet.png of the input "
                "beside the fit and 4 novel views, and the tuned model after tuning) into a new folder fit-<picture> "
                "of the Export panel's output folder."
            )
    elif v.stage == "cancelled":
        imgui.text_disabled("fit cancelled; nothing changed")


def _camera_and_settings(app: WidgetHost, v: FitView) -> None:
    """The camera estimate (adjustable), steps, tuning, Fit. `v` is the view this frame draws (a click above
    may already have replaced the job's)."""
    s = app.photo_settings
    assert v.guess is not None
    if s.guess_version != v.version and v.stage == "ready":  # a new estimate: show it
        s.yaw_deg, s.pitch_deg, s.guess_version = math.degrees(v.guess.yaw), math.degrees(v.guess.pitch), v.version
    imgui.text("camera estimate (adjust, then Fit)")
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, s.yaw_deg = imgui.slider_float("yaw (deg)##photo", s.yaw_deg, -180.0, 180.0, "%.1f")
    mark(app, "photo_yaw", "yaw (deg)")
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, s.pitch_deg = imgui.slider_float("pitch (deg)##photo", s.pitch_deg, -PITCH_LIMIT_DEG, PITCH_LIMIT_DEG, "%.1f")
    mark(app, "photo_pitch", "pitch (deg)")
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, n = imgui.input_int("steps##photo", s.steps, 10, 50)
    mark(app, "photo_steps", "steps")
    if changed:
        s.steps = clamp_int(app.ui, "steps", n, 2, MAX_STEPS, s.steps)
    _refine(app)
    _, s.tune = imgui.checkbox("pivotal tuning (changes the model's weights)", s.tune)
    mark(app, "photo_tune")
    help_marker(
        "After the latent and camera: fine-tune the generator around the found latent, with a locality term "
        "that keeps other latents as they were. The tuned model is saved (native .safetensors) and opened."
    )
    if s.tune:
        _count(app, "tune steps", "photo_tune_steps", "tune_steps", 1)
    if imgui.button("Fit##photo"):
        app.start_fit()
    mark(app, "photo_fit_button")


def _refine(app: WidgetHost) -> None:
    """The slower phases after the Adam steps (the CLI's --w-plus, --polish, --newton, --fixed-camera), folded away:
    what a fit needs to match the picture closely rather than quickly."""
    s = app.photo_settings
    imgui.set_next_item_open(s.refine, imgui.Cond_.always.value)
    s.refine = imgui.tree_node("refine (slower)##photo")
    mark(app, "photo_refine")
    if not s.refine:
        return
    _count(app, "w+ steps", "photo_w_plus", "w_plus_steps", 0)
    help_marker("Then a latent per layer (w+), held near the shared one: closer to the picture, less regular.")
    _count(app, "polish steps", "photo_polish", "polish_steps", 0)
    help_marker("Then L-BFGS on the whole final image at the model's resolution (3 iterations a step).")
    _count(app, "newton steps", "photo_newton", "newton_steps", 0)
    G = app.model.engine.G if app.model is not None else None
    renders = "" if G is None else f" ({G.w_dim + (0 if s.fixed_camera else 2)} for this model)"
    help_marker(
        "Then Levenberg-Marquardt on the latent and camera: one render per latent coordinate and camera "
        f"parameter each step{renders}. Slow on a CPU; it moves along what the first-order steps leave."
    )
    _, s.fixed_camera = imgui.checkbox("keep the camera (fit the latent only)", s.fixed_camera)
    mark(app, "photo_fixed_camera")
    imgui.tree_pop()


def _count(app: WidgetHost, label: str, name: str, attr: str, lo: int) -> None:
    """An integer field for one of the panel's step counts, kept in [lo, MAX_STEPS]."""
    s = app.photo_settings
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, n = imgui.input_int(f"{label}##photo", getattr(s, attr), 1, 10)
    mark(app, name, label)
    if changed:
        setattr(s, attr, clamp_int(app.ui, label, n, lo, MAX_STEPS, getattr(s, attr)))


def _box(app: WidgetHost, v: FitView) -> None:
    """The crop's box in the picture (x, y, w, h): edit it and re-crop when the detector boxed the wrong thing."""
    s = app.photo_settings
    w, h = v.picture_size
    if s.box_version != v.version and v.stage in ("ready", "failed"):  # a new preparation: show its box
        s.box, s.box_version = list(v.box) if v.box is not None else [0, 0, w, h], v.version
    imgui.text("box x y w h")
    imgui.same_line()
    imgui.set_next_item_width(-30)
    changed, box = imgui.input_int4("##photo_box", s.box)
    mark(app, "photo_box")  # the four fields only (no label), each a quarter of the rect
    if changed:
        s.box = list(box)
    help_marker(
        f"Where the crop comes from, in picture pixels ({w}x{h}): the face box for face and cat models "
        "(eyes to chin), the region holding the object for object models. Edit it and press re-crop when the "
        "detector found the wrong thing."
    )
    if imgui.button("re-crop##photo"):
        app.recrop_photo()
    mark(app, "photo_recrop")
