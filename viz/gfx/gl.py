"""Small OpenGL helpers: shader files, program compilation that fails loudly, GL error checks, and
saving/restoring the GL state our passes touch (so imgui's renderer finds it as it left it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from OpenGL import GL

_ERROR_NAMES = {
    GL.GL_INVALID_ENUM: "GL_INVALID_ENUM",
    GL.GL_INVALID_VALUE: "GL_INVALID_VALUE",
    GL.GL_INVALID_OPERATION: "GL_INVALID_OPERATION",
    GL.GL_INVALID_FRAMEBUFFER_OPERATION: "GL_INVALID_FRAMEBUFFER_OPERATION",
    GL.GL_OUT_OF_MEMORY: "GL_OUT_OF_MEMORY",
}


class ShaderError(RuntimeError):
    """A shader failed to compile or a program failed to link; the message holds the GLSL log."""


class GLCheckError(RuntimeError):
    """glGetError reported errors (raised by `check_gl_error`)."""


def shader_dir() -> Path:
    """The `shaders/` folder: beside the `viz` package in a checkout or an install, else found by import."""
    here = Path(__file__).resolve().parents[2] / "shaders"
    if here.is_dir():
        return here
    spec = importlib.util.find_spec("shaders")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    raise FileNotFoundError(f"shader folder not found (looked in {here} and for an installed 'shaders' package)")


def load_shader_source(name: str) -> str:
    """The text of `shaders/<name>` (e.g. 'display.frag')."""
    path = shader_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"shader file {name!r} not found in {path.parent}")
    return path.read_text(encoding="utf-8")


def _log(text) -> str:
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text or "")).strip()


def _compile(kind: int, source: str, name: str) -> int:
    shader = GL.glCreateShader(kind)
    GL.glShaderSource(shader, source)
    GL.glCompileShader(shader)
    if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
        log = _log(GL.glGetShaderInfoLog(shader))
        GL.glDeleteShader(shader)
        raise ShaderError(f"{name}: compile failed:\n{log or '(empty info log)'}")
    return shader


def compile_program(
    vert_src: str, frag_src: str, vert_name: str = "<vertex shader>", frag_name: str = "<fragment shader>"
) -> int:
    """Compile and link a program (needs a current context); raises ShaderError naming the file and its log."""
    vs = _compile(GL.GL_VERTEX_SHADER, vert_src, vert_name)
    try:
        fs = _compile(GL.GL_FRAGMENT_SHADER, frag_src, frag_name)
    except ShaderError:
        GL.glDeleteShader(vs)
        raise
    program = GL.glCreateProgram()
    GL.glAttachShader(program, vs)
    GL.glAttachShader(program, fs)
    GL.glLinkProgram(program)
    GL.glDetachShader(program, vs)
    GL.glDetachShader(program, fs)
    GL.glDeleteShader(vs)
    GL.glDeleteShader(fs)
    if not GL.glGetProgramiv(program, GL.GL_LINK_STATUS):
        log = _log(GL.glGetProgramInfoLog(program))
        GL.glDeleteProgram(program)
        raise ShaderError(f"{vert_name} + {frag_name}: link failed:\n{log or '(empty info log)'}")
    return int(program)


def check_gl_error(where: str) -> None:
    """Raise GLCheckError listing every pending glGetError code (debug mode; PyOpenGL's own checking off)."""
    errors = []
    for _ in range(32):  # a lost context can report errors forever
        code = GL.glGetError()
        if code == GL.GL_NO_ERROR:
            break
        errors.append(_ERROR_NAMES.get(code, hex(int(code))))
    if errors:
        raise GLCheckError(f"GL error after {where}: {', '.join(errors)}")


DRAW_ENABLES = (GL.GL_BLEND, GL.GL_DEPTH_TEST, GL.GL_SCISSOR_TEST, GL.GL_CULL_FACE, GL.GL_STENCIL_TEST)
"""Capabilities our draw passes switch off (and save_state records)."""


def save_state() -> dict:
    """The GL state a present or mesh pass changes: viewport, program, VAO, draw framebuffer, texture
    unit 0's texture and sampler, blending, depth function/mask, clear colour and DRAW_ENABLES."""
    state = {
        "viewport": [int(v) for v in GL.glGetIntegerv(GL.GL_VIEWPORT)],
        "program": int(GL.glGetIntegerv(GL.GL_CURRENT_PROGRAM)),
        "vao": int(GL.glGetIntegerv(GL.GL_VERTEX_ARRAY_BINDING)),
        "fbo": int(GL.glGetIntegerv(GL.GL_DRAW_FRAMEBUFFER_BINDING)),
        "active": int(GL.glGetIntegerv(GL.GL_ACTIVE_TEXTURE)),
        "blend": [
            int(GL.glGetIntegerv(e))
            for e in (GL.GL_BLEND_SRC_RGB, GL.GL_BLEND_DST_RGB, GL.GL_BLEND_SRC_ALPHA, GL.GL_BLEND_DST_ALPHA)
        ],
        "depth_func": int(GL.glGetIntegerv(GL.GL_DEPTH_FUNC)),
        "depth_mask": bool(GL.glGetBooleanv(GL.GL_DEPTH_WRITEMASK)),
        "clear_color": [float(v) for v in GL.glGetFloatv(GL.GL_COLOR_CLEAR_VALUE)],
        "enabled": {cap: bool(GL.glIsEnabled(cap)) for cap in DRAW_ENABLES},
    }
    GL.glActiveTexture(GL.GL_TEXTURE0)
    state["texture0"] = int(GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D))
    state["sampler0"] = int(GL.glGetIntegerv(GL.GL_SAMPLER_BINDING))
    return state


def restore_state(state: dict) -> None:
    """Put back what save_state recorded."""
    GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, state["fbo"])
    GL.glActiveTexture(GL.GL_TEXTURE0)
    GL.glBindSampler(0, state["sampler0"])
    GL.glBindTexture(GL.GL_TEXTURE_2D, state["texture0"])
    GL.glActiveTexture(state["active"])
    GL.glBindVertexArray(state["vao"])
    GL.glUseProgram(state["program"])
    GL.glViewport(*state["viewport"])
    GL.glBlendFuncSeparate(*state["blend"])
    GL.glDepthFunc(state["depth_func"])
    GL.glDepthMask(state["depth_mask"])
    GL.glClearColor(*state["clear_color"])
    for cap, on in state["enabled"].items():
        (GL.glEnable if on else GL.glDisable)(cap)
