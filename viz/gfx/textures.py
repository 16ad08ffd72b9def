"""Small images the widgets show through imgui (layer views, tri-planes, slices): one GL texture per name,
re-uploaded only when the caller's key for its contents changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from OpenGL import GL


@dataclass
class ImageTexture:
    """A GL texture, the key of the pixels in it and their size."""

    texture: int
    key: object
    width: int
    height: int


class ImageTextures:
    """Named RGB textures: `get(name, key, make)` uploads make()'s (H, W, 3) uint8 pixels when `key` changed."""

    def __init__(self):
        self._items: dict[str, ImageTexture] = {}
        self.uploads = 0
        """Texture uploads so far (tests: an unchanged key uploads nothing)."""

    def get(self, name: str, key: object, make: Callable[[], np.ndarray]) -> ImageTexture:
        """The texture `name` holding the pixels `key` stands for (make() runs only when the key changed)."""
        item = self._items.get(name)
        if item is not None and item.key == key:
            return item
        pixels = np.ascontiguousarray(make(), dtype=np.uint8)
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=-1)
        h, w = pixels.shape[:2]
        if item is None:
            item = ImageTexture(int(GL.glGenTextures(1)), None, 0, 0)
            self._items[name] = item
            GL.glBindTexture(GL.GL_TEXTURE_2D, item.texture)
            for param, value in (
                (GL.GL_TEXTURE_MIN_FILTER, GL.GL_NEAREST),  # texels stay visible as squares when enlarged
                (GL.GL_TEXTURE_MAG_FILTER, GL.GL_NEAREST),
                (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE),
                (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE),
            ):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, param, value)
        GL.glBindTexture(GL.GL_TEXTURE_2D, item.texture)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGB8, w, h, 0, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, pixels)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        item.key, item.width, item.height = key, w, h
        self.uploads += 1
        return item

    def close(self) -> None:
        """Delete every texture (the window's GL context current)."""
        if self._items:
            GL.glDeleteTextures([t.texture for t in self._items.values()])
        self._items.clear()


class Same:
    """A texture key part that matches only the very same object (tensors compare by identity here, and the
    reference keeps the object alive, so its id cannot be reused while the key stands)."""

    __slots__ = ("obj",)

    def __init__(self, obj: object):
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)
