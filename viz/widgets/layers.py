"""Inspector tab 'Layers': every intermediate output of the frame on screen with its shape; the selected one shown
as one channel or three as RGB, normalised or raw with a dB scale, or as its magnitude spectrum, with statistics."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from renderer.inspect.layers import channels, layer_image

from ..gfx.textures import Same
from ._ui import LABEL_WIDTH, help_marker, mark, show_image

if TYPE_CHECKING:
    from viz.host import WidgetHost

LIST_HEIGHT = 200.0
DB_RANGE = (-40.0, 40.0)


def shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(str(s) for s in shape)


def draw(app: WidgetHost) -> None:
    """The layer list, the selected layer's statistics and display settings, then its image."""
    ins, s = app.inspector, app.inspector.state
    ins.shown_stats = None
    layers = ins.layers()
    error = ins.errors.get("backbone") or ins.errors.get("render")
    if error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), f"capture failed: {error}")
        imgui.pop_text_wrap_pos()
    if not layers:
        imgui.text_disabled("capturing the layers of this frame..." if ins.source is not None else "no frame yet")
        return
    names = [layer.name for layer, _ in layers]
    if s.layer not in names:
        s.layer = names[0]
    imgui.begin_child("layer_list", imgui.ImVec2(0, LIST_HEIGHT), imgui.ChildFlags_.borders.value)
    for layer, _ in layers:
        clicked, _ = imgui.selectable(f"{layer.name}##layer", s.layer == layer.name)
        mark(app, f"layer_{layer.name}")
        if clicked:
            s.layer = layer.name
        imgui.same_line(200)
        imgui.text_disabled(shape_text(layer.shape))
    imgui.end_child()
    if ins.current("render") is None:
        imgui.text_disabled("render-side layers (decoder .. image) follow once the view rests")

    layer, stats = next((ls for ls in layers if ls[0].name == s.layer), layers[0])
    ins.shown_stats = stats
    imgui.text(f"{layer.name}: {shape_text(layer.shape)}  ({layer.stage})")
    imgui.text(f"mean {stats['mean']:.5g}  std {stats['std']:.5g}")
    imgui.text(f"min {stats['min']:.5g}  max {stats['max']:.5g}")
    mark(app, "layer_stats")

    v = s.layer_view
    n = channels(layer.tensor)
    if layer.tensor.dim() == 3 and n > 1:
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, c = imgui.slider_int("channel", min(v.channel, n - 1), 0, n - 1)
        mark(app, "layer_channel", "channel")
        if changed:
            v = replace(v, channel=c)
        if n >= 3:
            changed, rgb = imgui.checkbox("RGB: channels c..c+2", v.rgb)
            mark(app, "layer_rgb")
            if changed:
                v = replace(v, rgb=rgb)
    changed, norm = imgui.checkbox("normalize", v.normalize)
    mark(app, "layer_normalize")
    if changed:
        v = replace(v, normalize=norm)
    imgui.same_line()
    changed, fft = imgui.checkbox("FFT", v.fft)
    mark(app, "layer_fft")
    if changed:
        v = replace(v, fft=fft)
    help_marker("Normalize divides by the shown channels' std; the FFT shows their centred log-magnitude spectrum.")
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, db = imgui.slider_float("scale (dB)", v.scale_db, *DB_RANGE, "%+.1f dB")
    mark(app, "layer_db", "scale (dB)")
    if changed:
        v = replace(v, scale_db=db)
    s.layer_view = v

    width = imgui.get_content_region_avail().x
    view = s.layer_view
    tex = app.textures.get("layer", (Same(layer.tensor), view), lambda: layer_image(layer.tensor, view))
    show_image(app, "layer_image", tex, width)
