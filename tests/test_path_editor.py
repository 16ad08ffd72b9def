"""The viewer's camera-path editor and overlay maths without a window: keyframes from the view, editing, the
timeline (play, loop, end), following and giving the view back, and the overlay projection against the mesh view's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from renderer.paths.interpolate import sample
from viz.gfx.mesh_view import project_ndc
from viz.orbit import OrbitCamera
from viz.path_editor import KEYFRAME_GAP_S, PathEditor, camera_of, keyframe_from_view
from viz.projection import project
from viz.state import VizState


def view(state: VizState, yaw: float, seed: float, psi: float = 0.7) -> VizState:
    state.camera = replace(state.camera, yaw=yaw, pitch=0.1)
    state.latent.seed, state.trunc.psi = seed, psi
    return state


def three_keyframes() -> tuple[PathEditor, VizState]:
    ed, st = PathEditor(), VizState()
    for yaw, seed in ((0.0, 0), (0.5, 1), (-0.4, 2)):
        ed.add(view(st, yaw, seed))
    return ed, st


def test_a_keyframe_takes_the_view():
    st = view(VizState(), 0.3, 7.0, psi=0.5)
    st.latent.interp, st.latent.seed_b, st.latent.t = True, 9, 0.25
    st.camera = replace(st.camera, fov_deg=25.0, pivot=(0.1, 0.0, 0.2))
    st.view.view = "depth"
    k = keyframe_from_view(st, 1.5)
    assert (k.time, k.yaw, k.pitch, k.fov_deg, k.pivot) == (1.5, 0.3, 0.1, 25.0, (0.1, 0.0, 0.2))
    assert (k.seed, k.seed_b, k.t, k.psi, k.view) == (7.0, 9.0, 0.25, 0.5, "depth")
    assert np.allclose(np.asarray(k.camera25()), st.camera.to_camera().numpy(), atol=1e-6)
    st.view.view = "geometry"  # not a video view: the keyframe shows the image
    assert keyframe_from_view(st, 0.0).view == "image"


def test_keyframes_go_after_the_last_or_at_a_free_timeline_time():
    ed, st = three_keyframes()
    assert ed.path.times == (0.0, KEYFRAME_GAP_S, 2 * KEYFRAME_GAP_S)
    ed.scrub(st, 1.0)  # the timeline moved to a free time: the next keyframe goes there
    ed.add(view(st, 0.2, 5))
    assert ed.path.times == (0.0, 1.0, 2.0, 4.0) and ed.selected == 1
    assert not ed.following and st.latent_override is None  # adding hands the view back


def test_jump_update_move_delete_and_time():
    ed, st = three_keyframes()
    ed.jump(st, 1)
    k = ed.path.keyframes[1]
    assert np.allclose(st.camera.to_camera().numpy(), np.asarray(k.camera25()), atol=1e-6)
    assert st.latent_override.seed == k.seed and st.latent_override.seed_b is None
    ed.update(view(st, 0.9, 4), 1)
    assert ed.path.keyframes[1].yaw == 0.9 and ed.path.keyframes[1].time == KEYFRAME_GAP_S
    seeds = [k.seed for k in ed.path.keyframes]
    ed.move(1, 1)  # later: keyframes 1 and 2 swap times
    assert [k.seed for k in ed.path.keyframes] == [seeds[0], seeds[2], seeds[1]] and ed.selected == 2
    with pytest.raises(ValueError, match="already a keyframe"):
        ed.set_time(2, 0.0)
    ed.set_time(2, 0.5)
    assert [k.seed for k in ed.path.keyframes] == [seeds[0], seeds[1], seeds[2]] and ed.selected == 1
    ed.delete(0)
    ed.delete(0)
    ed.delete(0)
    assert ed.path is None and ed.selected is None


def test_playing_follows_the_path_and_stops_or_wraps_at_the_end():
    ed, st = three_keyframes()
    ed.toggle_play(st)  # from the last keyframe's frame: starts again at 0
    assert ed.playing and ed.time == 0.0
    ed.advance(st, 0.7)
    s = sample(ed.path, 0.7)
    assert st.camera == camera_of(s) and st.latent_override == s.latent and st.trunc.psi == s.psi
    assert st.snapshot(0).camera == tuple(float(v) for v in s.camera)  # the frame rendered is the path's own
    for _ in range(20):
        ed.advance(st, 0.5)
    assert not ed.playing and ed.time == pytest.approx(ed.duration - 1 / ed.path.fps)
    ed.settings(loop=True, duration=None)
    ed.toggle_play(st)
    start = ed.time
    ed.advance(st, ed.duration)  # one whole loop later: the same time
    assert ed.playing and ed.time == pytest.approx(start)


def test_moving_the_camera_or_the_latent_by_hand_ends_following():
    ed, st = three_keyframes()
    ed.scrub(st, 1.0)
    assert ed.following and st.latent_override is not None
    st.camera = replace(st.camera, yaw=st.camera.yaw + 0.1)  # a drag on the render
    ed.advance(st, 0.0)
    assert not ed.following and st.latent_override is None and st.camera_override is None
    ed.toggle_play(st)
    st.latent.seed = 42.0  # the Latent panel
    ed.advance(st, 0.1)
    assert not ed.following and not ed.playing and st.latent_override is None


def test_overlay_projection_matches_the_mesh_views():
    cam = OrbitCamera(yaw=0.4, pitch=-0.3, radius=3.0, pivot=(0.0, 0.05, 0.1)).to_camera().numpy()
    pts = np.random.default_rng(0).uniform(-0.4, 0.4, (50, 3))
    uv = project(cam, pts)
    ndc = project_ndc(cam, pts)
    assert np.allclose(uv[:, 0] * 2 - 1, ndc[:, 0], atol=1e-9)
    assert np.allclose(1 - uv[:, 1] * 2, ndc[:, 1], atol=1e-9)
    behind = project(cam, np.asarray(cam).reshape(-1)[:16].reshape(4, 4)[:3, 3][None] * 2)  # beyond the camera
    assert np.isnan(behind).all()
