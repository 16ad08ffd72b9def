"""`triplane-render inspect` (issue 16): the sheet's files on the built-in model, refusals before the network loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from renderer import load_generator
from renderer.camera import camera_tuple, default_camera
from renderer.cli import main
from renderer.engine import LatentSpec, RenderEngine, RenderRequest
from renderer.inspect.layers import capture_backbone, capture_render, layer_stats
from renderer.inspect.planes import fit_pca
from renderer.inspect.sheet import OUTPUT_FILES


def one_line_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("triplane-render: error: "), lines
    return lines[0]


def test_inspect_writes_the_sheet(tmp_path, capsys):
    out = tmp_path / "sheet"
    assert main(["inspect", "--seed", "5", "--trunc", "0.7", "--slice-res", "64", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    G = load_generator("builtin")
    P = G.plane_resolution
    for name in OUTPUT_FILES[:-1]:
        img = np.asarray(Image.open(out / name))
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert img.std() > 5, name  # not blank
    pca = np.asarray(Image.open(out / "planes_pca.png"))
    assert pca.shape[1] >= 3 * max(P, 256) and pca.shape[0] > max(P, 256)
    grid = np.asarray(Image.open(out / "plane0_channels.png"))
    assert grid.shape[1] == 8 * P + 7 and grid.shape[0] >= 4 * P + 3
    slice_z = np.asarray(Image.open(out / "slice_z.png"))
    assert slice_z.shape[1] >= 2 * 256 and (slice_z == (255, 48, 48)).all(-1).any()  # the contour is drawn
    report = json.loads((out / "layers.json").read_text())
    assert report["seed"] == 5 and report["psi"] == 0.7 and report["network"] == "builtin"
    assert report["level"] == G.rendering_kwargs["mesh_level"]
    assert report["plane_labels"] == ["plane 0: (x, y)", "plane 1: (x, z)", "plane 2: (z, x)"]
    # the same latent through the API: the JSON's statistics are the layers' own
    engine = RenderEngine(G, timed=False)
    front = camera_tuple(default_camera(G.rendering_kwargs))
    ws = engine.ws_for(RenderRequest(latent=LatentSpec(seed=5.0), camera=front, cond_camera=front, psi=0.7))
    layers, planes = capture_backbone(G, ws)
    layers += capture_render(G, planes, ws, front)
    assert [r["name"] for r in report["layers"]] == [ly.name for ly in layers]
    for rec, ly in zip(report["layers"], layers):
        assert rec["shape"] == list(ly.shape) and rec["stage"] == ly.stage
        for k, v in layer_stats(ly.tensor).items():
            assert rec[k] == pytest.approx(v, rel=1e-6, abs=1e-6), (ly.name, k)
    assert report["pca_explained"] == pytest.approx(list(fit_pca(planes).explained), abs=1e-9)


def test_inspect_refuses_existing_outputs_before_loading(tmp_path, capsys):
    out = tmp_path / "sheet"
    out.mkdir()
    (out / "slice_y.png").write_bytes(b"precious")
    missing = tmp_path / "no_such.pkl"  # would fail if loaded: the refusal comes first
    line = one_line_error(capsys, ["inspect", "--network", missing, "--out", out])
    assert "slice_y.png" in line and "--force" in line and str(missing) not in line
    assert (out / "slice_y.png").read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["slice_y.png"]


def test_inspect_force_replaces(tmp_path):
    out = tmp_path / "sheet"
    out.mkdir()
    (out / "layers.json").write_text("old")
    assert main(["inspect", "--slice-res", "16", "--force", "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "layers.json").read_text())["seed"] == 0


def test_inspect_bad_network_and_values(tmp_path, capsys):
    missing = tmp_path / "no_such.pkl"
    line = one_line_error(capsys, ["inspect", "--network", missing, "--out", tmp_path / "o"])
    assert str(missing) in line
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    line = one_line_error(capsys, ["inspect", "--network", bad, "--out", tmp_path / "o2"])
    assert str(bad) in line
    assert "--slice-res" in one_line_error(capsys, ["inspect", "--slice-res", "0", "--out", tmp_path / "o3"])
    assert "--level" in one_line_error(capsys, ["inspect", "--level", "nan", "--out", tmp_path / "o4"])
