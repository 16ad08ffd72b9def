"""A render with gradients, as a fit and the built-in model's training run it: the synthesis layers' autograd
form (styles and demodulation on the activations around one shared-weight conv; bias, lrelu, gain and clamp in
one op) against the straightforward one (per-sample modulated weights, the activation op by op), timed side
by side round-robin in one process.

    python bench/bench_grad.py [--threads 2] [--repeats 5] [--cases golden,builtin-train]

Cases: `golden`: one fit render of the small golden network (neural 64^2, 48 + 48 samples, super-resolution to
512^2), forward and backward to the latent, as a polish step renders; `builtin-train`: the built-in model's
backbone for a batch of 8 latents, forward and backward to its weights, as a training step runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a plain checkout too
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from renderer.engine.cpu import cpu_description  # noqa: E402
from renderer.model import layers  # noqa: E402


@contextlib.contextmanager
def straightforward() -> Iterator[None]:
    """Synthesis layers with autograd as written in the paper: modulated weights per sample, then bias, lrelu,
    gain and clamp as separate autograd ops; ToRGB as one batched product."""

    def plain(self, x, styles, noise):
        x = layers.modulated_conv2d(
            x, self.weight, styles, self.resample_filter, noise=noise, up=self.up, padding=1, flip_weight=self.up == 1
        )
        x = F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), 0.2) * layers.SQRT2
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x

    def plain_rgb(self, x, w):
        styles = self.affine(w) * self.weight_gain
        wt = self.weight[:, :, 0, 0].unsqueeze(0) * styles.unsqueeze(1)
        n, c, h, w_ = x.shape
        y = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, h * w_, c), wt.transpose(1, 2))
        y = y.reshape(n, h, w_, -1).permute(0, 3, 1, 2) + self.bias.reshape(1, -1, 1, 1)
        return y.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else y

    saved = layers.SynthesisLayer._modulate_activations, layers.ToRGBLayer.forward
    layers.SynthesisLayer._modulate_activations = plain  # type: ignore[method-assign]
    layers.ToRGBLayer.forward = plain_rgb  # type: ignore[method-assign]
    try:
        yield
    finally:
        layers.SynthesisLayer._modulate_activations, layers.ToRGBLayer.forward = saved  # type: ignore[method-assign]


def golden_case() -> Callable[[], None]:
    """One polish render of the golden network, backward to ws."""
    from bench_fit import golden_model

    from renderer.camera import orbit_camera
    from renderer.fit.render import render_diff

    G = golden_model(ffhq512=False)
    rk = G.rendering_kwargs
    cam = orbit_camera(0.1, -0.05, rk["avg_camera_radius"], rk["avg_camera_pivot"], fov_deg=18.837)
    with torch.no_grad():
        ws0 = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1)), cam[None])

    def run() -> None:
        ws = ws0.clone().requires_grad_(True)
        out = render_diff(G, ws, cam, 64, 48, 48, superresolution=True)
        assert out.image is not None
        out.image.square().mean().backward()

    return run


def builtin_train_case() -> Callable[[], None]:
    """The built-in model's backbone on 8 latents, backward to its weights."""
    from renderer.builtin.config import builtin_spec
    from renderer.model.generator import TriPlaneGenerator

    torch.manual_seed(0)
    G = TriPlaneGenerator(builtin_spec(128, 4096, 64, 256)).train().requires_grad_(True)
    z, c = torch.randn(8, G.z_dim), torch.zeros(8, 25)

    def run() -> None:
        G.zero_grad(set_to_none=True)
        G.backbone.synthesis(G.mapping(z, c), noise_mode="const").square().mean().backward()

    return run


CASES = {"golden": golden_case, "builtin-train": builtin_train_case}


def main() -> None:
    """Time each case both ways, alternating, and print the medians and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_description()}, {args.threads} threads")
    print(f"{'case':>14} {'straightforward':>16} {'ours':>9} {'ratio':>6}")
    for name in args.cases.split(","):
        run = CASES[name]()
        times: dict[str, list[float]] = {"plain": [], "ours": []}
        for r in range(args.repeats + 1):
            for way in ("plain", "ours"):
                with straightforward() if way == "plain" else contextlib.nullcontext():
                    t0 = time.perf_counter()
                    run()
                    if r >= 1:  # one warm-up round
                        times[way].append(time.perf_counter() - t0)
        plain, ours = statistics.median(times["plain"]), statistics.median(times["ours"])
        print(f"{name:>14} {plain:>14.3f} s {ours:>7.3f} s {plain / ours:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
