"""Viewer pieces that need no window: recent files, the bindings table, the loader, the entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from viz import bindings
from viz.jobs.loader import ModelLoader, error_line
from viz.recent import CONFIG_ENV, RecentFiles, config_dir

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------- recent files
def test_config_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "triplane-viz"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_dir() == tmp_path / "home" / ".config" / "triplane-viz"
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "override"))
    assert config_dir() == tmp_path / "override"


def test_recent_roundtrip_dedupe_and_limit(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    rf = RecentFiles.load()
    assert rf.items == [] and rf.warning is None and rf.path == tmp_path / "cfg" / "recent.json"
    for i in range(12):
        rf.add(tmp_path / f"m{i}.pkl")
    rf.add(tmp_path / "m5.pkl")  # again: moves to the front, no duplicate
    again = RecentFiles.load()
    assert again.items == rf.items and len(again.items) == 10
    assert again.items[0] == str(tmp_path / "m5.pkl") and again.items[1] == str(tmp_path / "m11.pkl")
    assert json.loads(again.path.read_text())["recent"] == again.items
    assert not [p for p in again.path.parent.iterdir() if p.name != "recent.json"]  # no temp files left
    again.remove(str(tmp_path / "m5.pkl"))
    assert str(tmp_path / "m5.pkl") not in RecentFiles.load().items


def test_recent_relative_files_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    rf = RecentFiles(tmp_path / "r.json")
    rf.add("model.safetensors")
    rf.add("builtin")  # a model name, not a file: kept as is
    assert rf.items == ["builtin", str(tmp_path / "model.safetensors")]


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"recent": "a string"}', b"[1, 2]", b'{"recent": [1]}', b"\xff\xfe\x00garbage"]
)
def test_corrupt_recent_file_is_ignored_with_a_warning(tmp_path, content):
    path = tmp_path / "recent.json"
    path.write_bytes(content)
    rf = RecentFiles.load(path)
    assert rf.items == [] and rf.warning and str(path) in rf.warning
    rf.add(tmp_path / "x.pkl")  # the next save replaces the bad file
    assert RecentFiles.load(path).items == [str(tmp_path / "x.pkl")]


def test_unwritable_recent_file_warns_instead_of_raising(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    rf = RecentFiles(blocker / "sub" / "recent.json")
    rf.add(tmp_path / "m.pkl")
    assert rf.items and rf.warning and "could not save" in rf.warning


# ----------------------------------------------------------------- bindings, help, input
def test_every_binding_is_handled_and_every_handler_is_documented():
    pytest.importorskip("imgui_bundle")
    from viz import input as viz_input

    assert bindings.actions() == viz_input.handled_actions()


def test_key_table_matches_the_binding_gestures():
    pytest.importorskip("imgui_bundle")
    import glfw

    from viz import input as viz_input

    names = {
        glfw.KEY_R: "R",
        glfw.KEY_S: "S",
        glfw.KEY_F1: "F1",
        glfw.KEY_ESCAPE: "Esc",
        glfw.KEY_SPACE: "Space",
        glfw.KEY_LEFT: "Left arrow",
        glfw.KEY_RIGHT: "Right arrow",
        glfw.KEY_TAB: "Tab",
        glfw.KEY_I: "I",
        glfw.KEY_K: "K",
        glfw.KEY_PERIOD: ".",
        glfw.KEY_COMMA: ",",
    }
    keys = {(b.action, b.gesture) for b in bindings.BINDINGS if b.device == "key"}
    for key, action in viz_input.KEY_ACTIONS.items():
        assert any(a == action and names[key] in g.split(" or ") for a, g in keys), (names[key], action)
    for char, action in viz_input.CHAR_ACTIONS.items():
        assert any(a == action and char in g.split(" or ") for a, g in keys), (char, action)
    for key, action in viz_input.CTRL_KEY_ACTIONS.items():
        assert (action, f"Ctrl+{chr(key)}") in keys, (key, action)


def test_app_actions_cover_the_key_bindings():
    pytest.importorskip("imgui_bundle")
    from viz import input as viz_input
    from viz.actions import ACTIONS

    assert set(ACTIONS) == (
        set(viz_input.KEY_ACTIONS.values())
        | set(viz_input.CHAR_ACTIONS.values())
        | set(viz_input.CTRL_KEY_ACTIONS.values())
    )


def test_markdown_table_lists_every_binding():
    table = bindings.markdown_table()
    lines = table.strip().splitlines()
    assert lines[:2] == ["| input | effect |", "|---|---|"] and len(lines) == 2 + len(bindings.BINDINGS)
    for b in bindings.BINDINGS:
        assert f"| {b.gesture} | {b.effect} |" in table
    assert bindings.rows() == [(b.gesture, b.effect) for b in bindings.BINDINGS]


def test_readme_bindings_table_is_the_shared_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if "| input | effect |" not in readme:
        pytest.skip("README has no mouse/key table yet (paste `python -m viz.bindings` output)")
    assert bindings.markdown_table() in readme


# ----------------------------------------------------------------- loader
def test_loader_reports_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    loader = ModelLoader()
    for path in (bad, tmp_path / "missing.pkl"):
        loader.start(path)
        assert loader.wait(30)
        out = loader.poll()
        assert out.model is None and out.error and "\n" not in out.error and path.name in out.error
        assert loader.poll() is None


def test_loader_loads_the_golden_network(golden_native_checkpoint):
    loader = ModelLoader()
    loader.start(golden_native_checkpoint)
    assert loader.wait(60)
    out = loader.poll()
    assert out.error is None and out.model.engine.G.num_ws == out.model.defaults.num_ws
    assert out.model.defaults.radius == pytest.approx(2.7)


def test_error_line_is_one_line():
    assert error_line(ValueError("a\n  b")) == "ValueError: a b"


# ----------------------------------------------------------------- entry point
def _run_visualizer(*args: str, env_drop=("DISPLAY", "WAYLAND_DISPLAY"), timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    return subprocess.run(
        [sys.executable, str(ROOT / "visualizer.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def test_no_display_prints_one_line_and_exits_2():
    pytest.importorskip("imgui_bundle")
    r = _run_visualizer()
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "triplane-render" in lines[0] and "xvfb-run" in lines[0]


def test_bad_arguments_exit_2():
    r = _run_visualizer("--interop", "nonsense")
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pytest.mark.slow
def test_headless_window_runs_frames(tmp_path):
    pytest.importorskip("imgui_bundle")
    env_dir = {"TRIPLANE_VIZ_CONFIG_DIR": str(tmp_path)}
    os.environ.update(env_dir)
    try:
        r = _run_visualizer("--headless", "--frames", "3", "--debug-gl")
    finally:
        os.environ.pop("TRIPLANE_VIZ_CONFIG_DIR")
    if r.returncode == 2 and "headless GLFW" in r.stderr:
        pytest.skip(f"no EGL here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert "GL error" not in r.stderr and "present: cpu-upload" in r.stderr


def test_loader_stop_waits_for_a_running_load(monkeypatch):
    """Closing the app mid-load must not leave the loader inside torch at exit (the process would abort)."""
    import time

    import viz.jobs.loader as loader_module

    def slow_load(path, device="cpu"):
        time.sleep(0.5)
        raise ValueError("done")

    monkeypatch.setattr(loader_module, "load_model", slow_load)
    loader = ModelLoader()
    loader.start("x.pkl")
    assert loader.loading == "x.pkl"
    loader.stop()
    assert loader.loading is None and not any(t.is_alive() for t in loader._threads)


def test_quitting_during_the_first_load_exits_cleanly(tmp_path):
    """`--frames 2` quits while the built-in model may still be loading: exit 0, no abort."""
    pytest.importorskip("imgui_bundle")
    os.environ[CONFIG_ENV] = str(tmp_path)
    try:
        r = _run_visualizer("--headless", "--frames", "2")
    finally:
        os.environ.pop(CONFIG_ENV)
    if r.returncode == 2 and "headless GLFW" in r.stderr:
        pytest.skip(f"no EGL here: {r.stderr.strip()}")
    assert r.returncode == 0 and "terminate called" not in r.stderr, r.stderr
