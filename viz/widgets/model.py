"""Model widget: checkpoint path + Load, the recent list, the drag-and-drop hint, loading status, a training run."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..jobs.loader import display_name
from . import training_run
from ._ui import mark

if TYPE_CHECKING:
    from viz.host import WidgetHost


def draw(app: WidgetHost) -> None:
    """Path field with Load, the model in use, recent files (click to load)."""
    ui = app.ui
    imgui.set_next_item_width(-60)
    entered, ui.model_path = imgui.input_text(
        "##model_path", ui.model_path, imgui.InputTextFlags_.enter_returns_true.value
    )
    mark(app, "model_path")
    imgui.same_line()
    clicked = imgui.button("Load")
    mark(app, "model_load")
    if (entered or clicked) and ui.model_path.strip():
        app.load_model(os.path.expanduser(ui.model_path.strip()))
    imgui.push_text_wrap_pos(0.0)  # wrapped at the pane's edge, not cut off
    imgui.text_disabled("or drop a .pkl / .safetensors file, or a saved fit's folder, on the window")
    imgui.pop_text_wrap_pos()

    loading = app.loader.loading
    if loading:
        imgui.text_colored(imgui.ImVec4(1.0, 0.8, 0.3, 1.0), f"loading {display_name(loading)}...")
    if app.model is not None:
        imgui.text_wrapped(f"model: {display_name(app.model.path)}")
        G = app.model.engine.G
        imgui.text_disabled(
            f"{G.img_resolution}px, neural {G.neural_rendering_resolution}px, "
            f"{G.num_ws} ws, loaded in {app.model.seconds:.1f} s"
        )
    else:
        imgui.text_disabled("no model loaded")
    if ui.load_error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), f"load failed: {ui.load_error}")
        imgui.pop_text_wrap_pos()

    if app.recent.items and imgui.tree_node("recent files"):
        for path in list(app.recent.items):
            if imgui.selectable(f"{display_name(path)}##{path}", False)[0]:
                ui.model_path = path
                app.load_model(path)
            if imgui.is_item_hovered():
                imgui.set_tooltip(path)
        imgui.tree_pop()

    imgui.separator()
    training_run.draw(app)
