"""Status line along the bottom: model, what is running (with a live timer), the newest messages; at rest
a summary of the frame on screen (seed(s), psi, view, resolution, frame time). Click it to dismiss messages."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from renderer.seeds import seed_label

from ..jobs.loader import display_name
from ..layout import STATUS_HEIGHT

if TYPE_CHECKING:
    from viz.host import WidgetHost

COLOURS = {
    "info": (0.85, 0.85, 0.85, 1.0),
    "busy": (1.0, 0.8, 0.3, 1.0),
    "warn": (1.0, 0.65, 0.2, 1.0),
    "error": (1.0, 0.45, 0.4, 1.0),
    "summary": (0.6, 0.75, 0.9, 1.0),
}
MAX_MESSAGES = 2
"""Messages shown at once (newest first); older ones are counted, never piled up."""


def summary(app: WidgetHost) -> str | None:
    """What is on screen, e.g. 'seed 5.80 -> 7 t 0.37 · psi 0.70 · image 64px -> 128px · 84 ms' (ASCII arrows:
    the UI font has no arrow glyph)."""
    out = app.shown
    if out is None:
        return None
    req, lat = out.job.request, out.job.request.latent
    seeds = f"seed {seed_label(lat.seed)}"
    if lat.seed_b is not None:
        seeds += f" -> {seed_label(lat.seed_b)} t {lat.t:.2f}"
    res = out.result.raw.shape[-1]  # the neural render; with SR, also the size it was lifted to
    sr = f" -> {out.result.image.shape[-1]}px" if out.result.image is not None else ""
    view = app.state.view.view
    return f"{seeds} · psi {req.psi:.2f} · {view} {res}px{sr} · {app.session.last_frame_ms:.0f} ms"


def parts(app: WidgetHost) -> list[tuple[str, str]]:
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
        since = app.worker.busy_since
        out.append(("busy", "rendering…" + (f" {time.perf_counter() - since:.1f} s" if since is not None else "")))
    shown = app.shown.job.quality if app.shown is not None else None
    if app.model is not None and shown is not None and shown != app.quality.full:
        out.append(("info", f"preview {shown.label}"))
    if app.mesher.busy and (app.state.view.view == "geometry" or app.geometry.overlay):
        out.append(("busy", "extracting mesh…"))
    job = app.exporter.job
    if job is not None and not job.done:
        out.append(("busy", f"exporting {job.kind} {100 * job.progress:.0f}%"))
    geometry_shown = app.state.view.view == "geometry" or app.geometry.overlay
    messages = [
        (kind, {"load_error": f"load failed: {text}", "last_saved": f"saved {text}"}.get(name, text))
        for name, kind, text in ui.messages()
        if name != "geometry_error" or geometry_shown
    ]
    out.extend(messages[:MAX_MESSAGES])
    if len(messages) > MAX_MESSAGES:
        out.append(("info", f"+{len(messages) - MAX_MESSAGES} older (click to clear)"))
    if not messages and not app.worker.busy and app.loader.loading is None:
        rest = summary(app)
        if rest:
            out.append(("summary", rest))
    return out


def draw(app: WidgetHost, width: int, height: int) -> None:
    """A borderless full-width strip of STATUS_HEIGHT at the bottom of the window."""

    imgui.set_next_window_pos(imgui.ImVec2(0, max(height - STATUS_HEIGHT, 0)))
    imgui.set_next_window_size(imgui.ImVec2(max(width, 1), STATUS_HEIGHT))
    flags = (
        imgui.WindowFlags_.no_decoration
        | imgui.WindowFlags_.no_move
        | imgui.WindowFlags_.no_saved_settings
        | imgui.WindowFlags_.no_bring_to_front_on_focus
        | imgui.WindowFlags_.no_nav
    )
    imgui.begin("status", None, flags.value)
    for i, (kind, text) in enumerate(parts(app)):
        if i:
            imgui.same_line()
            imgui.text_disabled("|")
            imgui.same_line()
        imgui.text_colored(imgui.ImVec4(*COLOURS[kind]), text)
    if imgui.is_window_hovered() and imgui.is_mouse_clicked(imgui.MouseButton_.left):
        app.ui.dismiss()
    imgui.end()
