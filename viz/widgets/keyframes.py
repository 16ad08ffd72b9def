"""Path panel part 'keyframes': add one from the current view (K), the list (click to jump), and for the selected one
update from the view, delete, earlier / later and its time; then how the path interpolates."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from renderer.seeds import seed_label

from ._ui import LABEL_WIDTH, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

LIST_ROWS = 6
TIME_LIMIT = 3600.0


def _row(i: int, k) -> str:
    latent = seed_label(k.seed) if k.seed_b is None else f"{seed_label(k.seed)}->{seed_label(k.seed_b)} t{k.t:.2f}"
    return (
        f"{i + 1}. {k.time:6.2f} s  seed {latent}  yaw {math.degrees(k.yaw):+.0f}  "
        f"pitch {math.degrees(k.pitch):+.0f}  psi {k.psi:.2f}"
    )


def draw(app: WidgetHost) -> None:
    ed = app.paths
    if imgui.button("add keyframe (K)"):
        _guard(app, lambda: ed.add(app.state))
    mark(app, "keyframe_add")
    help_marker(
        "Takes the current view: camera (pose and FOV), latent (seed or A/B blend), psi and cutoff, view. "
        "Placed 2 s after the last keyframe, or at the timeline's time when you moved it to a free time. "
        "Comma / period jump to the previous / next keyframe."
    )
    path = ed.path
    if path is None:
        imgui.text_disabled("no keyframes yet")
        return
    row_h = imgui.get_text_line_height_with_spacing()
    imgui.begin_child("keyframe_list", imgui.ImVec2(0, row_h * min(len(path.keyframes), LIST_ROWS) + 8))
    for i, k in enumerate(path.keyframes):
        clicked, _ = imgui.selectable(f"{_row(i, k)}##kf{i}", i == ed.selected)
        mark(app, f"keyframe_{i}")
        if clicked:
            ed.jump(app.state, i)
    imgui.end_child()
    sel = ed.selected
    if sel is not None and sel < len(path.keyframes):
        if imgui.button("update from view"):
            _guard(app, lambda: ed.update(app.state, sel))
        mark(app, "keyframe_update")
        imgui.same_line()
        if imgui.button("delete"):
            ed.delete(sel)
        mark(app, "keyframe_delete")
        imgui.same_line()
        if imgui.arrow_button("##earlier", imgui.Dir.up):
            ed.move(sel, -1)
        mark(app, "keyframe_earlier")
        imgui.same_line()
        if imgui.arrow_button("##later", imgui.Dir.down):
            ed.move(sel, 1)
        mark(app, "keyframe_later")
        if ed.path is not None and ed.selected is not None:
            imgui.set_next_item_width(-LABEL_WIDTH)
            k = ed.path.keyframes[ed.selected]
            changed, t = imgui.input_float(
                "time (s)", k.time, 0.1, 1.0, "%.2f", imgui.InputTextFlags_.enter_returns_true.value
            )
            mark(app, "keyframe_time", "time (s)")
            if changed:
                chosen = ed.selected
                _guard(app, lambda: ed.set_time(chosen, min(max(t, 0.0), TIME_LIMIT)))
    _settings(app)


def _settings(app: WidgetHost) -> None:
    """Interpolation mode, loop, constant speed, tension, latent space."""
    ed = app.paths
    path = ed.path
    if path is None:
        return
    imgui.text("interpolation")
    for mode, label in (("spline", "spline"), ("orbit", "orbit")):
        if mode != "spline":
            imgui.same_line()
        if imgui.radio_button(f"{label}##pathmode", path.mode == mode):
            _guard(app, lambda m=mode: ed.settings(mode=m))
        mark(app, f"path_mode_{mode}")
    help_marker(
        "spline: a smooth curve through the camera positions and pivots, orientations by quaternion. "
        "orbit: yaw, pitch and radius about the pivot interpolated (what most shots of a head want)."
    )
    imgui.same_line()
    changed, loop = imgui.checkbox("loop", path.loop)
    mark(app, "path_loop")
    if changed:
        _guard(app, lambda: ed.settings(loop=loop, duration=None))
    imgui.same_line()
    changed, const = imgui.checkbox("constant speed", path.constant_speed)
    mark(app, "path_constant_speed")
    if changed:
        _guard(app, lambda: ed.settings(constant_speed=const))
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, tension = imgui.slider_float("tension", path.tension, -1.0, 1.0, "%.2f")
    if changed:
        _guard(app, lambda: ed.settings(tension=float(tension)))
    help_marker("0: Catmull-Rom; towards 1 the path slows into every keyframe; below 0 it overshoots.")
    for space in ("w", "z"):
        if space != "w":
            imgui.same_line()
        if imgui.radio_button(f"latent lerp in {space.upper()}##pathspace", path.latent_space == space):
            _guard(app, lambda s=space: ed.settings(latent_space=s))


def _guard(app: WidgetHost, edit) -> None:
    """Run an edit; a refused one (ValueError: e.g. two keyframes at one time) becomes the panel's note."""
    try:
        edit()
        app.paths.error = None
    except ValueError as e:
        app.paths.error = str(e)
