"""A saved fit read back (renderer.fit.saved): the ws and camera the fit wrote come back exactly, from the folder, its
fit.json or its w.npy; the model to load is the tuned checkpoint beside it or the fit's network; every broken file
is one line naming it, and a pickled w.npy is refused without running anything."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from test_cli import assert_one_line_error, run_cli
from test_fit import TINY, _target

from renderer import load_generator
from renderer.builtin import WEIGHTS
from renderer.camera import camera_tuple, default_camera, orbit_camera
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.engine.frames import to_uint8
from renderer.export.mesh import default_level, export_mesh
from renderer.fit import CameraGuess, FitInputError, FitResult, FitSettings, Fitter, prepare
from renderer.fit.fit import w_basis
from renderer.fit.output import TUNED, write_fit
from renderer.fit.saved import opens_as_fit, read_fit


@pytest.fixture(scope="module")
def G():
    return load_generator("builtin")


def write_saved_fit(G, folder, yaw=0.2, pitch=-0.1, basis=None) -> FitResult:
    """Fit a built-in render of seed 3 at (yaw, pitch) for 2 small steps and write it into `folder` as `triplane-render
    fit` writes it (network 'builtin', photo /photos/portrait.png)."""
    target, _ = _target(G, yaw=yaw, pitch=pitch)
    prepared = prepare(G, to_uint8(target.image).numpy(), None, camera=CameraGuess(yaw, pitch))
    f = Fitter(G, target, prepared.camera, FitSettings(steps=2, **TINY), basis=basis)
    result = f.run()
    write_fit(folder, G, prepared, result, f.settings, network="builtin", photo="/photos/portrait.png")
    return result


@pytest.fixture(scope="module")
def written(G, tmp_path_factory):
    """A fit of a built-in render, written as `triplane-render fit` writes it: (folder, result)."""
    folder = tmp_path_factory.mktemp("fits") / "fit"
    return folder, write_saved_fit(G, folder, basis=w_basis(G, 256))


def test_a_saved_fit_reads_back_its_ws_and_camera(G, written):
    folder, result = written
    for path in (folder, folder / "fit.json", folder / "w.npy"):
        assert opens_as_fit(path)
        fit = read_fit(path)
        assert np.array_equal(fit.ws, result.ws) and fit.ws.dtype == np.float32
        assert (fit.network, fit.tuned, fit.label, fit.folder) == ("builtin", False, "portrait.png", folder)
        pivot = G.rendering_kwargs["avg_camera_pivot"]
        camera = orbit_camera(fit.yaw, fit.pitch, fit.radius, pivot, focal=fit.focal)
        assert torch.allclose(camera, torch.tensor(result.camera), atol=1e-5)  # the viewer's camera is the fit's
    assert not opens_as_fit(folder / "sheet.png") and not opens_as_fit(folder.parent)


def test_the_tuned_checkpoint_beside_a_fit_is_its_model(written, tmp_path):
    folder, _ = written
    copy = tmp_path / "fit"
    copy.mkdir()
    for name in ("fit.json", "w.npy"):
        (copy / name).write_bytes((folder / name).read_bytes())
    (copy / TUNED).write_bytes(WEIGHTS.read_bytes())
    fit = read_fit(copy)
    assert fit.tuned and fit.network == str(copy / TUNED)
    assert not opens_as_fit(copy / TUNED)  # it opens as a model, which brings the fit with it


def _broken(written, tmp_path, record=None, ws=None):
    """A copy of the written fit with fit.json's fields replaced by `record` and w.npy by `ws`."""
    folder, _ = written
    copy = tmp_path / "broken"
    copy.mkdir(exist_ok=True)
    rec = json.loads((folder / "fit.json").read_text())
    (copy / "fit.json").write_text(json.dumps({**rec, **(record or {})}))
    if ws is None:
        (copy / "w.npy").write_bytes((folder / "w.npy").read_bytes())
    else:
        np.save(copy / "w.npy", ws, allow_pickle=True)
    return copy


class _Payload:
    """Unpickling this would create a file: the proof that a pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_latent_is_refused_without_running_it(written, tmp_path):
    ran = tmp_path / "ran"
    bad = _broken(written, tmp_path, ws=np.array([_Payload(str(ran))], dtype=object))
    pickle.loads(pickle.dumps(_Payload(str(tmp_path / "probe")))).close()
    assert (tmp_path / "probe").exists()  # the payload is live: unpickled, it writes a file
    with pytest.raises(FitInputError, match=r"w\.npy is not a plain array .*pickle"):
        read_fit(bad)
    assert not ran.exists()


@pytest.mark.parametrize(
    "record, ws, message",
    [
        ({"camera": [0.0] * 24}, None, r"fit\.json: 'camera' must be 25 finite numbers"),
        ({"camera": [float("nan")] * 25}, None, r"'camera' must be 25 finite numbers"),
        ({"w_shape": [1, 2]}, None, r"w\.npy holds \(\d+, \d+\) ws but fit\.json says \(1, 2\)"),
        ({"network": "/nowhere/model.pkl"}, None, r"network /nowhere/model\.pkl was not found"),
        ({"network": None}, None, r"names no network"),
        ({"w_shape": None}, np.zeros((2, 3, 4), np.float32), r"must hold ws as a \(num_ws, w_dim\) float array"),
        ({"w_shape": None}, np.zeros((2, 3), np.int64), r"must hold ws as a \(num_ws, w_dim\) float array"),
        ({"w_shape": None}, np.full((2, 3), np.inf, np.float32), r"non-finite values"),
    ],
)
def test_a_broken_fit_is_one_line_naming_the_file(written, tmp_path, record, ws, message):
    with pytest.raises(FitInputError, match=message) as e:
        read_fit(_broken(written, tmp_path, record, ws))
    assert "\n" not in str(e.value) and "broken" in str(e.value)


def test_missing_and_unreadable_files(written, tmp_path):
    with pytest.raises(FitInputError, match="is not a saved fit"):
        read_fit(tmp_path)
    bad = _broken(written, tmp_path)
    (bad / "w.npy").unlink()
    with pytest.raises(FitInputError, match=r"w\.npy is missing"):
        read_fit(bad)
    (bad / "fit.json").write_text("{not json")
    with pytest.raises(FitInputError, match=r"fit\.json cannot be read as JSON"):
        read_fit(bad)


def test_a_relative_network_is_found_beside_the_fit(written, tmp_path):
    bad = _broken(written, tmp_path, {"network": "model.safetensors"})
    (bad / "model.safetensors").write_bytes(WEIGHTS.read_bytes())
    assert read_fit(bad).network == str(bad / "model.safetensors")


def test_the_command_line_renders_meshes_and_orbits_a_saved_fit(G, written, tmp_path):
    folder, result = written
    engine = RenderEngine(G, timed=False)
    engine.set_custom_latent("fit", result.ws)
    rk = G.rendering_kwargs
    camera = camera_tuple(default_camera(rk, yaw=0.5))
    req = RenderRequest(LatentSpec(seed=0.0, custom="fit"), camera, camera_tuple(default_camera(rk)), psi=1.0)
    want = to_uint8(engine.render(req).image).numpy()
    seed0 = to_uint8(engine.render(replace(req, latent=LatentSpec(seed=0.0))).image).numpy()
    out = tmp_path / "out"
    r = run_cli("images", "--fit", folder, "--yaw", "0.5", "--outdir", out)
    assert r.returncode == 0, r.stderr
    got = np.asarray(Image.open(out / "fit-yaw+0.50-pitch+0.00.png")).astype(int)
    assert np.abs(got - want).max() <= 1 and np.abs(got - seed0).mean() > 5  # the fit's latent, not a seed's
    r = run_cli("mesh", "--fit", folder / "w.npy", "--res", "32", "--out", out / "fit.ply", "--quiet")
    assert r.returncode == 0, r.stderr
    planes, _ = engine.planes_for(req, engine.ws_for(req))
    export_mesh(G, planes, out / "here.ply", 32, default_level(G))
    there, here = trimesh.load(out / "fit.ply"), trimesh.load(out / "here.ply")
    assert len(there.vertices) == len(here.vertices) > 100
    assert np.abs(np.asarray(there.vertices) - np.asarray(here.vertices)).max() < 1e-4
    r = run_cli("video", "--fit", folder, "--frames", "3", "--out", out / "orbit.mp4", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(imageio.mimread(out / "orbit.mp4")) == 3


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("mesh", "--network", "builtin", "--out", "{out}/m.ply"), ("leave out --network",)),
        (("mesh", "--seed", "3", "--out", "{out}/m.ply"), ("--seed or --fit",)),
        (("video", "--seeds", "1", "--out", "{out}/v.mp4"), ("leave out --seeds",)),
        (("video", "--kind", "interp", "--out", "{out}/v.mp4"), ("leave out --seeds and --kind interp",)),
        (("images", "--seeds", "1", "--outdir", "{out}"), ("--seeds or --fit",)),
    ],
)
def test_the_command_line_refuses_a_fit_with_its_own_latent_or_model(written, tmp_path, args, fragments):
    folder, _ = written
    out = tmp_path / "out"
    r = run_cli(*(a.format(out=out) for a in args), "--fit", folder)
    assert_one_line_error(r, *fragments)
    assert not out.exists()


def test_the_command_line_names_a_broken_fit_before_writing(written, tmp_path):
    bad = _broken(written, tmp_path, {"network": "/nowhere/model.pkl"})
    out = tmp_path / "out"
    for args in (("images", "--outdir", out), ("mesh", "--out", out / "m.ply"), ("video", "--out", out / "v.mp4")):
        r = run_cli(*args, "--fit", bad)
        assert_one_line_error(r, "/nowhere/model.pkl was not found")
        assert not out.exists()
