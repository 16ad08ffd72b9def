"""The camera-path editor without GL: keyframes taken from the current view, edited, played and scrubbed.

While the timeline plays or is scrubbed the viewer follows the path: each frame the state gets the path's camera,
latent (a blend between keyframes, through VizState.latent_override), psi and cutoff at the timeline's time, so the
render loop previews it at interactive quality. Moving the camera or touching the latent, psi or cutoff by hand ends
the preview (the view is the user's again)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import numpy as np

from renderer.paths.interpolate import PathSample, sample
from renderer.paths.keyframes import VIEWS, CameraPath, Keyframe

from .orbit import OrbitCamera
from .state import VizState

KEYFRAME_GAP_S = 2.0
"""Seconds after the last keyframe where 'add keyframe' puts a new one (when the timeline is not on a free time)."""


def keyframe_from_view(state: VizState, time: float) -> Keyframe:
    """A keyframe of what the viewer shows: camera (pose and FOV), latent (seed or A/B blend), psi, cutoff, view."""
    cam, lat = state.camera, state.latent
    view = state.view.view if state.view.view in VIEWS else "image"
    return Keyframe(
        time=float(time),
        yaw=cam.yaw,
        pitch=cam.pitch,
        radius=cam.radius,
        pivot=cam.pivot,
        center=cam.center,
        fov_deg=cam.fov_deg,
        seed=float(lat.seed),
        seed_b=float(lat.seed_b) if lat.interp else None,
        t=float(lat.t) if lat.interp else 0.0,
        psi=float(state.trunc.psi),
        cutoff=state.trunc.cutoff,
        view=view,
    )


def camera_of(s: PathSample | Keyframe) -> OrbitCamera:
    """The viewer's orbit camera of a path sample or keyframe (a roll, from an imported path, is not shown)."""
    return OrbitCamera(s.yaw, s.pitch, s.radius, s.pivot, s.center, s.fov_deg)


@dataclass
class PathEditor:
    """The Path panel's state (UI thread): the path, the selected keyframe, the timeline, file and video fields."""

    path: CameraPath | None = None
    selected: int | None = None
    time: float = 0.0
    """The timeline's position (seconds)."""
    playing: bool = False
    following: bool = False
    """The view shows the path at `time` (set by play, scrub and jumps; ended by moving the view by hand)."""
    file: str = ""
    """The path file field (our JSON; Load also reads nerfstudio's camera_path.json)."""
    video_view: str = "image"
    video_path: str = ""
    png_sequence: bool = False
    """Also write PNG frames, depth maps and cameras.json beside the MP4."""
    show_overlay: bool = True
    """Draw the path and its keyframe cameras over the render (always in the geometry view)."""
    error: str | None = None
    overlay_points: list[tuple[float, float]] | None = None
    """Window coordinates of the path line drawn this frame (tests)."""
    _applied: tuple | None = None
    """What following last wrote into the state (a difference means the user changed it)."""
    _positions: tuple | None = None

    # ----------------------------------------------------------------- keyframes
    def add(self, state: VizState) -> int:
        """Add a keyframe of the current view: at the timeline's time when no keyframe is there and the timeline
        was moved there, else KEYFRAME_GAP_S after the last keyframe (0 for the first). Returns its index."""
        if self.path is None:
            time = 0.0
        elif self.following and all(abs(k.time - self.time) > 1e-6 for k in self.path.keyframes):
            time = self.time
        else:
            time = self.path.keyframes[-1].time + KEYFRAME_GAP_S
        k = keyframe_from_view(state, time)
        self.path = CameraPath((k,)) if self.path is None else self.path.add_keyframe(k)
        self.selected = self.path.keyframes.index(k)
        self.time = k.time
        self._release(state)
        return self.selected

    def update(self, state: VizState, i: int) -> None:
        """Keyframe i takes the current view (its time stays)."""
        assert self.path is not None
        k = keyframe_from_view(state, self.path.keyframes[i].time)
        self.path = self.path.update_keyframe(i, k)
        self.selected = self.path.keyframes.index(k)

    def delete(self, i: int) -> None:
        """Remove keyframe i (the last one removed leaves no path)."""
        assert self.path is not None
        if len(self.path.keyframes) == 1:
            self.path, self.selected = None, None
            self.time, self.playing, self.following = 0.0, False, False
            return
        self.path = self.path.delete_keyframe(i)
        self.selected = min(i, len(self.path.keyframes) - 1)

    def set_time(self, i: int, time: float) -> None:
        """Move keyframe i to `time` (re-sorted; a time another keyframe holds raises ValueError)."""
        assert self.path is not None
        k = replace(self.path.keyframes[i], time=float(time))
        self.path = self.path.update_keyframe(i, k)
        self.selected = self.path.keyframes.index(k)

    def move(self, i: int, delta: int) -> None:
        """Swap keyframe i with its neighbour (delta -1: earlier, +1: later): they exchange times."""
        assert self.path is not None
        j = i + delta
        kfs = list(self.path.keyframes)
        if not 0 <= j < len(kfs):
            return
        a, b = kfs[i], kfs[j]
        kfs[i], kfs[j] = replace(b, time=a.time), replace(a, time=b.time)
        self.path = self.path.with_keyframes(kfs)
        self.selected = j

    def settings(self, **changes) -> None:
        """Change how the path plays (mode, loop, constant_speed, tension, latent_space, fps, duration)."""
        assert self.path is not None
        self.path = dataclasses.replace(self.path, **changes)

    def path_positions(self, n: int) -> np.ndarray:
        """(n, 3) camera positions along the whole path (cached per path)."""
        assert self.path is not None
        key = (self.path, n)
        if self._positions is None or self._positions[0] != key:
            times = np.linspace(0.0, self.path.total_duration, n)
            self._positions = (key, np.array([sample(self.path, float(t)).cam2world[:3, 3] for t in times]))
        return self._positions[1]

    # ----------------------------------------------------------------- timeline
    @property
    def duration(self) -> float:
        return self.path.total_duration if self.path is not None else 0.0

    def jump(self, state: VizState, i: int) -> None:
        """Show keyframe i: the timeline goes to its time and the view follows."""
        assert self.path is not None
        self.selected = i
        self.scrub(state, self.path.keyframes[i].time)

    def step_keyframe(self, state: VizState, delta: int) -> None:
        """Jump to the next (delta 1) or previous (-1) keyframe from the timeline's time."""
        if self.path is None:
            return
        times = self.path.times
        if delta > 0:
            later = [i for i, t in enumerate(times) if t > self.time + 1e-9]
            target = later[0] if later else (0 if self.path.loop else len(times) - 1)
        else:
            earlier = [i for i, t in enumerate(times) if t < self.time - 1e-9]
            target = earlier[-1] if earlier else (len(times) - 1 if self.path.loop else 0)
        self.jump(state, target)

    def scrub(self, state: VizState, time: float) -> None:
        """Put the timeline at `time` (clamped to the path) and show the path there."""
        self.time = min(max(float(time), 0.0), max(self.duration, 0.0))
        self.following = self.path is not None
        self.apply(state)

    def toggle_play(self, state: VizState) -> None:
        if self.path is None:
            return
        self.playing = not self.playing
        if self.playing:
            if self.time >= self.duration - 1.0 / self.path.fps - 1e-9:  # at the last frame: from the start
                self.time = 0.0
            self.following = True
            self.apply(state)

    def advance(self, state: VizState, dt: float) -> None:
        """One UI frame: end following when the user took the view over; move a playing timeline by dt seconds
        (a loop wraps, an open path stops at its end) and show the path there."""
        if not self.following or self.path is None:
            return
        if self._applied is not None and self._applied != self._applied_key(state):
            self._release(state)
            return
        if self.playing and dt > 0:
            t = self.time + dt
            if t >= self.duration:
                if self.path.loop:
                    t %= self.duration
                else:
                    t, self.playing = max(self.duration - 1.0 / self.path.fps, 0.0), False
            self.time = t
            self.apply(state)

    def apply(self, state: VizState) -> None:
        """Write the path at the timeline's time into the state (camera, latent, psi, cutoff)."""
        if self.path is None:
            return
        s = sample(self.path, self.time)
        state.camera = camera_of(s)
        state.camera_override = tuple(float(v) for v in s.camera)  # exactly the frame the video renders
        state.latent_override = s.latent
        state.trunc.psi, state.trunc.cutoff = s.psi, s.cutoff
        self._applied = self._applied_key(state)

    def _applied_key(self, state: VizState) -> tuple:
        return (state.camera, dataclasses.replace(state.latent), state.trunc.psi, state.trunc.cutoff)

    def _release(self, state: VizState) -> None:
        """Stop following: the view is the user's (the Latent panel's latent shows again)."""
        self.following = self.playing = False
        self._applied = None
        state.latent_override = state.camera_override = None
