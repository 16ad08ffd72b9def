"""Camera widget: yaw, pitch, radius, FOV and pivot fields, presets, reset, and the conditioning pose."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from imgui_bundle import imgui

from .. import orbit
from ..validate import clamp_input
from ._ui import LABEL_WIDTH, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost
    from viz.state import CondMode

PRESET_ORDER = ("default", "left", "right", "top", "bottom", "three-quarter")
PIVOT_LIMIT = 10.0
"""Pivot coordinates are kept inside [-PIVOT_LIMIT, PIVOT_LIMIT] (world units)."""


def draw(app: WidgetHost) -> None:
    """Camera fields, presets and the conditioning pose."""
    s, ui = app.state, app.ui
    cam = s.camera
    lim = math.degrees(orbit.PITCH_LIMIT)
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, yaw = imgui.drag_float("yaw (deg)", math.degrees(cam.yaw), 0.5, -180.0, 180.0, "%.1f")
    if changed:
        cam = replace(cam, yaw=math.radians(clamp_input(ui, "yaw", yaw, -180.0, 180.0, math.degrees(cam.yaw))))
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, pitch = imgui.drag_float("pitch (deg)", math.degrees(cam.pitch), 0.5, -lim, lim, "%.1f")
    if changed:
        pitch = clamp_input(ui, "pitch", pitch, -lim, lim, math.degrees(cam.pitch))
        cam = replace(cam, pitch=orbit.clamp(math.radians(pitch), -orbit.PITCH_LIMIT, orbit.PITCH_LIMIT))
    imgui.set_next_item_width(-LABEL_WIDTH)
    radii = s.defaults.radius_range
    changed, radius = imgui.drag_float("radius", cam.radius, 0.01, *radii, "%.3f")
    if changed:
        cam = replace(cam, radius=clamp_input(ui, "radius", radius, *radii, cam.radius))
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, fov = imgui.slider_float(
        "FOV (deg)", cam.fov_deg, *orbit.FOV_RANGE, "%.2f", imgui.SliderFlags_.logarithmic.value
    )
    if changed:
        cam = replace(cam, fov_deg=clamp_input(ui, "FOV", fov, *orbit.FOV_RANGE, cam.fov_deg))
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, pivot = imgui.drag_float3("pivot", list(cam.pivot), 0.005, -PIVOT_LIMIT, PIVOT_LIMIT, "%.3f")
    if changed:
        checked, note = [], None
        for p, q in zip(pivot, cam.pivot):  # keep the first component's note when a later one is fine
            checked.append(clamp_input(ui, "pivot", p, -PIVOT_LIMIT, PIVOT_LIMIT, q))
            note = note or ui.input_error
        pivot, ui.input_error = checked, note
        delta = [p - q for p, q in zip(pivot, cam.pivot)]  # move the orbit centre with the pivot (a pan)
        cam = replace(
            cam,
            pivot=cast(orbit.Vec3, tuple(float(v) for v in pivot)),
            center=cast(orbit.Vec3, tuple(float(c + d) for c, d in zip(cam.center, delta))),
        )
    s.camera = cam

    d = s.defaults
    views = orbit.presets(d.radius, d.pivot, cam.fov_deg, d.full_sphere)
    for i, name in enumerate(PRESET_ORDER):
        if i % 3:
            imgui.same_line()
        if imgui.button(name, imgui.ImVec2(96, 0)):
            s.camera = views[name]
        mark(app, f"preset_{name}")
    if imgui.button("reset camera (R)"):
        app.reset_camera()
    mark(app, "camera_reset")

    imgui.separator_text("conditioning pose")
    cond = s.cond
    modes: tuple[tuple[CondMode, str], ...] = (("front", "frontal"), ("camera", "follow camera"), ("custom", "custom"))
    for i, (mode, label) in enumerate(modes):
        if i:
            imgui.same_line()
        if imgui.radio_button(label, cond.mode == mode):
            cond.mode = mode
    help_marker(
        "The pose given to the mapping network. Frontal (default) keeps the identity fixed "
        "while you orbit; following the camera re-runs mapping and the backbone on every move."
    )
    if cond.mode == "custom":
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, y = imgui.slider_float("cond yaw (deg)", math.degrees(cond.yaw), -90.0, 90.0, "%.1f")
        if changed:
            cond.yaw = math.radians(clamp_input(ui, "cond yaw", y, -90.0, 90.0, math.degrees(cond.yaw)))
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, p = imgui.slider_float("cond pitch (deg)", math.degrees(cond.pitch), -lim, lim, "%.1f")
        if changed:
            cond.pitch = math.radians(clamp_input(ui, "cond pitch", p, -lim, lim, math.degrees(cond.pitch)))
