"""The `triplane-render` command line: seed lists, one-line errors, images/info/convert on the golden model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from renderer.cli import main
from renderer.cli.args import MAX_SEEDS, parse_seeds

GOLDEN = Path(__file__).parent / "data" / "golden_small.npz"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m renderer ARGS` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "renderer", *map(str, args)], capture_output=True, text=True, timeout=600
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2 and exactly one stderr line `triplane-render: error: ...` holding every fragment."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("triplane-render: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


# ----------------------------------------------------------------- seed lists
@pytest.mark.parametrize(
    "text, expected",
    [
        ("0", [0]),
        ("0-3,7", [0, 1, 2, 3, 7]),
        ("7,0-2", [7, 0, 1, 2]),
        ("3-3", [3]),
        (" 1 - 2 , 4", [1, 2, 4]),
        ("1,1,0-1", [1, 0]),
        (str(2**32 - 1), [2**32 - 1]),
    ],
)
def test_parse_seeds(text, expected):
    assert parse_seeds(text) == expected


def test_parse_seeds_limit_is_inclusive():
    assert parse_seeds(f"0-{MAX_SEEDS - 1}") == list(range(MAX_SEEDS))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "a",
        "1-",
        "3-1",
        "1,,2",
        "1.5",
        "0x10",
        f"0-{MAX_SEEDS}",
        f"0-{MAX_SEEDS - 1},{MAX_SEEDS}",
        "0-6000,7000-12000",
        "0-99999999999",
        str(2**32),
    ],
)
def test_parse_seeds_rejects(text):
    with pytest.raises(ValueError):
        parse_seeds(text)


# ----------------------------------------------------------------- expected failures
@pytest.fixture
def fake_network(tmp_path):
    """A file that exists, for argument checks that fail before the network is read."""
    path = tmp_path / "net.safetensors"
    path.write_bytes(b"not a checkpoint")
    return path


def test_help_exits_zero():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "images" in proc.stdout


def test_no_command():
    assert_one_line_error(run_cli())


def test_missing_network_file(tmp_path):
    missing = tmp_path / "no_such_model.pkl"
    assert_one_line_error(
        run_cli("images", "--network", missing, "--seeds", "0", "--outdir", tmp_path / "out"), str(missing)
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_info_missing_file(tmp_path):
    assert_one_line_error(run_cli("info", tmp_path / "nope.pkl"), "nope.pkl")


@pytest.mark.parametrize("seeds", ["3-1", "-2", "x", f"0-{MAX_SEEDS}"])
def test_bad_seeds(fake_network, tmp_path, seeds):
    assert_one_line_error(
        run_cli("images", "--network", fake_network, f"--seeds={seeds}", "--outdir", tmp_path), "--seeds"
    )


def test_bad_view(fake_network, tmp_path):
    assert_one_line_error(
        run_cli("images", "--network", fake_network, "--seeds", "0", "--outdir", tmp_path, "--view", "normals"),
        "--view",
        "normals",
    )


@pytest.mark.parametrize(
    "option, value",
    [
        ("--fov", "200"),
        ("--fov", "nan"),
        ("--trunc", "inf"),
        ("--nrr", "0"),
        ("--depth-mult", "-1"),
        ("--trunc-cutoff", "-3"),
    ],
)
def test_bad_values(fake_network, tmp_path, option, value):
    assert_one_line_error(
        run_cli("images", "--network", fake_network, "--seeds", "0", "--outdir", tmp_path, f"{option}={value}"), option
    )


def test_unwritable_outdir(fake_network, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    outdir = blocker / "out"  # a folder below a regular file cannot exist, even for root
    assert_one_line_error(run_cli("images", "--network", fake_network, "--seeds", "0", "--outdir", outdir), str(outdir))


def test_unknown_device(fake_network, tmp_path):
    assert_one_line_error(
        run_cli("images", "--network", fake_network, "--seeds", "0", "--outdir", tmp_path, "--device", "toaster"),
        "toaster",
    )


def test_unreadable_checkpoint(fake_network, tmp_path):
    assert_one_line_error(
        run_cli("images", "--network", fake_network, "--seeds", "0", "--outdir", tmp_path), str(fake_network)
    )
    assert_one_line_error(run_cli("info", fake_network), str(fake_network))


def test_convert_needs_safetensors_output(fake_network, tmp_path):
    assert_one_line_error(run_cli("convert", fake_network, tmp_path / "out.pkl"), ".safetensors")


# ----------------------------------------------------------------- rendering with the golden model
def api_render(G, seed, *, yaw=0.0, pitch=0.0, psi=1.0, cutoff=None, cond="front", **synthesis_kwargs):
    """The Python API's output for one seed, set up as the CLI documents it."""
    from renderer.camera import default_camera

    rk = G.rendering_kwargs
    c = default_camera(rk, yaw=yaw, pitch=pitch)[None]
    c_cond = c if cond == "render" else default_camera(rk)[None]
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32))
    ws = G.mapping(z, c_cond, truncation_psi=psi, truncation_cutoff=cutoff)
    return G.synthesis(ws, c, noise_mode="const", **synthesis_kwargs)


def rgb8(x):
    """(1, 3, H, W) on [-1, 1] -> (H, W, 3) uint8, the reference scripts' conversion."""
    return (x[0] * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def golden_G(golden_native_checkpoint):
    from renderer import load_generator

    return load_generator(golden_native_checkpoint)


@pytest.mark.slow
def test_images_match_python_api_and_reference(golden_native_checkpoint, golden_G, tmp_path):
    # golden case 3: seed 3, psi 0.8, cutoff 4, yaw 0.15, pitch -0.3, frontal conditioning
    assert (
        main(
            [
                "images",
                "--network",
                str(golden_native_checkpoint),
                "--seeds",
                "3",
                "--trunc",
                "0.8",
                "--trunc-cutoff",
                "4",
                "--yaw",
                "0.15",
                "--pitch",
                "-0.3",
                "--outdir",
                str(tmp_path),
            ]
        )
        == 0
    )
    img = Image.open(tmp_path / "seed0003.png")
    assert img.mode == "RGB" and img.size == (512, 512)
    pixels = np.asarray(img)
    expected = rgb8(api_render(golden_G, 3, yaw=0.15, pitch=-0.3, psi=0.8, cutoff=4)["image"])
    np.testing.assert_array_equal(pixels, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0003.png"]  # no temp files left

    with np.load(GOLDEN) as d:  # the reference's deterministic render, quantised in the file
        ref = torch.from_numpy(d["case_image_det"][3:4].astype(np.float32) / d["case_image_quant_scale"])
    diff = np.abs(pixels.astype(int) - rgb8(ref).astype(int))
    assert diff.max() <= 1  # values within 1e-3 may still round to neighbouring 8-bit levels


def test_raw_view_several_seeds(golden_native_checkpoint, golden_G, tmp_path):
    assert (
        main(
            [
                "images",
                "--network",
                str(golden_native_checkpoint),
                "--seeds",
                "0-1",
                "--view",
                "raw",
                "--nrr",
                "64",
                "--cond",
                "render",
                "--yaw",
                "-0.4",
                "--outdir",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0000.png", "seed0001.png"]
    for seed in (0, 1):
        img = Image.open(tmp_path / f"seed{seed:04d}.png")
        assert img.size == (64, 64)
        out = api_render(golden_G, seed, yaw=-0.4, cond="render", neural_rendering_resolution=64, superresolution=False)
        np.testing.assert_array_equal(np.asarray(img), rgb8(out["image_raw"]))


def test_depth_view_is_normalised_grey_near_bright(golden_native_checkpoint, golden_G, tmp_path):
    """Depth PNG: 8-bit grey, min-max normalised over the opaque pixels (opacity > 0.5), near = bright."""
    assert (
        main(
            [
                "images",
                "--network",
                str(golden_native_checkpoint),
                "--seeds",
                "2",
                "--view",
                "depth",
                "--depth-mult",
                "0.5",
                "--outdir",
                str(tmp_path),
            ]
        )
        == 0
    )
    img = Image.open(tmp_path / "seed0002.png")
    assert img.mode == "L" and img.size == (128, 128)
    out = api_render(golden_G, 2, depth_multiplier=0.5, superresolution=False)
    d = out["image_depth"][0, 0].double()
    opaque = out["image_alpha"][0, 0] > 0.5
    assert 0 < int(opaque.sum()) < d.numel()
    near, far = d[opaque].min(), d[opaque].max()
    expected = ((1 - ((d - near) / (far - near)).clamp(0, 1)) * 255 + 0.5).floor().to(torch.uint8).numpy()
    expected[~opaque.numpy()] = 0  # background (opacity <= 0.5) is 0, as the README says
    pixels = np.asarray(img)
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1  # float32 vs float64 rounding
    assert pixels.min() == 0 and pixels.max() == 255
    assert pixels[np.unravel_index(int(d.argmin()), d.shape)] == 255
    thin = (out["image_alpha"][0, 0] > 0.01) & ~opaque  # partly transparent pixels, some lying within the range
    assert bool(((d >= near) & (d < far) & thin).any())
    assert (pixels[~opaque.numpy()] == 0).all()


def test_depth_view_background_is_zero_for_thin_pixels():
    """Opacity <= 0.5 is background, 0, even where its depth lies inside the opaque range (e.g. opacity 0.16-0.30)."""
    from renderer.engine.frames import view_pixels

    depth = torch.tensor([[[1.0, 2.0, 1.5, 1.2, 1.1, 1.9, float("nan"), float("-inf")]]])
    alpha = torch.tensor([[[1.0, 0.9, 0.51, 0.5, 0.3, 0.16, 0.9, 0.9]]])
    grey = view_pixels("depth", None, torch.zeros(3, 1, 8), depth, alpha)
    assert grey.dtype == np.uint8
    assert grey.tolist() == [[255, 0, 128, 0, 0, 0, 0, 0]]  # near 1.0 -> 255, far 2.0 -> 0, no depth -> 0


def test_stochastic_sampling_is_seeded(golden_native_checkpoint, tmp_path):
    args = [
        "images",
        "--network",
        str(golden_native_checkpoint),
        "--seeds",
        "4",
        "--view",
        "raw",
        "--sampling",
        "stochastic",
        "--nrr",
        "32",
    ]
    assert main(args + ["--outdir", str(tmp_path / "a")]) == 0
    assert main(args + ["--outdir", str(tmp_path / "b")]) == 0
    a, b = (np.asarray(Image.open(tmp_path / d / "seed0004.png")) for d in "ab")
    np.testing.assert_array_equal(a, b)


def test_module_entry_point_renders(golden_native_checkpoint, tmp_path):
    proc = run_cli(
        "images",
        "--network",
        golden_native_checkpoint,
        "--seeds",
        "5",
        "--view",
        "raw",
        "--nrr",
        "32",
        "--outdir",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "seed0005.png").size == (32, 32)


def test_info(golden_native_checkpoint, golden_G):
    proc = run_cli("info", golden_native_checkpoint)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SuperresolutionHybrid8XDC" in out
    assert f"{golden_G.num_parameters():,}" in out
    for fragment in ("num_ws:", "14", "2.25 .. 3.3", "b256: ", "native"):
        assert fragment in out


def test_convert_round_trip(golden_native_checkpoint, tmp_path):
    from renderer.checkpoint import read_checkpoint

    out = tmp_path / "copy.safetensors"
    proc = run_cli("convert", golden_native_checkpoint, out)
    assert proc.returncode == 0, proc.stderr
    a, b = read_checkpoint(golden_native_checkpoint), read_checkpoint(out)
    assert b.source_format == "native"
    assert a.spec.init_kwargs == b.spec.init_kwargs
    assert a.spec.rendering_kwargs == b.spec.rendering_kwargs
    assert a.spec.neural_rendering_resolution == b.spec.neural_rendering_resolution
    assert a.state_dict.keys() == b.state_dict.keys()
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k]), k


def test_convert_refuses_same_file(golden_native_checkpoint):
    assert_one_line_error(run_cli("convert", golden_native_checkpoint, golden_native_checkpoint), "same file")


def test_images_seed_beyond_2_31_renders_that_seed(golden_native_checkpoint, golden_G, tmp_path):
    """3000000000 is a seed of its own (no wrap-around): its file is named and rendered as itself."""
    assert (
        main(
            [
                "images",
                "--network",
                str(golden_native_checkpoint),
                "--seeds",
                "3000000000",
                "--view",
                "raw",
                "--nrr",
                "16",
                "--outdir",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed3000000000.png"]
    out = api_render(golden_G, 3000000000, neural_rendering_resolution=16, superresolution=False)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "seed3000000000.png")), rgb8(out["image_raw"]))


# ----------------------------------------------------------------- existing files
def test_images_refuses_an_existing_png_before_loading(fake_network, tmp_path, capsys):
    """An existing output is refused, naming the file and --force, before the (here unreadable) network loads."""
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "seed0001.png").write_bytes(b"precious")
    with pytest.raises(SystemExit) as e:
        main(["images", "--network", str(fake_network), "--seeds", "0-2", "--outdir", str(outdir)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(outdir / "seed0001.png") in err[0] and "--force" in err[0], err
    assert "exists" in err[0] and str(fake_network) not in err[0]  # refused before the network is read
    assert (outdir / "seed0001.png").read_bytes() == b"precious"
    assert sorted(p.name for p in outdir.iterdir()) == ["seed0001.png"]  # nothing else written either


def test_images_force_replaces_existing_pngs(golden_native_checkpoint, tmp_path, capsys):
    args = [
        "images",
        "--network",
        str(golden_native_checkpoint),
        "--seeds",
        "1,2",
        "--view",
        "raw",
        "--nrr",
        "16",
        "--outdir",
        str(tmp_path),
    ]
    (tmp_path / "seed0001.png").write_bytes(b"old 1")
    (tmp_path / "seed0002.png").write_bytes(b"old 2")
    with pytest.raises(SystemExit):
        main(args)
    err = capsys.readouterr().err
    assert "seed0001.png and 1 more of the outputs exist" in err and "--force" in err
    assert (tmp_path / "seed0002.png").read_bytes() == b"old 2"
    assert main(args + ["--force"]) == 0
    for seed in (1, 2):
        assert Image.open(tmp_path / f"seed{seed:04d}.png").size == (16, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0001.png", "seed0002.png"]


def test_convert_accepts_builtin(tmp_path):
    """`convert builtin OUT`: the name `info` and `--network` accept."""
    from renderer.builtin import WEIGHTS
    from renderer.checkpoint import read_checkpoint

    out = tmp_path / "builtin-copy.safetensors"
    assert main(["convert", "builtin", str(out)]) == 0
    a, b = read_checkpoint(WEIGHTS), read_checkpoint(out)
    assert a.spec == b.spec
    assert a.state_dict.keys() == b.state_dict.keys()
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k]), k
