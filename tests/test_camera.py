"""Camera conventions as properties: orthonormal frames, look-at, orbit and FOV round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.camera import DEFAULT_FOV_DEG, camera_to_orbit, default_camera, focal_to_fov, fov_to_focal, orbit_camera

yaws = st.floats(-math.pi + 1e-3, math.pi - 1e-3)
pitches = st.floats(-1.5, 1.5)
radii = st.floats(0.5, 10)
pivots = st.tuples(*[st.floats(-0.3, 0.3)] * 3)


@settings(max_examples=200, deadline=None)
@given(yaws, pitches, radii, pivots, st.floats(5, 120))
def test_orbit_camera_properties(yaw, pitch, radius, pivot, fov):
    c = orbit_camera(yaw, pitch, radius, pivot, fov_deg=fov).numpy().astype(np.float64)
    m = c[:16].reshape(4, 4)
    r, t = m[:3, :3], m[:3, 3]
    assert np.allclose(m[3], [0, 0, 0, 1])
    assert np.allclose(r.T @ r, np.eye(3), atol=1e-6)
    assert np.linalg.det(r) == pytest.approx(1, abs=1e-5)  # right-handed: x right, y down, z forward
    assert np.linalg.norm(t) == pytest.approx(radius, rel=1e-5)  # on the sphere around the world origin
    to_pivot = np.asarray(pivot) - t
    assert np.allclose(np.cross(r[:, 2], to_pivot / np.linalg.norm(to_pivot)), 0, atol=1e-5)  # looks at pivot
    assert r[:, 2] @ to_pivot > 0
    assert r[1, 0] == pytest.approx(0, abs=1e-6)  # no roll: the x axis stays horizontal
    assert r[1, 1] <= 1e-6  # image y points down in a y-up world
    k = c[16:].reshape(3, 3)
    assert np.allclose(k, [[fov_to_focal(fov), 0, 0.5], [0, fov_to_focal(fov), 0.5], [0, 0, 1]], rtol=1e-6)


@settings(max_examples=200, deadline=None)
@given(yaws, pitches, radii, pivots, st.floats(0.5, 10))
def test_orbit_round_trip(yaw, pitch, radius, pivot, focal):
    orbit = camera_to_orbit(orbit_camera(yaw, pitch, radius, pivot, focal=focal))
    assert orbit.yaw == pytest.approx(yaw, abs=2e-5)
    assert orbit.pitch == pytest.approx(pitch, abs=2e-5)
    assert orbit.radius == pytest.approx(radius, rel=1e-5)
    assert orbit.focal == pytest.approx(focal, rel=1e-6)


@given(st.floats(1, 170))
def test_fov_focal_round_trip(fov):
    assert focal_to_fov(fov_to_focal(fov)) == pytest.approx(fov, rel=1e-9)


def test_reference_constants():
    """FOV 18.837 deg is the reference's focal 4.2634; frontal camera matrix as documented."""
    assert fov_to_focal(DEFAULT_FOV_DEG) == pytest.approx(4.263391, abs=1e-6)
    assert fov_to_focal(45) == pytest.approx(1.7071, abs=1e-3)
    c = default_camera({"avg_camera_radius": 2.7, "avg_camera_pivot": [0, 0, 0.2]}).numpy()
    m = c[:16].reshape(4, 4)
    assert np.allclose(m[:3, :3], [[1, 0, 0], [0, -1, 0], [0, 0, -1]], atol=1e-7)
    assert np.allclose(m[:3, 3], [0, 0, 2.7], atol=1e-6)


def test_yaw_and_pitch_directions():
    """+yaw moves the camera towards +x; +pitch moves it down (reference convention)."""
    right = orbit_camera(0.3, 0, 2.7, (0, 0, 0), focal=4).numpy()[:16].reshape(4, 4)[:3, 3]
    down = orbit_camera(0, 0.3, 2.7, (0, 0, 0), focal=4).numpy()[:16].reshape(4, 4)[:3, 3]
    assert right[0] > 0 and down[1] < 0


def test_golden_cameras(golden_cases):
    """The golden file's render cameras are orbit cameras at radius 2.7, pivot (0,0,0.2), FOV 18.837."""
    for n in range(5):
        c = orbit_camera(
            float(golden_cases["case_yaw"][n]), float(golden_cases["case_pitch"][n]), 2.7, (0, 0, 0.2), fov_deg=18.837
        )
        assert np.abs(c.numpy() - golden_cases["case_c_render"][n]).max() < 1e-6


@pytest.mark.parametrize("bad", [dict(fov_deg=0), dict(fov_deg=180), dict(focal=-1), dict()])
def test_bad_camera_values(bad):
    with pytest.raises(ValueError):
        orbit_camera(0, 0, 2.7, (0, 0, 0), **bad)
    with pytest.raises(ValueError):
        orbit_camera(0, 0, 0, (0, 0, 0), focal=1)
