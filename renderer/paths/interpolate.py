"""Sampling a CameraPath at any time: smooth camera, latent blend data, psi, cutoff and view.

Time axis: keyframe times are seconds from the start; the video's frames are at i * D / N for
i < N = round(fps * D), D = path.total_duration (the end is excluded; an open path's default D is
the last keyframe plus one frame, so its last frame lands on the last keyframe; a loop's frame N
would repeat frame 0, so it is left out). Before the first / after the last keyframe an open path
holds that keyframe; a loop wraps time modulo D and closes with a segment from the last keyframe
to the first one at t_0 + D (neighbours wrap, so the joint is as smooth as any other).

Every interpolated quantity is a cubic Hermite spline in *time*, one tangent per keyframe shared by
the segments on both sides, so velocities are continuous across keyframes (C1):
* spline mode: camera positions, pivots and orbit centres use centripetal Catmull-Rom tangents (knot
  spacing sqrt(chord)), rescaled from knot to time units by the mean knot rate around the keyframe;
  orientation is a spherical cubic Bezier (de Casteljau with slerp) whose end tangents are each
  keyframe's angular velocity, a non-uniform Catmull-Rom difference of the neighbours' relative
  rotations (quaternion logs: shortest arcs, so no hemisphere flips; turns of any total angle work as
  long as neighbouring keyframes are less than 180 degrees apart). The camera looks where the
  quaternion says (not necessarily at the interpolated pivot between keyframes).
* orbit mode: yaw (unwrapped: each step the short way round), pitch, radius, roll, pivot and centre
  are splined, and the camera is built from them (it always looks at the pivot).
* FOV and psi (both modes) use the same spline with time knots.
* Kochanek-Bartels tension scales every tangent by (1 - tension). Open ends use the chord as tangent.
* constant_speed re-times the whole path (latent included) so the camera position moves at constant
  speed, by a dense arc-length lookup table; keyframes are then passed at other times.
The latent between keyframes i and i+1 is blended linearly in time: weight u in [0, 1) of the
segment, lerp in W or slerp in Z (path.latent_space), as a LatentSpec (seed -> seed_b at t when both
keyframes are plain seeds, else a blend_to of the keyframes' own A/B blends). cutoff and view step:
they are keyframe i's. At a keyframe's time the sample is that keyframe exactly.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass

import numpy as np

from ..camera import Camera, focal_to_fov, fov_to_focal, orbit_position
from ..engine.request import LatentSpec
from .keyframes import PITCH_MAX, CameraPath, Keyframe, camera25, orbit_cam2world

LUT_PER_SEGMENT = 256


# ----------------------------------------------------------------- quaternions (w, x, y, z)
def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Unit quaternion of a 3x3 rotation matrix (Shepperd's method; w >= 0)."""
    m = np.asarray(m, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2 * math.sqrt(tr + 1)
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2 * math.sqrt(1 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2 * math.sqrt(1 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2 * math.sqrt(1 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4]
    out = np.array(q)
    out /= np.linalg.norm(out)
    return -out if out[0] < 0 else out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_log(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of a unit quaternion; the short way round."""
    q = q if q[0] >= 0 else -q
    v = q[1:]
    s = float(np.linalg.norm(v))
    if s < 1e-15:
        return 2 * v  # first order
    return v * (2 * math.atan2(s, float(q[0])) / s)


def quat_exp(r: np.ndarray) -> np.ndarray:
    """Unit quaternion of a rotation vector."""
    a = float(np.linalg.norm(r))
    if a < 1e-15:
        q = np.array([1.0, *(0.5 * r)])
        return q / np.linalg.norm(q)
    return np.array([math.cos(a / 2), *(math.sin(a / 2) / a * r)])


def quat_slerp(a: np.ndarray, b: np.ndarray, u: float) -> np.ndarray:
    """Shortest-arc spherical interpolation; exactly a at u = 0."""
    if u == 0:
        return a
    return quat_mul(a, quat_exp(u * quat_log(quat_mul(quat_conj(a), b))))


# ----------------------------------------------------------------- splines
class _HermiteSpline:
    """Cubic Hermite spline through values at knot times, one tangent per knot (C1 in time).

    `values` (n, d). For a loop, knot n (time t_0 + period) repeats knot 0 plus `offset` (the unwrapped
    yaw's extra turns), and neighbours wrap. `centripetal` shapes tangents by sqrt(chord) knot spacing.
    """

    def __init__(
        self,
        times: np.ndarray,
        values: np.ndarray,
        loop: bool,
        period: float,
        tension: float,
        centripetal: bool = False,
        offset: np.ndarray | None = None,
    ):
        n = len(times)
        v = np.asarray(values, dtype=np.float64).reshape(n, -1)
        off = np.zeros(v.shape[1]) if offset is None else np.asarray(offset, dtype=np.float64).reshape(-1)
        self.loop = loop
        if loop:
            self.t = np.concatenate([times, [times[0] + period]])
            self.v = np.concatenate([v, v[:1] + off])
        else:
            self.t = np.asarray(times, dtype=np.float64)
            self.v = v
        scale = 1.0 - tension
        m = np.zeros_like(self.v)
        if n >= 2 or loop:
            for k in range(len(self.t)):
                m[k] = scale * self._tangent(k, n, period, off, centripetal)
        self.m = m

    def _neighbour(self, k: int, n: int, period: float, off: np.ndarray) -> tuple[float, np.ndarray]:
        """Time and value of knot k of the infinite periodic sequence (loops) or the clamped one."""
        if self.loop:
            turns, j = divmod(k, n)
            return float(self.t[j] + turns * period), self.v[j] + turns * off
        return float(self.t[k]), self.v[k]

    def _tangent(self, k: int, n: int, period: float, off: np.ndarray, centripetal: bool) -> np.ndarray:
        if not self.loop and (k == 0 or k == n - 1):
            j0, j1 = (0, 1) if k == 0 else (n - 2, n - 1)
            return (self.v[j1] - self.v[j0]) / (self.t[j1] - self.t[j0])
        tp, vp = self._neighbour(k - 1, n, period, off)
        tk, vk = self._neighbour(k, n, period, off)
        tn, vn = self._neighbour(k + 1, n, period, off)
        dt0, dt1 = tk - tp, tn - tk
        if not centripetal:
            return (vk - vp) / dt0 - (vn - vp) / (dt0 + dt1) + (vn - vk) / dt1
        dk0 = max(math.sqrt(float(np.linalg.norm(vk - vp))), 1e-12)
        dk1 = max(math.sqrt(float(np.linalg.norm(vn - vk))), 1e-12)
        if dk0 + dk1 < 1e-9:
            return np.zeros_like(vk)
        mk = (vk - vp) / dk0 - (vn - vp) / (dk0 + dk1) + (vn - vk) / dk1
        return mk * (dk0 + dk1) / (dt0 + dt1)

    def eval(self, k: int, u: float) -> np.ndarray:
        """Value on segment k (knot k to k+1) at fraction u in [0, 1]."""
        if u == 0:
            return self.v[k].copy()
        h = self.t[k + 1] - self.t[k]
        u2, u3 = u * u, u * u * u
        return (
            (2 * u3 - 3 * u2 + 1) * self.v[k]
            + (u3 - 2 * u2 + u) * h * self.m[k]
            + (-2 * u3 + 3 * u2) * self.v[k + 1]
            + (u3 - u2) * h * self.m[k + 1]
        )


class _QuatSpline:
    """C1 orientation spline: per segment a spherical cubic Bezier whose end tangents are the keyframes'
    angular velocities (body frame, rad/s); neighbours' relative rotations are taken the short way."""

    def __init__(self, times: np.ndarray, quats: list[np.ndarray], loop: bool, period: float, tension: float):
        n = len(times)
        self.loop = loop
        self.t = np.concatenate([times, [times[0] + period]]) if loop else np.asarray(times, dtype=np.float64)
        self.q = [*quats, quats[0]] if loop else list(quats)
        # orient each quaternion into the hemisphere of its predecessor (the logs below are short-arc anyway)
        for i in range(1, len(self.q)):
            if np.dot(self.q[i], self.q[i - 1]) < 0:
                self.q[i] = -self.q[i]
        scale = 1.0 - tension
        self.w: list[np.ndarray] = []
        for k in range(len(self.q)):
            if n < 2 and not loop:
                self.w.append(np.zeros(3))
                continue
            self.w.append(scale * self._velocity(k, n, period, quats))

    def _velocity(self, k: int, n: int, period: float, quats: list[np.ndarray]) -> np.ndarray:
        def at(j: int) -> tuple[float, np.ndarray]:
            if self.loop:
                turns, jj = divmod(j, n)
                return float(self.t[jj] + turns * period), quats[jj]
            return float(self.t[j]), quats[j]

        if not self.loop and (k == 0 or k == n - 1):
            j0, j1 = (0, 1) if k == 0 else (n - 2, n - 1)
            rel = quat_log(quat_mul(quat_conj(quats[j0]), quats[j1]))
            return rel / (self.t[j1] - self.t[j0])
        tp, qp = at(k - 1)
        tk, qk = at(k)
        tn, qn = at(k + 1)
        a = quat_log(quat_mul(quat_conj(qk), qp))  # towards the previous keyframe, in qk's frame
        b = quat_log(quat_mul(quat_conj(qk), qn))
        dt0, dt1 = tk - tp, tn - tk
        return -a / dt0 - (b - a) / (dt0 + dt1) + b / dt1

    def eval(self, k: int, u: float) -> np.ndarray:
        if u == 0:
            return self.q[k]
        h = self.t[k + 1] - self.t[k]
        b0, b3 = self.q[k], self.q[k + 1]
        b1 = quat_mul(b0, quat_exp(self.w[k] * h / 3))
        b2 = quat_mul(b3, quat_exp(-self.w[k + 1] * h / 3))
        c0, c1, c2 = quat_slerp(b0, b1, u), quat_slerp(b1, b2, u), quat_slerp(b2, b3, u)
        d0, d1 = quat_slerp(c0, c1, u), quat_slerp(c1, c2, u)
        q = quat_slerp(d0, d1, u)
        return q / np.linalg.norm(q)


# ----------------------------------------------------------------- samples
@dataclass(frozen=True, eq=False)
class PathSample:
    """The path at one time: camera, orbit description, latent blend, psi, cutoff and view."""

    time: float
    """The time asked for (seconds)."""
    path_time: float
    """Where on the keyframe timeline it falls (after loop wrapping and constant-speed re-timing)."""
    cam2world: np.ndarray
    """4x4 OpenCV cam2world (float64)."""
    fov_deg: float
    focal: float
    camera: Camera
    """The EG3D 25-value camera."""
    yaw: float
    pitch: float
    radius: float
    pivot: tuple[float, float, float]
    center: tuple[float, float, float]
    roll: float
    index: int
    """Keyframe the segment starts at (or the keyframe held)."""
    next_index: int
    """Keyframe the segment ends at (== index when holding)."""
    weight: float
    """Latent blend from keyframe `index` (0) to `next_index` (1)."""
    latent: LatentSpec
    psi: float
    cutoff: int | None
    view: str
    at_keyframe: int | None = None
    """The keyframe's index when the sample is exactly a keyframe."""


@dataclass
class _Prepared:
    path: CameraPath
    times: np.ndarray
    period: float
    pos: _HermiteSpline
    pivot: _HermiteSpline
    center: _HermiteSpline
    scalars: _HermiteSpline
    """fov, psi, and for orbit mode yaw (unwrapped), pitch, radius, roll."""
    rot: _QuatSpline | None
    lut: tuple[np.ndarray, np.ndarray] | None = None


def _unwrapped_yaws(kfs: tuple[Keyframe, ...], loop: bool) -> tuple[np.ndarray, float]:
    """Keyframe yaws shifted by whole turns so each step goes the short way; plus a loop's total turn."""
    out = [kfs[0].yaw]
    for k in kfs[1:]:
        d = math.remainder(k.yaw - out[-1], 2 * math.pi)
        out.append(out[-1] + d)
    offset = 0.0
    if loop:
        closing = out[-1] + math.remainder(kfs[0].yaw - out[-1], 2 * math.pi)
        offset = closing - kfs[0].yaw
    return np.array(out), offset


@functools.lru_cache(maxsize=16)
def _prepare(path: CameraPath) -> _Prepared:
    kfs = path.keyframes
    times = np.array([k.time for k in kfs], dtype=np.float64)
    period = path.total_duration
    loop, ten = path.loop, path.tension
    mats = [k.cam2world() for k in kfs]
    pos = _HermiteSpline(times, np.array([m[:3, 3] for m in mats]), loop, period, ten, centripetal=True)
    pivot = _HermiteSpline(times, np.array([k.pivot for k in kfs]), loop, period, ten, centripetal=True)
    center = _HermiteSpline(times, np.array([k.center for k in kfs]), loop, period, ten, centripetal=True)
    yaws, yaw_off = _unwrapped_yaws(kfs, loop)
    cols = np.array([[k.fov_deg, k.psi, y, k.pitch, k.radius, k.roll] for k, y in zip(kfs, yaws)])
    scalars = _HermiteSpline(times, cols, loop, period, ten, offset=np.array([0, 0, yaw_off, 0, 0, 0]))
    rot = None
    if path.mode == "spline":
        rot = _QuatSpline(times, [quat_from_matrix(m[:3, :3]) for m in mats], loop, period, ten)
    prep = _Prepared(path, times, period, pos, pivot, center, scalars, rot)
    if path.constant_speed and (len(kfs) > 1):
        prep.lut = _arc_length_table(prep)
    return prep


def _domain(prep: _Prepared) -> tuple[float, float]:
    t = prep.times
    return (float(t[0]), float(t[0] + prep.period)) if prep.path.loop else (float(t[0]), float(t[-1]))


def _locate(prep: _Prepared, s: float) -> tuple[int, float, float]:
    """(segment k, fraction u, timeline time) of time s; u = 0 and k = the held keyframe outside an open path."""
    t = prep.times
    n = len(t)
    if prep.path.loop:
        s = float(t[0] + (s - t[0]) % prep.period)
        knots = [*t, t[0] + prep.period]
    else:
        if s <= t[0]:
            return 0, 0.0, float(t[0])
        if s >= t[-1]:
            return n - 1, 0.0, float(t[-1])
        knots = list(t)
    k = min(bisect.bisect_right(knots, s) - 1, len(knots) - 2)
    k = max(k, 0)
    u = (s - knots[k]) / (knots[k + 1] - knots[k])
    return k, min(max(u, 0.0), 1.0), s


def _position(prep: _Prepared, k: int, u: float) -> np.ndarray:
    """Camera position on segment k at u (orbit mode: from the splined orbit parameters)."""
    if prep.path.mode == "spline":
        return prep.pos.eval(k, u)
    _, _, yaw, pitch, radius, _ = prep.scalars.eval(k, u)
    center = _vec3(prep.center.eval(k, u))
    return orbit_position(float(yaw), _clamp_pitch(pitch), max(float(radius), 1e-6), center)


def _clamp_pitch(p: float) -> float:
    return min(max(float(p), -PITCH_MAX), PITCH_MAX)


def _arc_length_table(prep: _Prepared) -> tuple[np.ndarray, np.ndarray]:
    """(times, cumulative camera-position arc length) over the path's keyframe domain, densely sampled."""
    a, b = _domain(prep)
    segs = len(prep.times) - (0 if prep.path.loop else 1)
    ts = np.linspace(a, b, segs * LUT_PER_SEGMENT + 1)
    pts = []
    for s in ts:
        k, u, _ = _locate(prep, float(s)) if s < b else (segs - 1, 1.0, b)
        pts.append(_position(prep, k, u))
    steps = np.linalg.norm(np.diff(np.array(pts), axis=0), axis=1)
    return ts, np.concatenate([[0.0], np.cumsum(steps)])


def _retime(prep: _Prepared, s: float) -> float:
    """The timeline time at which a constant-speed path is at time s."""
    if prep.lut is None:
        return s
    ts, cum = prep.lut
    total = float(cum[-1])
    if total < 1e-9:
        return s
    a, b = _domain(prep)
    if prep.path.loop:
        s = a + (s - a) % (b - a)
    elif s <= a or s >= b:
        return s
    target = (s - a) / (b - a) * total
    return float(np.interp(target, cum, ts))


def _latent(path: CameraPath, i: int, j: int, w: float) -> LatentSpec:
    kfs, space = path.keyframes, path.latent_space
    ki = kfs[i]
    if w == 0 or i == j:
        return LatentSpec(seed=ki.seed, seed_b=ki.seed_b, t=ki.t, space=space)
    a, b = ki.latent_key(), kfs[j].latent_key()
    if a == b:
        return LatentSpec(seed=a[0], seed_b=a[1], t=a[2], space=space)
    if a[1] is None and b[1] is None:
        return LatentSpec(seed=a[0], seed_b=b[0], t=w, space=space)
    return LatentSpec(
        seed=a[0],
        seed_b=a[1],
        t=a[2],
        space=space,
        blend_to=LatentSpec(seed=b[0], seed_b=b[1], t=b[2], space=space),
        blend_t=w,
    )


def _keyframe_sample(path: CameraPath, time: float, i: int) -> PathSample:
    k = path.keyframes[i]
    m = k.cam2world()
    return PathSample(
        time=time,
        path_time=k.time,
        cam2world=m,
        fov_deg=k.fov_deg,
        focal=k.focal,
        camera=camera25(m, k.fov_deg),
        yaw=k.yaw,
        pitch=k.pitch,
        radius=k.radius,
        pivot=k.pivot,
        center=k.center,
        roll=k.roll,
        index=i,
        next_index=i,
        weight=0.0,
        latent=_latent(path, i, i, 0.0),
        psi=k.psi,
        cutoff=k.cutoff,
        view=k.view,
        at_keyframe=i,
    )


def _vec3(v) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


def sample(path: CameraPath, time: float) -> PathSample:
    """The path at `time` seconds (see the module doc for the time axis and the interpolation)."""
    if not math.isfinite(time):
        raise ValueError(f"time must be a finite number, got {time!r}")
    prep = _prepare(path)
    k, u, s = _locate(prep, _retime(prep, float(time)))
    n = len(path.keyframes)
    if u == 0:
        return _keyframe_sample(path, float(time), k % n)
    j = (k + 1) % n
    fov, psi, yaw, pitch, radius, roll = (float(x) for x in prep.scalars.eval(k, u))
    fov = min(max(fov, 0.01), 179.9)
    pivot = _vec3(prep.pivot.eval(k, u))
    center = _vec3(prep.center.eval(k, u))
    if path.mode == "orbit":
        pitch, radius = _clamp_pitch(pitch), max(radius, 1e-6)
        m = orbit_cam2world(yaw, pitch, radius, pivot, center, roll)
    else:
        assert prep.rot is not None
        m = np.eye(4)
        m[:3, :3] = quat_to_matrix(prep.rot.eval(k, u))
        m[:3, 3] = prep.pos.eval(k, u)
        rel = m[:3, 3] - np.asarray(center)
        radius = float(np.linalg.norm(rel))
        pitch = -float(np.clip(rel[1] / max(radius, 1e-12), -1, 1)) * math.pi / 2
        yaw = math.atan2(float(rel[0]), float(rel[2]))
        roll = _roll_of(m)
    ki = path.keyframes[k % n]
    focal = fov_to_focal(fov)
    return PathSample(
        time=float(time),
        path_time=s,
        cam2world=m,
        fov_deg=focal_to_fov(focal),
        focal=focal,
        camera=camera25(m, fov),
        yaw=yaw,
        pitch=pitch,
        radius=radius,
        pivot=pivot,
        center=center,
        roll=roll,
        index=k % n,
        next_index=j,
        weight=float(u),
        latent=_latent(path, k % n, j, float(u)),
        psi=psi,
        cutoff=ki.cutoff,
        view=ki.view,
    )


def _roll_of(m: np.ndarray) -> float:
    """Roll of an OpenCV cam2world relative to the un-rolled look-at frame along its viewing axis."""
    f = m[:3, 2]
    right = -np.cross([0.0, 1.0, 0.0], f)
    nr = np.linalg.norm(right)
    if nr < 1e-12:
        return 0.0
    right /= nr
    down = np.cross(f, right)
    x = m[:3, 0]
    return math.atan2(float(np.dot(x, down)), float(np.dot(x, right)))


def frame_times(path: CameraPath) -> np.ndarray:
    """Times of the video's frames: i * D / N for i < N = round(fps * D) (end excluded; see module doc)."""
    n = path.frame_count
    return np.arange(n, dtype=np.float64) * (path.total_duration / n)


def samples(path: CameraPath) -> list[PathSample]:
    """The sample of every frame, in order."""
    return [sample(path, float(t)) for t in frame_times(path)]
