"""Export panel part 'views of this latent': a small multi-view dataset of the latent on screen (a nerfstudio /
instant-ngp transforms.json folder with images, depth, masks and cameras), in the background with progress and
Cancel (the progress bar above)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from renderer.dataset.views import SAMPLERS

from ..exports import start_views
from ..validate import clamp_int
from ._ui import LABEL_WIDTH, choice, help_marker, mark

if TYPE_CHECKING:
    from viz.host import WidgetHost

MAX_VIEWS = 4096
SAMPLERS_HERE = tuple(s for s in SAMPLERS if s != "list")
"""The samplers the panel offers (a camera list comes from the command line's --views-from)."""


def draw(app: WidgetHost) -> None:
    s = app.export_settings
    imgui.text("views of this latent")
    help_marker(
        "Renders the latent on screen from many cameras into a folder nerfstudio or gsplat opens directly: "
        "transforms.json (intrinsics in pixels, camera-to-world in their OpenGL axes), images, float and 16-bit "
        "depth, opacity masks, z / w and the settings. 'training' draws the model's own pose distribution."
    )
    imgui.set_next_item_width(-LABEL_WIDTH)
    changed, n = imgui.input_int("views", s.views_count, 1, 8)
    mark(app, "views_count", "views")
    if changed:
        s.views_count = clamp_int(app.ui, "views", n, 1, MAX_VIEWS, s.views_count)
    s.views_sampler = choice("cameras", s.views_sampler, SAMPLERS_HERE)
    _, s.views_raw = imgui.checkbox("raw render too", s.views_raw)
    imgui.same_line()
    _, s.views_normals = imgui.checkbox("normals", s.views_normals)
    imgui.set_next_item_width(-LABEL_WIDTH)
    _, s.views_path = imgui.input_text("views folder", s.views_path)
    mark(app, "views_path", "views folder")
    imgui.begin_disabled(app.exporter.busy)
    if imgui.button("export views of this latent"):
        start_views(app)
    mark(app, "export_views")
    imgui.end_disabled()
