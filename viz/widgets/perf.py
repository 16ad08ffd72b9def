"""Performance widget: UI frame rate, render time split by stage plus present (upload), device, interop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

if TYPE_CHECKING:
    from viz.host import WidgetHost

STAGES = ("mapping", "backbone", "render", "superres")


def _row(name: str, value: str) -> None:
    imgui.table_next_row()
    imgui.table_next_column()
    imgui.text(name)
    imgui.table_next_column()
    imgui.text(value)


def draw(app: WidgetHost) -> None:
    """A two-column table of timings, then the device and the presentation path."""
    p, shown = app.perf, app.shown
    if imgui.begin_table("perf", 2, imgui.TableFlags_.sizing_stretch_prop.value):
        _row("UI", f"{p.fps:.1f} fps, {p.frame_ms:.2f} ms/frame")
        if shown is not None:
            t = shown.result.timings
            _row("last render", f"{sum(t.get(k, 0.0) for k in STAGES):.1f} ms (stamp {shown.stamp})")
            for k in STAGES:
                _row(f"   {k}", f"{t.get(k, 0.0):.1f} ms")
            _row("   present", f"{app.presenter.upload_ms:.2f} ms (upload)")
            h, w = shown.frame.rgba.shape[:2]
            _row("frame", f"{w}x{h} {shown.frame.kind}" + (", backbone ran" if shown.result.backbone_ran else ""))
        _row("device", app.device_name)
        _row("present path", app.presenter.path)
        _row("dropped", f"{app.worker.dropped} requests, {app.session.discarded} results")
        if app.engine is not None:
            st = app.engine.stats
            _row("engine calls", f"{st.renders} renders, {st.backbone_calls} backbone, {st.mapping_calls} mapping")
        imgui.end_table()
    if shown is None:
        imgui.text_disabled("no frame yet")
    if app.presenter.fallback_reason:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_disabled(f"why CPU upload: {app.presenter.fallback_reason}")
        imgui.pop_text_wrap_pos()
