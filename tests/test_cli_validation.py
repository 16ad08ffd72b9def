"""Every value a user types on the command line is checked: bad ones exit 2 with one line naming the option."""

from __future__ import annotations

import pytest

from renderer.cli import args as cli_args
from renderer.cli import build_parser, main


@pytest.fixture
def fake_network(tmp_path):
    """A file that exists, for argument checks that fail before the network is read."""
    path = tmp_path / "net.safetensors"
    path.write_bytes(b"not a checkpoint")
    return path


def one_line_error(capsys, argv: list[str]) -> str:
    """Run main in-process; assert exit status 2 and exactly one `triplane-render: error:` line."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("triplane-render: error: "), lines[0]
    return lines[0]


IMAGES_BAD = [
    ("--seeds", "-1"),
    ("--seeds", str(2**32)),
    ("--seeds", "1e3"),
    ("--seeds", "0-99999999999"),
    ("--trunc", "nan"),
    ("--trunc", "inf"),
    ("--trunc", "-inf"),
    ("--trunc", "abc"),
    ("--fov", "0"),
    ("--fov", "180"),
    ("--fov", "-5"),
    ("--fov", "nan"),
    ("--fov", "1e400"),
    ("--nrr", "0"),
    ("--nrr", "1025"),
    ("--nrr", str(10**9)),
    ("--nrr", "64.5"),
    ("--depth-mult", "0"),
    ("--depth-mult", "-1"),
    ("--depth-mult", "17"),
    ("--depth-mult", "nan"),
    ("--yaw", "nan"),
    ("--pitch", "inf"),
    ("--trunc-cutoff", "-1"),
    ("--network", ""),
    ("--network", "   "),
    ("--outdir", ""),
]


@pytest.mark.parametrize("option, value", IMAGES_BAD)
def test_images_rejects(capsys, tmp_path, fake_network, option, value):
    argv = {"--network": fake_network, "--seeds": "0", "--outdir": tmp_path / "out"}
    argv[option] = value
    line = one_line_error(capsys, ["images"] + [f"{k}={v}" for k, v in argv.items()])
    assert option in line
    assert not (tmp_path / "out").exists()  # refused before anything was created


MESH_BAD = [
    ("--seed", "-1"),
    ("--seed", str(2**32)),
    ("--seed", "1.5"),
    ("--res", "8"),
    ("--res", "2048"),
    ("--chunk", "0"),
    ("--chunk", str(2**25)),
    ("--level", "nan"),
    ("--level", "inf"),
    ("--trunc", "nan"),
    ("--out", ""),
    ("--network", ""),
]


@pytest.mark.parametrize("option, value", MESH_BAD)
def test_mesh_rejects(capsys, tmp_path, fake_network, option, value):
    argv = {"--network": fake_network, "--out": tmp_path / "m.ply"}
    argv[option] = value
    assert option in one_line_error(capsys, ["mesh"] + [f"{k}={v}" for k, v in argv.items()])


VIDEO_BAD = [
    ("--frames", "0"),
    ("--frames", "100001"),
    ("--fps", "0"),
    ("--fps", "241"),
    ("--fps", "nan"),
    ("--seeds", "-3"),
    ("--nrr", "5000"),
    ("--depth-mult", "100"),
    ("--out", ""),
]


@pytest.mark.parametrize("option, value", VIDEO_BAD)
def test_video_rejects(capsys, tmp_path, fake_network, option, value):
    argv = {"--network": fake_network, "--seeds": "0", "--out": tmp_path / "v.mp4"}
    argv[option] = value
    assert option in one_line_error(capsys, ["video"] + [f"{k}={v}" for k, v in argv.items()])


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["mesh", "--network", "{net}", "--out", "{tmp}/head.txt"], "unknown mesh format '.txt'"),
        (["video", "--network", "{net}", "--seeds", "0", "--out", "{tmp}/v.avi"], "'.avi'"),
        (["video", "--network", "{net}", "--seeds", "0", "--kind", "interp", "--out", "{tmp}/v.mp4"], "two seeds"),
        (["info", "{tmp}"], "is a directory"),
        (["info", ""], "PATH"),
        (["images", "--network", "{tmp}", "--seeds", "0", "--outdir", "{tmp}/o"], "is a directory"),
        (["images", "--from-png", "{tmp}/missing.png"], "missing.png"),
        (["images", "--from-png", ""], "--from-png"),
        (["convert", "", "{tmp}/x.safetensors"], "IN"),
        (["convert", "{net}", ""], "OUT"),
    ],
)
def test_bad_paths_and_combinations(capsys, tmp_path, fake_network, argv, fragment):
    argv = [a.format(net=fake_network, tmp=tmp_path) for a in argv]
    assert fragment in one_line_error(capsys, argv)


def test_limits_are_inclusive():
    assert cli_args.seed("0") == 0 and cli_args.seed(str(2**32 - 1)) == 2**32 - 1
    assert cli_args.count(1, cli_args.MAX_NRR)(str(cli_args.MAX_NRR)) == cli_args.MAX_NRR
    assert cli_args.bounded(0.0, cli_args.MAX_DEPTH_MULT)("16") == 16.0
    assert cli_args.fov("179.9") == 179.9
    for bad in ("", "-0x1", "1_000_000_000_000"):
        with pytest.raises(ValueError):
            cli_args.seed(bad)


@pytest.mark.parametrize(
    "command, option, value, message",
    [
        ("images", "--seeds", "99999999999999", "seed 99999999999999 is outside 0…4294967295"),
        ("images", "--seeds", "0-4294967296", "seed 4294967296 is outside 0…4294967295"),
        ("images", "--seeds", "-1", "seed -1 is outside 0…4294967295"),
        ("images", "--seeds", "3,-1", "seed -1 is outside 0…4294967295"),
        ("mesh", "--seed", "4294967296", "seed 4294967296 is outside 0…4294967295"),
        ("mesh", "--seed", "-1", "seed -1 is outside 0…4294967295"),
        ("mesh", "--seed", "1.5", "seed '1.5' is not an integer in 0…4294967295"),
        ("video", "--seeds", "1,99999999999999", "seed 99999999999999 is outside 0…4294967295"),
    ],
)
def test_seed_errors_are_the_shared_message(capsys, tmp_path, fake_network, command, option, value, message):
    """The CLI refuses seeds with renderer.seeds' message (the viewer's), never wrapped or float-formatted."""
    argv = {"--network": fake_network, option: value}
    argv.update(
        {
            "images": {"--outdir": tmp_path / "out"},
            "mesh": {"--out": tmp_path / "m.ply"},
            "video": {"--out": tmp_path / "v.mp4"},
        }[command]
    )
    line = one_line_error(capsys, [command] + [f"{k}={v}" for k, v in argv.items()])
    assert option in line and f": {message} (" in line, line


def test_largest_seeds_parse_unchanged():
    assert cli_args.parse_seeds("3000000000,4294967294-4294967295") == [3000000000, 4294967294, 4294967295]
    args = build_parser().parse_args(["mesh", "--seed", "3000000000", "--out", "m.ply"])
    assert args.seed == 3000000000


def test_a_cuda_device_beyond_the_machines_gets_one_line(monkeypatch):
    # torch itself raises only when the model is moved there ("invalid device ordinal", a traceback)
    import torch

    from renderer.cli.common import CliError, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1") and resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(
        CliError, match=r"'cuda:2' requested but this machine has 2 CUDA device\(s\): use cuda:0 to cuda:1"
    ):
        resolve_device("cuda:2")
