"""Train the built-in tri-plane generator on the procedural head family (CPU, minutes, resumable).

    python -m renderer.builtin.training.train --out runs/builtin --export renderer/builtin/builtin.safetensors

Each step draws fresh latents (a seeded torch.Generator, so a run is reproducible from --seed),
renders their ground truth exactly, and fits the generator with
* 3D supervision: raw density against a sharp ramp of the signed distance and colour against the
  true colour, at points drawn mostly near the surface and around the small parts;
* ray losses: opacity, depth and colour of volume-rendered rays (stochastic samples, as EG3D
  trains) against the exact render, half the rays aimed at the nose, ears and eyes.
The mapping's first layer starts with the family's own parameter directions in its first rows
(the rest is random), so the generator sees the latent's proportions and colours from step one.
A final phase fits the 2X super-resolution module to the exact 128x128 renders. Checkpoints
(model + optimiser + RNG state) are written every few minutes; --resume continues one.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from tqdm import tqdm

from renderer.builtin.config import (
    CAMERA_PIVOT,
    CAMERA_RADIUS,
    DENSITY_SHARPEN,
    FOCAL,
    IMAGE_RESOLUTION,
    PITCH_RANGE,
    RAY_END,
    RAY_START,
    YAW_RANGE,
    builtin_spec,
)
from renderer.builtin.training import family as fam
from renderer.camera import orbit_camera
from renderer.checkpoint import write_native
from renderer.model.decoder import channels_last_planes
from renderer.model.generator import PLANE_CHANNELS, TriPlaneGenerator
from renderer.model.layers import FullyConnected
from renderer.model.volume import importance_depths, merge_samples, ray_march, sample_rays, stratified_depths

SMALL_PART_IDS = [fam.PART_NAMES.index(n) for n in fam.SMALL_PARTS]


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored in the checkpoint and the model card)."""

    out: str = "runs/builtin"
    seed: int = 0
    steps: int = 5000
    minutes: float = 58.0
    """Wall-clock cap for the whole run (main phase + super-resolution phase)."""
    sr_minutes: float = 3.0
    batch: int = 4
    rays: int = 768
    points: int = 3072
    lr: float = 7e-3
    lr_final: float = 1e-4
    decoder_lr_mult: float = 25.0
    """The decoder must reach raw sigmas of ~100: a larger step lets it get there in hundreds of steps."""
    plane_resolution: int = 128
    channel_base: int = 4096
    channel_max: int = 64
    w_dim: int = 256
    train_depth: int = 24
    train_importance: int = 24
    density_slope: float = 10000.0
    density_offset: float = 0.012
    density_max: float = 100.0
    """Target raw sigma = clamp(slope * (offset - sdf), -10, max): the expected ray termination lands near the
    surface."""
    w_alpha: float = 1.0
    w_depth: float = 10.0
    w_rgb: float = 1.0
    w_density: float = 0.5
    w_point_rgb: float = 1.0
    checkpoint_minutes: float = 5.0
    threads: int = 2
    """Torch threads: 2 on a quiet 2-core machine (0.55 s/step); use 1 when other work shares the cores."""


def build_generator(cfg: TrainConfig) -> TriPlaneGenerator:
    """Fresh generator of the configured size; SR ToRGBs start at zero so SR = upsampled raw render."""
    torch.manual_seed(cfg.seed)
    G = TriPlaneGenerator(builtin_spec(cfg.plane_resolution, cfg.channel_base, cfg.channel_max, cfg.w_dim))
    with torch.no_grad():
        for blk in (G.superresolution.block0, G.superresolution.block1):
            blk.torgb.weight.zero_()
            blk.torgb.bias.zero_()
        # informed init: the first mapping units read the family's parameter directions off z
        fc0 = cast(FullyConnected, G.backbone.mapping.fc0)
        assert fc0.bias is not None  # the mapping layers have biases
        proj = fam.projection().to(fc0.weight)
        fc0.weight[: len(proj)] = proj / fc0.weight_gain
        fc0.bias[: len(proj)] = 0
    return G


def random_cameras(n: int, g: torch.Generator) -> torch.Tensor:
    """n orbit cameras (n, 25), yaw and pitch uniform over the trained ranges."""
    u = torch.rand(n, 2, generator=g)
    yaw = YAW_RANGE[0] + (YAW_RANGE[1] - YAW_RANGE[0]) * u[:, 0]
    pitch = PITCH_RANGE[0] + (PITCH_RANGE[1] - PITCH_RANGE[0]) * u[:, 1]
    return torch.stack(
        [orbit_camera(float(a), float(b), CAMERA_RADIUS, CAMERA_PIVOT, focal=FOCAL) for a, b in zip(yaw, pitch)]
    )


def part_centres(p: fam.HeadParams) -> torch.Tensor:
    """(N, 5, 3) centres of nose, left/right ear, left/right eye."""
    L = fam.layout(p)
    m = torch.tensor([-1.0, 1.0, 1.0])
    return torch.cat([L.nose_c, L.ear_c * m, L.ear_c, L.eye_c * m, L.eye_c], 1)


def draw_rays(p: fam.HeadParams, cams: torch.Tensor, n_rays: int, g: torch.Generator):
    """Half the rays through random pixels (128x128 grid), half aimed near the small parts."""
    origins, dirs = sample_rays(cams[:, :16].view(-1, 4, 4), cams[:, 16:25].view(-1, 3, 3), IMAGE_RESOLUTION)
    n = cams.shape[0]
    k = n_rays // 2
    idx = torch.randint(0, dirs.shape[1], (n, k), generator=g)
    d_uniform = torch.gather(dirs, 1, idx[..., None].expand(-1, -1, 3))
    centres = part_centres(p)
    which = torch.randint(0, centres.shape[1], (n, n_rays - k), generator=g)
    target = torch.gather(centres, 1, which[..., None].expand(-1, -1, 3))
    target = target + 0.035 * torch.randn(target.shape, generator=g)
    cam_pos = cams[:, :16].view(-1, 4, 4)[:, :3, 3]
    d_part = F.normalize(target - cam_pos[:, None], dim=-1)
    dirs = torch.cat([d_uniform, d_part], 1)
    return cam_pos[:, None].expand(-1, n_rays, -1).contiguous(), dirs


def draw_points(p: fam.HeadParams, surface: torch.Tensor, hit: torch.Tensor, n_points: int, g: torch.Generator):
    """3D supervision points (N, M, 3): 20% uniform in the box, 55% near ray hits, 25% around small parts."""
    n = len(p)
    n_uni = n_points // 5
    n_part = n_points // 4
    n_surf = n_points - n_uni - n_part
    uni = torch.rand(n, n_uni, 3, generator=g) - 0.5
    w = hit.float() + 1e-3
    pick = torch.multinomial(w, n_surf, replacement=True, generator=g)
    surf = torch.gather(surface, 1, pick[..., None].expand(-1, -1, 3))
    scale = torch.where(torch.rand(n, n_surf, 1, generator=g) < 0.5, 0.006, 0.025)
    surf = surf + scale * torch.randn(surf.shape, generator=g)
    centres = part_centres(p)
    which = torch.randint(0, centres.shape[1], (n, n_part), generator=g)
    part = torch.gather(centres, 1, which[..., None].expand(-1, -1, 3)) + 0.04 * torch.randn(n, n_part, 3, generator=g)
    return torch.cat([uni, surf, part], 1).clamp(-0.5, 0.5)


def train_planes(G: TriPlaneGenerator, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-mode mapping + backbone (with gradients): ws and tri-planes (N, 3, 32, P, P)."""
    ws = G.backbone.mapping(z, None)
    p = G.backbone.synthesis(ws, noise_mode="const")
    return ws, p.view(len(p), 3, PLANE_CHANNELS, p.shape[-2], p.shape[-1])


def render_rays_train(G: TriPlaneGenerator, planes, origins, dirs, n_coarse: int, n_fine: int, draw):
    """G._render_rays with gradients, returning features (N,32,M), alpha (N,M) and a depth (N,M) that is
    safe to differentiate where nothing was hit (the renderer's own depth divides by the opacity)."""
    rk = G.rendering_kwargs
    depths_c = stratified_depths(origins, dirs, rk["ray_start"], rk["ray_end"], n_coarse, rk["box_warp"], draw)
    colors_c, sigma_c = G._query(planes, origins, dirs, depths_c)
    coarse = ray_march(colors_c.detach(), sigma_c.detach(), depths_c)
    depths_f = importance_depths(depths_c, coarse.weights, n_fine, draw)
    colors_f, sigma_f = G._query(planes, origins, dirs, depths_f)
    depths, colors, sigma = merge_samples(depths_c, colors_c, sigma_c, depths_f, colors_f, sigma_f)
    res = ray_march(colors, sigma, depths)
    w = res.weights[:, 0]
    alpha = w.sum(-1)
    mids = (depths[:, 0, :, 1:] + depths[:, 0, :, :-1]) / 2
    depth = (w * mids).sum(-1) / alpha.clamp_min(1e-3)
    return res.rgb, depth, alpha


def density_target(sdf: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Raw-sigma target: a steep ramp across the surface, clamped to [-10, density_max]."""
    return (cfg.density_slope * (cfg.density_offset - sdf)).clamp(-10, cfg.density_max)


def losses(G: TriPlaneGenerator, z: torch.Tensor, cfg: TrainConfig, g: torch.Generator) -> dict[str, torch.Tensor]:
    """All main-phase loss terms for one batch of latents."""
    p = fam.params_from_z(z)
    n = z.shape[0]
    cams = random_cameras(n, g)
    origins, dirs = draw_rays(p, cams, cfg.rays, g)
    with torch.no_grad():
        gt = fam.render(p, origins, dirs, RAY_START, RAY_END)
        pts = draw_points(p, gt["points"], gt["alpha"] > 0, cfg.points, g)
        q = fam.query(pts, p)
    ws, planes = train_planes(G, z)
    planes = channels_last_planes(planes)

    def draw(shape):
        return torch.rand(shape, generator=g)

    feats, depth, alpha = render_rays_train(G, planes, origins, dirs, cfg.train_depth, cfg.train_importance, draw)
    hit = gt["alpha"]
    out = {}
    out["alpha"] = (alpha - hit).abs().mean()
    both = hit * (alpha.detach() > 0.5).float()
    out["depth"] = ((depth - gt["depth"]).abs() * both).sum() / both.sum().clamp_min(1) / (RAY_END - RAY_START)
    out["rgb"] = (feats[:, :3].transpose(1, 2) - gt["rgb"]).abs().mean()
    rgb, sigma = G._decode(pts, planes)
    near = (q["sdf"].abs() < 0.03).float()
    weight = 1 + 4 * torch.exp(-q["sdf"].abs() / 0.01)
    out["density"] = ((sigma[:, 0] - density_target(q["sdf"], cfg)).abs() * weight).mean() / cfg.density_max
    out["point_rgb"] = (
        ((rgb[:, :3].transpose(1, 2) - q["rgb"]).abs().sum(-1) * near).sum() / near.sum().clamp_min(1) / 3
    )
    with torch.no_grad():
        inside = (q["sdf"] < -0.02).float()
        out["sigma_in"] = (sigma[:, 0] * inside).sum() / inside.sum().clamp_min(1)
    out["total"] = (
        cfg.w_alpha * out["alpha"]
        + cfg.w_depth * out["depth"]
        + cfg.w_rgb * out["rgb"]
        + cfg.w_density * out["density"]
        + cfg.w_point_rgb * out["point_rgb"]
    )
    return out


def lr_at(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Short warm-up, then cosine decay from lr to lr_final over the steps (or the time cap, if it binds first:
    only then does wall-clock time, and so the machine's speed, enter the result)."""
    if step < 50:
        return cfg.lr * (step + 1) / 50
    t = min(1.0, max(step / max(1, cfg.steps), time_fraction))
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


def save_state(path: str, G, opt, step: int, elapsed: float, g: torch.Generator, cfg: TrainConfig, phase: str) -> None:
    """Resumable training state (written atomically)."""
    tmp = path + ".tmp"
    torch.save(
        {
            "G": G.state_dict(),
            "opt": opt.state_dict(),
            "step": step,
            "elapsed": elapsed,
            "rng": g.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cfg": dataclasses.asdict(cfg),
            "phase": phase,
        },
        tmp,
    )
    os.replace(tmp, path)


@torch.no_grad()
def update_w_avg(G: TriPlaneGenerator, seed: int, n: int = 4096) -> None:
    """w_avg = mean mapping output over n latents, so truncation pulls towards the average head."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed + 7))
    G.backbone.mapping.w_avg.copy_(G.backbone.mapping(z, None)[:, 0].mean(0))


@torch.no_grad()
def sharpen_density(G: TriPlaneGenerator, scale: float = DENSITY_SHARPEN[0], shift: float = DENSITY_SHARPEN[1]) -> None:
    """Bake raw' = scale * raw - shift into the decoder's density output (see config.DENSITY_SHARPEN)."""
    fc = cast(FullyConnected, G.decoder.net[2])
    assert fc.bias is not None  # the decoder's layers have biases
    fc.weight[0] *= scale
    fc.bias[0] = (scale * fc.bias[0] * fc.bias_gain - shift) / fc.bias_gain


def export(G: TriPlaneGenerator, cfg: TrainConfig, path: str, info: dict) -> None:
    """Write the generator as a native .safetensors checkpoint with the training settings in its metadata."""
    spec = builtin_spec(
        cfg.plane_resolution,
        cfg.channel_base,
        cfg.channel_max,
        cfg.w_dim,
        extra={"model": "triplane-viz builtin heads", "train_config": dataclasses.asdict(cfg), **info},
    )
    write_native(path, spec, {k: v.detach().clone() for k, v in G.state_dict().items()})


def sr_phase(G: TriPlaneGenerator, cfg: TrainConfig, g: torch.Generator, seconds: float, log) -> None:
    """Fit the super-resolution module (everything else frozen) to exact 128x128 renders."""
    G.requires_grad_(False)
    G.superresolution.requires_grad_(True)
    opt = torch.optim.Adam(G.superresolution.parameters(), lr=1e-3, betas=(0.9, 0.99))
    t0 = time.time()
    step = 0
    bar = tqdm(desc="super-resolution", unit="step", file=sys.stderr, mininterval=5)
    while time.time() - t0 < seconds:
        z = torch.randn(2, G.z_dim, generator=g)
        p = fam.params_from_z(z)
        cams = random_cameras(2, g)
        with torch.no_grad():
            ws = G.mapping(z, cams)
            planes = G.planes(ws)
            raw = G.render_planes(planes, ws, cams, superresolution=False)
            gt = fam.render_cameras(p, cams, IMAGE_RESOLUTION, RAY_START, RAY_END)["rgb"]
        img = G.superresolution(raw["image_raw"].clone(), raw["features"], ws, noise_mode="none")
        loss = (img - gt).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(l1=f"{loss.item():.4f}")
        if step % 20 == 0:
            log(f"sr step {step} l1 {loss.item():.4f}")
    bar.close()
    G.requires_grad_(False)


def main(argv=None) -> int:
    """Parse arguments, train (or resume), export the .safetensors checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        ap.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name),
            help=f"(default {getattr(defaults, f.name)})",
        )
    ap.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    ap.add_argument("--export", default=None, help="also copy the final weights here (.safetensors)")
    args = ap.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    torch.set_num_threads(cfg.threads)
    os.makedirs(cfg.out, exist_ok=True)
    state_path = os.path.join(cfg.out, "state.pt")
    logf = open(os.path.join(cfg.out, "log.txt"), "a")

    def log(msg: str) -> None:
        logf.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
        logf.flush()

    G = build_generator(cfg).train()
    G.requires_grad_(True)
    dec = list(G.decoder.parameters())
    rest = [q for q in G.parameters() if all(q is not d for d in dec)]
    opt = torch.optim.Adam(
        [{"params": rest, "mult": 1.0}, {"params": dec, "mult": cfg.decoder_lr_mult}], lr=cfg.lr, betas=(0.9, 0.99)
    )
    g = torch.Generator().manual_seed(cfg.seed)
    step, elapsed, phase = 0, 0.0, "main"
    if args.resume and os.path.exists(state_path):
        st = torch.load(state_path, weights_only=False)
        G.load_state_dict(st["G"])
        opt.load_state_dict(st["opt"])
        step, elapsed, phase = st["step"], st["elapsed"], st.get("phase", "main")
        g.set_state(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        log(f"resumed at step {step} ({elapsed / 60:.1f} min)")
    log(f"config {dataclasses.asdict(cfg)}; {G.num_parameters()} parameters")
    budget = cfg.minutes * 60
    main_budget = budget - cfg.sr_minutes * 60
    t_start = time.time() - elapsed
    last_ckpt = time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc="training", unit="step", file=sys.stderr, mininterval=5)
    while phase == "main" and step < cfg.steps and time.time() - t_start < main_budget:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg, (time.time() - t_start) / main_budget) * group["mult"]
        z = torch.randn(cfg.batch, G.z_dim, generator=g)
        terms = losses(G, z, cfg, g)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        finite = all(bool(torch.isfinite(q.grad).all()) for q in G.parameters() if q.grad is not None)
        if finite and bool(torch.isfinite(terms["total"])):
            opt.step()
        else:
            log(f"step {step}: non-finite loss or gradient, update skipped")
        step += 1
        bar.update(1)
        show = {k: f"{v.item():.4f}" for k, v in terms.items()}
        bar.set_postfix(show)
        if step % 10 == 0:
            log(
                f"step {step} t {(time.time() - t_start) / 60:.1f}m lr {opt.param_groups[0]['lr']:.2e} "
                + " ".join(f"{k} {v}" for k, v in show.items())
            )
        if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
            save_state(state_path, G, opt, step, time.time() - t_start, g, cfg, "main")
            last_ckpt = time.time()
    bar.close()
    phase = "sr"
    save_state(state_path, G, opt, step, time.time() - t_start, g, cfg, phase)
    G.eval()
    update_w_avg(G, cfg.seed)
    left = budget - (time.time() - t_start)
    if left > 10:
        sr_phase(G, cfg, g, min(left, cfg.sr_minutes * 60), log)
    minutes = (time.time() - t_start) / 60
    sharpen_density(G)
    info = {"train_steps": step, "train_minutes": round(minutes, 1)}
    final = os.path.join(cfg.out, "builtin.safetensors")
    export(G, cfg, final, info)
    if args.export:
        export(G, cfg, args.export, info)
    log(f"done: {step} steps in {minutes:.1f} min -> {final}")
    print(f"wrote {final} ({step} steps, {minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
