"""Model panel part 'training run': open a run folder, step through its network-snapshot-NNNNNN.pkl files by kimg
(latent and camera kept), or follow the newest as training writes it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ._ui import help_marker, mark

if TYPE_CHECKING:
    from renderer.inspect.runs import Snapshot
    from viz.host import WidgetHost

LIST_ROWS = 6


def load(app: WidgetHost, snap: Snapshot) -> None:
    """Load one snapshot of the run, keeping the latent and camera."""
    app.training.loaded = snap.path
    app.load_model(snap.path, keep_view=True)


def draw(app: WidgetHost) -> None:
    """Folder field with Open; the snapshot list, Prev / Next and 'follow the newest'."""
    run = app.training
    imgui.text("training run")
    help_marker("A folder of network-snapshot-NNNNNN.pkl files (NNNNNN = kimg), as EG3D's training writes them.")
    imgui.set_next_item_width(-60)
    entered, run.folder = imgui.input_text("##run_folder", run.folder, imgui.InputTextFlags_.enter_returns_true.value)
    mark(app, "run_folder")
    imgui.same_line()
    clicked = imgui.button("Open##run")
    mark(app, "run_open")
    if (entered or clicked) and run.folder.strip():
        run.open(run.folder, time.perf_counter())
    if run.error:
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(imgui.ImVec4(1.0, 0.7, 0.3, 1.0), run.error)
        imgui.pop_text_wrap_pos()
    if run.opened is None:
        return
    current = run.index()
    if imgui.button("< prev##run"):
        snap = run.step(-1)
        if snap is not None:
            load(app, snap)
    mark(app, "run_prev")
    imgui.same_line()
    if imgui.button("next >##run"):
        snap = run.step(1)
        if snap is not None:
            load(app, snap)
    mark(app, "run_next")
    imgui.same_line()
    changed, follow = imgui.checkbox("follow the newest", run.follow)
    mark(app, "run_follow")
    if changed:
        run.follow = follow
    label = "none loaded" if current is None else f"{current + 1} of {len(run.snapshots)}"
    imgui.text_disabled(f"{len(run.snapshots)} snapshots in {Path(run.opened).name}, {label}")
    row_h = imgui.get_text_line_height_with_spacing()
    imgui.begin_child("run_list", imgui.ImVec2(0, row_h * min(max(len(run.snapshots), 1), LIST_ROWS) + 8))
    for i, snap in enumerate(run.snapshots):
        clicked, _ = imgui.selectable(f"kimg {snap.kimg:06d}##{snap.path}", i == current)
        mark(app, f"run_kimg_{snap.kimg}")
        if clicked:
            load(app, snap)
        if i == current and run.follow:
            imgui.set_scroll_here_y(1.0)
    imgui.end_child()
