"""View widget: image / raw / depth / normals / geometry; depth range auto or locked; samples; resolution; sampling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from imgui_bundle import imgui

from renderer.engine.frames import VIEWS

from ..validate import clamp_input
from ._ui import LABEL_WIDTH, choice, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost
    from viz.state import ViewName

RESOLUTIONS = (32, 64, 128, 256, 512)
"""Neural rendering resolutions offered besides the model's own."""
SAMPLING: tuple[Literal["deterministic", "stochastic"], ...] = ("deterministic", "stochastic")
SAMPLE_RANGE = (0.25, 4.0)
"""Range of the depth and importance sample multipliers (more would exhaust memory at high resolution)."""
DEPTH_LIMIT = 100.0


def draw(app: WidgetHost) -> None:
    """View switch, depth range, sampling controls."""
    v = app.state.view
    names: tuple[ViewName, ...] = VIEWS + ("geometry",)
    for i, name in enumerate(names):
        if i:
            imgui.same_line()
        if imgui.radio_button(name, v.view == name):
            v.view = name
        mark(app, f"view_{name}")
    if v.view == "geometry":
        imgui.text_disabled("the preview mesh under the live camera")
    changed, on = imgui.checkbox("inspector window (I)", app.inspector.state.open)
    mark(app, "inspector_open")
    if changed:
        app.inspector.state.open = on
    help_marker("Layers, tri-planes, density slices and the pixel probe of the frame on screen.")

    if v.view in ("depth", "normals"):
        changed, locked = imgui.checkbox("lock depth range", v.depth_locked)
        if changed:
            v.depth_locked = locked
            shown = app.shown
            if locked and shown is not None and shown.frame.kind == "depth":
                v.depth_range = (shown.frame.near, shown.frame.far)  # lock what is on screen now
        help_marker(
            "Auto: each frame maps its own nearest..farthest opaque depth to the colour map. "
            "Locked: a fixed range, so colours are comparable between frames."
        )
        if v.depth_locked:
            imgui.set_next_item_width(-LABEL_WIDTH)
            changed, near, far = imgui.drag_float_range2(
                "near / far", v.depth_range[0], v.depth_range[1], 0.005, 0.0, DEPTH_LIMIT, "%.3f"
            )
            if changed:
                near = clamp_input(app.ui, "near", near, 0.0, DEPTH_LIMIT, v.depth_range[0])
                far = clamp_input(app.ui, "far", far, 0.0, DEPTH_LIMIT, v.depth_range[1])
                if far > near:
                    v.depth_range = (near, far)
                else:
                    app.ui.input_error = f"depth range: far ({far:g}) must be beyond near ({near:g}); kept"
        elif app.shown is not None and app.shown.frame.kind == "depth":
            imgui.text_disabled(f"auto range {app.shown.frame.near:.3f} .. {app.shown.frame.far:.3f}")

    changed, lock = imgui.checkbox("lock full quality", app.quality.lock_full)
    if changed:
        app.quality.lock_full = lock
    mark(app, "lock_full_quality")
    help_marker(
        "Off: while you drag, scroll or play an interpolation, cheaper previews (lower neural "
        "resolution, fewer samples, no super-resolution) keep the frame rate near the target; "
        "0.2 s after the view rests the full-quality frame follows. On: always full quality."
    )

    model_nrr = app.model.engine.G.neural_rendering_resolution if app.model is not None else None
    choices = [r for r in RESOLUTIONS if r != model_nrr]  # the model's own is the first entry, once
    labels = [f"model's ({model_nrr})" if model_nrr else "model's"] + [str(r) for r in choices]
    current = (
        0
        if v.neural_rendering_resolution is None
        else (choices.index(v.neural_rendering_resolution) + 1 if v.neural_rendering_resolution in choices else 0)
    )
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, i = imgui.combo("neural res", current, labels)
    mark(app, "nrr")
    if changed:
        v.neural_rendering_resolution = None if i == 0 else choices[i - 1]
    help_marker("Rays per side of the volume render (the super-resolution output keeps its size). Lower is faster.")
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, m = imgui.slider_float(
        "depth samples x", v.depth_multiplier, *SAMPLE_RANGE, "%.2f", imgui.SliderFlags_.logarithmic.value
    )
    if changed:
        v.depth_multiplier = clamp_input(app.ui, "depth samples x", m, *SAMPLE_RANGE, v.depth_multiplier)
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, m = imgui.slider_float(
        "importance x", v.importance_multiplier, *SAMPLE_RANGE, "%.2f", imgui.SliderFlags_.logarithmic.value
    )
    if changed:
        v.importance_multiplier = clamp_input(app.ui, "importance x", m, *SAMPLE_RANGE, v.importance_multiplier)
    help_marker("Multipliers of the stratified and importance sample counts per ray.")
    v.sampling = choice("sampling", v.sampling, SAMPLING)
    help_marker(
        "Deterministic places the depth samples without random jitter: no flicker. "
        "Stochastic is the reference's random sampling."
    )
