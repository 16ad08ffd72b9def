"""Can one picture pin the camera? The fit's render linearised at the true latent and camera (issue 19).

    python bench/bench_identify.py [--ffhq512] [--seed 0] [--columns 512] [--threads 2]

The self-consistency case of `bench_fit.py --golden` (seed s of the golden network, or of the FFHQ-512
configuration with random weights, at its hidden camera), rendered the way the fit renders (neural 64^2,
16 + 16 samples, full super-resolution). By central differences: the final image's derivative with respect
to yaw, to pitch, and to each of the first --columns whitened w coordinates (the fit's latent). Then, for a
camera error of 1, 2 and 5 degrees, the PSNR between the true picture and
* the picture at the wrong camera with the true latent ("uncompensated"), and
* the picture at the wrong camera with the best latent for it ("compensated": the camera column's part that
  no combination of the w columns reproduces, least squares).
A fit that stops below the compensated PSNR of a 2-degree error cannot tell that camera from the true one:
the picture alone does not pin it. With fewer columns than the latent has, the compensated PSNR is a lower
bound (less to compensate with). Pixels clamped in the shown picture are left out, as in the fit's loss.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_fit import golden_case, golden_model

from renderer.fit import FitSettings
from renderer.fit.camera import orbit_camera_t
from renderer.fit.fit import w_basis
from renderer.fit.render import render_diff

ERRORS_DEG = (1.0, 2.0, 5.0)


def db(mse: float) -> float:
    """PSNR of images on [-1, 1] from the mean square of their difference over 2."""
    return -10 * math.log10(max(mse, 1e-20))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ffhq512", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--columns", type=int, default=512, help="whitened w coordinates to compensate with")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    G = golden_model(args.ffhq512)
    rk = G.rendering_kwargs
    yaw, pitch, cam, z = golden_case(G, args.seed)
    w_mean, basis = w_basis(G, FitSettings().pca_samples, 0)
    with torch.no_grad():
        w_true = G.mapping(z, cam[None])[0, 0]
        shown = G.synthesis(w_true[None, None].expand(1, G.num_ws, -1), cam[None])["image"].flatten().double()
    a_true = torch.linalg.lstsq(basis.T.double(), (w_true - w_mean).double()[:, None]).solution[:, 0].float()
    pivot = [float(v) for v in rk["avg_camera_pivot"]]
    radius, focal = torch.tensor(float(rk["avg_camera_radius"])), torch.tensor(float(cam[16]))
    samples = FitSettings().samples

    @torch.no_grad()
    def picture(a: torch.Tensor, dyaw: float = 0.0, dpitch: float = 0.0) -> torch.Tensor:
        ws = (w_mean + a @ basis)[None, None].expand(1, G.num_ws, -1)
        c = orbit_camera_t(torch.tensor(yaw + dyaw), torch.tensor(pitch + dpitch), radius, pivot, focal)
        out = render_diff(G, ws, c, 64, *samples, superresolution=True).image
        assert out is not None
        return out.flatten().double()

    keep = (shown.abs() < 1).double()  # clamped pixels do not count (as in the fit's loss)
    t0 = time.perf_counter()
    base = picture(a_true)
    print(
        f"{'FFHQ-512 random weights' if args.ffhq512 else 'golden network'} seed {args.seed}: fit render vs model "
        f"{db(float(((base.clamp(-1, 1) - shown.clamp(-1, 1)) / 2).square().mean())):.1f} dB; "
        f"{float(keep.mean()):.1%} of the pixels unclamped; {time.perf_counter() - t0:.1f} s a render",
        flush=True,
    )
    h_w, h_cam = 0.02, 1e-3
    cols = []
    n = min(args.columns, basis.shape[0])
    for k in range(n):
        e = torch.zeros_like(a_true)
        e[k] = h_w
        cols.append(((picture(a_true + e) - picture(a_true - e)) / (2 * h_w) * keep).float())
        if (k + 1) % 64 == 0:
            print(f"  {k + 1}/{n} w columns, {time.perf_counter() - t0:.0f} s", flush=True)
    j_cam = torch.stack(
        [
            (picture(a_true, h_cam, 0) - picture(a_true, -h_cam, 0)) / (2 * h_cam) * keep,
            (picture(a_true, 0, h_cam) - picture(a_true, 0, -h_cam)) / (2 * h_cam) * keep,
        ],
        1,
    )
    q, _ = torch.linalg.qr(torch.stack(cols, 1).double())
    rest = j_cam - q @ (q.T @ j_cam)
    size = float(base.numel())
    for name, k in (("yaw", 0), ("pitch", 1)):
        row = []
        for deg in ERRORS_DEG:
            d = math.radians(deg) / 2  # images on [-1, 1]: the PSNR's difference is halved
            row.append(
                f"{deg:g} deg: {db(float((j_cam[:, k] * d).square().sum()) / size):.1f} / "
                f"{db(float((rest[:, k] * d).square().sum()) / size):.1f} dB"
            )
        share = float(rest[:, k].norm() / j_cam[:, k].norm())
        print(f"{name:5s} uncompensated / compensated: " + ", ".join(row) + f" (left after w: {share:.0%})")
    worst = float(torch.linalg.eigvalsh(rest.T @ rest)[0])
    d = math.radians(2.0) / 2
    print(
        f"the least visible 2-degree camera error (a yaw/pitch mix), compensated: {db(worst * d * d / size):.1f} dB "
        f"(w columns: {n}; {time.perf_counter() - t0:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
