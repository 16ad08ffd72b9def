"""Status line along the bottom: model, "loading …", "rendering…", errors and warnings, last saved path."""
from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..loader import display_name

if TYPE_CHECKING:
    from viz.app import App

COLOURS = {"info": (0.85, 0.85, 0.85, 1.0), "busy": (1.0, 0.8, 0.3, 1.0), "warn": (1.0, 0.65, 0.2, 1.0),
           "error": (1.0, 0.45, 0.4, 1.0)}


def parts(app: App) -> list[tuple[str, str]]:
    """(kind, text) pieces of the status line; kind is 'info', 'busy', 'warn' or 'error'."""
    ui, out = app.ui, []
    loading = app.loader.loading
    if loading:
        out.append(("busy", f"loading {display_name(loading)}…"))
    if app.model is None and not loading:
        out.append(("info", "no model loaded: enter a checkpoint path or drop a file on the window"))
    elif app.model is not None:
        out.append(("info", display_name(app.model.path)))
    if app.model is not None and app.worker.busy:
        out.append(("busy", "rendering…"))
    shown = app.shown.job.quality if app.shown is not None else None
    if app.model is not None and shown is not None and shown != app.quality.full:
        out.append(("info", f"preview {shown.label}"))
    if app.mesher.busy and (app.state.view.view == "geometry" or app.geometry.overlay):
        out.append(("busy", "extracting mesh…"))
    job = app.exporter.job
    if job is not None and not job.done:
        out.append(("busy", f"exporting {job.kind} {100 * job.progress:.0f}%"))
    for kind, text in (("error", ui.load_error and f"load failed: {ui.load_error}"),
                       ("error", ui.render_error), ("warn", ui.render_warning),
                       ("error", ui.export_error), ("error", ui.gl_error), ("warn", ui.input_error),
                       ("warn", (app.state.view.view == "geometry" or app.geometry.overlay) and ui.geometry_error)):
        if text:
            out.append((kind, text))
    if ui.last_saved and not ui.export_error:
        out.append(("info", f"saved {ui.last_saved}"))
    return out


def draw(app: App, width: int, height: int) -> None:
    """A borderless full-width strip of STATUS_HEIGHT at the bottom of the window."""
    from viz.app import STATUS_HEIGHT

    imgui.set_next_window_pos(imgui.ImVec2(0, max(height - STATUS_HEIGHT, 0)))
    imgui.set_next_window_size(imgui.ImVec2(max(width, 1), STATUS_HEIGHT))
    flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings
             | imgui.WindowFlags_.no_bring_to_front_on_focus | imgui.WindowFlags_.no_nav)
    imgui.begin("status", None, flags.value)
    for i, (kind, text) in enumerate(parts(app)):
        if i:
            imgui.same_line()
            imgui.text_disabled("|")
            imgui.same_line()
        imgui.text_colored(imgui.ImVec4(*COLOURS[kind]), text)
    imgui.end()
