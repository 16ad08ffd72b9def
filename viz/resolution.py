"""Adaptive render quality: cheap frames while the view moves, full quality once it rests.

A small state machine, pure and clock-free (the caller passes the time): while the user drags
or an animation plays it picks, from a ladder of quality levels, the richest one whose
predicted frame time fits the target; ~0.2 s after the input stops it asks for full quality.
Frame times are a moving average per level and predictions scale by each level's relative
cost, so a steady load settles on one level; asymmetric thresholds (step down when clearly
too slow, up only when clearly fast enough) keep it from oscillating.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Quality:
    """Render settings of one level: neural resolution, depth-sample multiplier, super-resolution."""

    resolution: int
    depth_multiplier: float
    superresolution: bool

    @property
    def label(self) -> str:
        """Short on-screen description, e.g. '64px x0.5'."""
        sr = " +SR" if self.superresolution else ""
        return f"{self.resolution}px x{self.depth_multiplier:g}{sr}"

    def cost(self) -> float:
        """Relative cost: rays x samples (super-resolution adds a fixed share of a full frame)."""
        return self.resolution**2 * self.depth_multiplier + (2.0 * 128**2 if self.superresolution else 0.0)


def ladder(full_resolution: int) -> list[Quality]:
    """Preview levels from cheapest to richest (no SR), ending with the full-quality frame."""
    levels = [
        Quality(r, m, False)
        for r, m in ((32, 0.5), (48, 0.5), (64, 0.5), (64, 1.0), (96, 1.0), (128, 1.0))
        if r <= full_resolution
    ]
    full = Quality(full_resolution, 1.0, True)
    return levels + [full]


def preview_request(req, q: Quality, bf16: bool = False):
    """A RenderRequest reduced to preview level q (its resolution, fewer samples, SR as q says), bf16 if asked."""
    imp = req.depth_multiplier if req.importance_multiplier is None else req.importance_multiplier
    return dataclasses.replace(
        req,
        neural_rendering_resolution=q.resolution,
        superresolution=q.superresolution,
        depth_multiplier=req.depth_multiplier * q.depth_multiplier,
        importance_multiplier=imp * q.depth_multiplier,
        bf16=bf16,
    )


@dataclass
class ResolutionPolicy:
    """Chooses the Quality of the next request from interaction state and measured frame times."""

    full_resolution: int = 128
    target_ms: float = 100.0
    """Frame time to hold while moving."""
    idle_delay: float = 0.2
    """Seconds without input before full quality is requested."""
    lock_full: bool = False
    """Always render full quality (the 'lock full quality' toggle)."""
    up_margin: float = 0.7
    """Step up only if the richer level is predicted at <= up_margin x target."""
    down_margin: float = 1.25
    """Step down when the current level measures > down_margin x target."""
    smoothing: float = 0.3
    """Weight of a new measurement in the moving average."""
    bf16: bool = False
    """Render previews under bf16 autocast (CPUs with bf16 matrix units); the full-quality frame never is."""
    levels: list[Quality] = field(default_factory=list)
    level: int = 0
    _avg_ms: dict[Quality, float] = field(default_factory=dict)
    _last_input: float = float("-inf")

    def __post_init__(self) -> None:
        if not self.levels:
            self.levels = ladder(self.full_resolution)
        self.level = min(max(self.level, 0), len(self.previews) - 1)

    @property
    def previews(self) -> list[Quality]:
        """The levels used while moving (all but the full-quality one)."""
        return self.levels[:-1] or self.levels

    @property
    def full(self) -> Quality:
        """The full-quality level."""
        return self.levels[-1]

    def request_for(self, req, quality: Quality):
        """The request to render at `quality`: unchanged at full quality, else a (bf16 if enabled) preview."""
        return req if quality == self.full else preview_request(req, quality, self.bf16)

    def record(self, quality: Quality, ms: float) -> None:
        """Feed back the measured time of a rendered frame at `quality`."""
        old = self._avg_ms.get(quality)
        self._avg_ms[quality] = ms if old is None else (1 - self.smoothing) * old + self.smoothing * ms

    def note_input(self, now: float) -> None:
        """The user is interacting (dragging, scrolling, animation playing) at time `now`."""
        self._last_input = now

    def moving(self, now: float) -> bool:
        """True while input happened within the idle delay."""
        return now - self._last_input < self.idle_delay

    def predicted_ms(self, i: int) -> float | None:
        """Predicted frame time of preview level i from the nearest measured level's average."""
        q = self.previews[i]
        if q in self._avg_ms:
            return self._avg_ms[q]
        known = [(abs(j - i), p) for j, p in enumerate(self.previews) if p in self._avg_ms]
        if not known:
            return None
        _, p = min(known, key=lambda t: t[0])
        return self._avg_ms[p] * q.cost() / p.cost()

    def choose(self, now: float) -> Quality:
        """The quality for a request made at `now`."""
        if self.lock_full or not self.moving(now):
            return self.full
        current = self.predicted_ms(self.level)
        if current is not None and current > self.down_margin * self.target_ms and self.level > 0:
            # step down as far as needed in one go
            while self.level > 0:
                self.level -= 1
                p = self.predicted_ms(self.level)
                if p is not None and p <= self.target_ms:
                    break
        elif self.level + 1 < len(self.previews):
            nxt = self.predicted_ms(self.level + 1)
            if nxt is not None and nxt <= self.up_margin * self.target_ms:
                self.level += 1
        return self.previews[self.level]
