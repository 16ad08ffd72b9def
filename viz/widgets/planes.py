"""Inspector tab 'Tri-planes': the three 32-channel planes side by side, labelled with the world axes each one
reads, as one channel or as a PCA projection to RGB fitted once per latent and shared by the three planes (the
same feature has the same colour on each); hovering a texel shows its coordinates and values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from renderer.inspect.planes import channel_images, plane_axes_labels, texel_info

from ..gfx.textures import Same
from ._ui import LABEL_WIDTH, help_marker, hovered_cell, mark, show_image

if TYPE_CHECKING:
    from viz.host import WidgetHost


def draw(app: WidgetHost) -> None:
    """Mode switch, the three planes, the explained variance (PCA) and the hovered texel's tooltip."""
    ins, s = app.inspector, app.inspector.state
    ins.hovered_texel = None
    src = ins.source
    if src is None:
        imgui.text_disabled("no frame yet")
        return
    for mode, label in (("pca", "PCA to RGB"), ("channel", "one channel")):
        if mode != "pca":
            imgui.same_line()
        if imgui.radio_button(label, s.plane_mode == mode):
            s.plane_mode = mode  # type: ignore[assignment]
        mark(app, f"plane_mode_{mode}")
    help_marker(
        "PCA: the 32 features of every texel of all three planes projected on their first three principal "
        "components (one fit per latent, shared by the planes). One channel: a shared grey scale."
    )
    planes = src.planes[0] if src.planes.dim() == 5 else src.planes
    n_channels, size = int(planes.shape[1]), int(planes.shape[-1])
    if s.plane_mode == "channel":
        imgui.set_next_item_width(-LABEL_WIDTH)
        changed, c = imgui.slider_int("channel##plane", min(s.plane_channel, n_channels - 1), 0, n_channels - 1)
        mark(app, "plane_channel", "channel")
        if changed:
            s.plane_channel = c
        channel = s.plane_channel
        images = None
        key: tuple = (Same(planes), "channel", channel)
    else:
        proj = ins.current("pca")
        if proj is None:
            imgui.text_disabled(ins.errors.get("pca") or "fitting the PCA of these planes...")
            return
        ev = proj.pca.explained
        imgui.text(f"explained variance {ev[0]:.1%} / {ev[1]:.1%} / {ev[2]:.1%} (total {float(sum(ev)):.1%})")
        mark(app, "plane_pca_variance")
        images = proj.images
        key = (Same(proj), "pca")

    labels = plane_axes_labels(src.G.plane_axes)
    spacing = imgui.get_style().item_spacing.x
    width = (imgui.get_content_region_avail().x - 2 * spacing) / 3
    rects = []
    for k in range(3):
        if k:
            imgui.same_line()
        imgui.begin_group()
        u, v = labels[k]
        imgui.text(f"plane {k}: ({u}, {v})")
        name = f"plane_{k}"

        def make(k=k):
            return images[k] if images is not None else channel_images(planes, channel)[k]

        rects.append(show_image(app, name, app.textures.get(name, key, make), width))
        imgui.end_group()
    imgui.text_disabled("u = right, v = down in each image; EG3D's third plane reads (z, x), not (y, z)")
    for k, rect in enumerate(rects):
        cell = hovered_cell(rect, size, size)
        if cell is None:
            continue
        info = texel_info(planes, k, cell[0], cell[1], src.G.plane_axes, float(src.G.rendering_kwargs["box_warp"]))
        ins.hovered_texel = (k, info)
        _texel_tooltip(k, info)


def _texel_tooltip(k: int, info) -> None:
    """Plane, texel, world coordinates and the 32 values of the hovered texel."""
    imgui.begin_tooltip()
    imgui.text(f"plane {k}  texel row {info.row}, col {info.col}")
    imgui.text(f"{info.axes[0]} = {info.u_world:+.4f}   {info.axes[1]} = {info.v_world:+.4f}")
    values = list(info.values)
    for i in range(0, len(values), 8):
        imgui.text_disabled(" ".join(f"{x:+.2f}" for x in values[i : i + 8]))
    imgui.end_tooltip()
