"""Train the built-in tri-plane generator on the procedural head family (CPU or CUDA, resumable).

    python -m renderer.builtin.training.train --out runs/builtin18 --export renderer/builtin/builtin.safetensors
    python -m renderer.builtin.training.train --out runs/builtin18 --resume [--session-minutes 60]
    python -m renderer.builtin.training.evaluate --state runs/builtin18/state.pt --latents 6   # probe midway


Each step draws fresh latents (a seeded torch.Generator, so a run is reproducible from --seed),
renders their ground truth exactly, and fits the generator with
* 3D supervision: raw density against a sharp ramp of the signed distance and colour against the
  true colour, at points drawn mostly near the surface and around the small parts;
* ray losses: opacity, depth and colour of volume-rendered rays (stochastic samples, as EG3D
  trains) against the exact render, half the rays aimed at the nose, ears and eyes.
The mapping's first layer starts with the family's own parameter directions in its first rows
(the rest is random), so the generator sees the latent's proportions and colours from step one.
A final phase fits the super-resolution module (64 -> 256) to exact 256x256 renders, at random pixels
of each image. Checkpoints (model + optimisers + RNG state + elapsed time, both phases) are written every
few minutes and when a session's --session-minutes run out; --resume continues one with the settings it
was started with (--session-steps cuts a session by steps). The run is reproducible when the time cap binds
in neither phase (--steps and --sr-steps end them first; then the learning-rate schedule follows the steps, not
the wall clock), however it is cut into sessions: tests/test_builtin_training.py checks that a run stopped and
resumed twice ends bitwise where an uninterrupted one ends.
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
    NEURAL_RESOLUTION,
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

    out: str = "runs/builtin18"
    seed: int = 0
    steps: int = 12000
    minutes: float = 180.0
    """Wall-clock cap for the whole run (main phase + super-resolution phase), summed over resumed sessions."""
    sr_minutes: float = 25.0
    sr_steps: int = 100_000
    """The super-resolution phase ends after so many steps or at the time cap, whichever comes first (by default
    the time cap binds; a smaller count makes the whole run reproducible)."""
    sr_pixels: int = 4096
    """Pixels per image at which the super-resolved image is compared with the exact render."""
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
    """Torch CPU threads."""
    device: str = "cpu"
    """'cpu' or 'cuda' (the family's ground truth is computed there too)."""


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
    """(N, 7, 3) centres of the small parts (nose, ears, eyes, glasses, beard)."""
    return fam.part_centres(p)


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


def losses(
    G: TriPlaneGenerator, z: torch.Tensor, cfg: TrainConfig, g: torch.Generator, planes: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """All main-phase loss terms for one batch of latents; `planes` (N, 3, 32, P, P) stands in for the backbone's
    (the capacity probe optimises them directly)."""
    p = fam.params_from_z(z)
    n = z.shape[0]
    cams = random_cameras(n, g)
    origins, dirs = draw_rays(p, cams, cfg.rays, g)
    with torch.no_grad():
        gt = fam.render(p, origins, dirs, RAY_START, RAY_END)
        pts = draw_points(p, gt["points"], gt["alpha"] > 0, cfg.points, g)
        d = fam.sdf(pts, p)
        q = fam.query(pts, p, d.abs() < 0.03)  # colour only where the colour loss looks
    if planes is None:
        planes = train_planes(G, z)[1]
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


def save_state(
    path: str, G, opts: dict, step: int, elapsed: float, g: torch.Generator, cfg, phase: str, sr_step: int = 0
) -> None:
    """Resumable training state (written atomically): model, optimisers by name, steps, elapsed seconds, RNG."""
    tmp = path + ".tmp"
    torch.save(
        {
            "G": G.state_dict(),
            "opts": {k: o.state_dict() for k, o in opts.items()},
            "step": step,
            "elapsed": elapsed,
            "rng": g.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cfg": dataclasses.asdict(cfg),
            "phase": phase,
            "sr_step": sr_step,
        },
        tmp,
    )
    os.replace(tmp, path)


@torch.no_grad()
def update_w_avg(G: TriPlaneGenerator, seed: int, n: int = 4096) -> None:
    """w_avg = mean mapping output over n latents, so truncation pulls towards the average head."""
    w_avg = G.backbone.mapping.w_avg
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed + 7), device="cpu").to(w_avg.device)
    w_avg.copy_(G.backbone.mapping(z, None)[:, 0].mean(0))


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
    write_native(path, spec, {k: v.detach().cpu().clone() for k, v in G.state_dict().items()})


def load_state(path: str) -> tuple[TriPlaneGenerator, TrainConfig]:
    """The generator of a training state (OUT/state.pt) as it trains (density not sharpened), and its settings."""
    st = torch.load(path, weights_only=True, map_location="cpu")
    cfg = TrainConfig(**st["cfg"])
    G = build_generator(cfg)
    G.load_state_dict(st["G"])
    return G.eval().requires_grad_(False), cfg


def generator_from_state(path: str) -> TriPlaneGenerator:
    """The generator of a training state (OUT/state.pt) as export would write it at that point (mean w
    updated, density sharpened): for probing a run midway with evaluate --state."""
    G, cfg = load_state(path)
    update_w_avg(G, cfg.seed)
    sharpen_density(G)
    return G


def sr_loss(G: TriPlaneGenerator, cfg: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """L1 of the super-resolved image against the exact render at cfg.sr_pixels random pixels per image."""
    z = torch.randn(2, G.z_dim, generator=g)
    p = fam.params_from_z(z)
    cams = random_cameras(2, g)
    with torch.no_grad():
        ws = G.mapping(z, cams)
        planes = G.planes(ws)
        raw = G.render_planes(planes, ws, cams, superresolution=False, neural_rendering_resolution=NEURAL_RESOLUTION)
        origins, dirs = sample_rays(cams[:, :16].view(-1, 4, 4), cams[:, 16:25].view(-1, 3, 3), IMAGE_RESOLUTION)
        idx = torch.randint(0, dirs.shape[1], (2, cfg.sr_pixels), generator=g)
        pick = idx[..., None].expand(-1, -1, 3)
        gt = fam.render(p, torch.gather(origins, 1, pick), torch.gather(dirs, 1, pick), RAY_START, RAY_END)["rgb"]
    img = G.superresolution(raw["image_raw"].clone(), raw["features"], ws, noise_mode="none")
    pred = torch.gather(img.flatten(2).transpose(1, 2), 1, pick)  # pixel index = row * R + column
    return (pred - gt).abs().mean()


def sr_phase(G, cfg: TrainConfig, g, opt, step: int, until: float, max_steps: int, t_start: float, save, log) -> int:
    """Fit the super-resolution module (everything else frozen) until the wall clock reaches `until` or the
    step count `max_steps`; checkpoints every cfg.checkpoint_minutes. Returns the SR step count."""
    G.requires_grad_(False)
    G.superresolution.requires_grad_(True)
    last_ckpt = time.time()
    bar = tqdm(desc="super-resolution", unit="step", file=sys.stderr, mininterval=5, initial=step)
    while time.time() < until and step < max_steps:
        loss = sr_loss(G, cfg, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(l1=f"{loss.item():.4f}")
        if step % 20 == 0:
            log(f"sr step {step} t {(time.time() - t_start) / 60:.1f}m l1 {loss.item():.4f}")
        if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
            save(step)
            last_ckpt = time.time()
    bar.close()
    G.requires_grad_(False)
    return step


def main(argv=None) -> int:
    """Parse arguments, train (or resume), export the .safetensors checkpoint. Training sets the process's
    default torch device; an in-process caller (a test, a notebook) has its own back afterwards."""
    before = torch.get_default_device()
    try:
        return _train(argv)
    finally:  # a default device of cpu is torch's own: no device context at all
        torch.set_default_device(None if before.type == "cpu" else before)


def _train(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        ap.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name),
            help=f"(default {getattr(defaults, f.name)})",
        )
    ap.add_argument("--resume", action="store_true", help="continue from OUT/state.pt with its stored settings")
    ap.add_argument("--export", default=None, help="also copy the final weights here (.safetensors)")
    ap.add_argument(
        "--session-minutes",
        type=float,
        default=0.0,
        help="stop this session after so many minutes, saving the state for --resume (0: run to the end)",
    )
    ap.add_argument(
        "--session-steps",
        type=int,
        default=0,
        help="stop this session after so many steps (main and super-resolution), saving the state (0: no cap)",
    )
    args = ap.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    state_path = os.path.join(cfg.out, "state.pt")
    st = None
    if args.resume and os.path.exists(state_path):
        st = torch.load(state_path, weights_only=True, map_location="cpu")
        keep = {"out", "threads", "device", "checkpoint_minutes"}  # where and how, not what
        # the run's length may be extended when given explicitly (the schedule then stretches from here on)
        keep |= {k for k in ("steps", "minutes", "sr_minutes", "sr_steps") if getattr(cfg, k) != getattr(defaults, k)}
        cfg = TrainConfig(**{**st["cfg"], **{k: getattr(cfg, k) for k in keep}})
    torch.set_num_threads(cfg.threads)
    torch.set_default_device(cfg.device)
    os.makedirs(cfg.out, exist_ok=True)
    logf = open(os.path.join(cfg.out, "log.txt"), "a")

    def log(msg: str) -> None:
        logf.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
        logf.flush()

    G = build_generator(cfg).train()
    G.requires_grad_(True)
    dec = list(G.decoder.parameters())
    sr = list(G.superresolution.parameters())
    rest = [q for q in G.parameters() if all(q is not d for d in dec + sr)]
    opt = torch.optim.Adam(
        [{"params": rest, "mult": 1.0}, {"params": dec, "mult": cfg.decoder_lr_mult}], lr=cfg.lr, betas=(0.9, 0.99)
    )
    sr_opt = torch.optim.Adam(sr, lr=1e-3, betas=(0.9, 0.99))
    opts = {"main": opt, "sr": sr_opt}
    g = torch.Generator(device=cfg.device).manual_seed(cfg.seed)
    step, sr_step, elapsed, phase = 0, 0, 0.0, "main"
    if st is not None:
        G.load_state_dict(st["G"])
        for k, o in opts.items():
            if k in st.get("opts", {}):
                o.load_state_dict(st["opts"][k])
        step, elapsed, phase = st["step"], st["elapsed"], st.get("phase", "main")
        sr_step = st.get("sr_step", 0)
        g.set_state(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        log(f"resumed at step {step}, phase {phase} ({elapsed / 60:.1f} min)")
    log(f"config {dataclasses.asdict(cfg)}; {G.num_parameters()} parameters")
    budget = cfg.minutes * 60
    main_budget = budget - cfg.sr_minutes * 60
    t_start = time.time() - elapsed
    session_end = time.time() + (args.session_minutes * 60 if args.session_minutes > 0 else float("inf"))
    session_steps = args.session_steps if args.session_steps > 0 else cfg.steps + cfg.sr_steps
    first_step = step
    last_ckpt = time.time()

    def save(ph: str, sr_steps: int = 0) -> None:
        save_state(state_path, G, opts, step, time.time() - t_start, g, cfg, ph, sr_steps)

    bar = tqdm(total=cfg.steps, initial=step, desc="training", unit="step", file=sys.stderr, mininterval=5)
    while phase == "main" and step < cfg.steps and time.time() - t_start < main_budget:
        if time.time() > session_end or step - first_step >= session_steps:
            save("main")
            log(f"session cap: stopped at step {step} ({(time.time() - t_start) / 60:.1f} min); --resume continues")
            print(f"stopped at step {step}; continue with --resume --out {cfg.out}")
            return 0
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
            save("main")
            last_ckpt = time.time()
    bar.close()
    if phase == "main":
        phase = "sr"
        G.eval()
        update_w_avg(G, cfg.seed)
        save(phase)
    G.eval()
    until = min(t_start + budget, session_end)
    sr_cap = min(cfg.sr_steps, sr_step + session_steps - (step - first_step))
    if until - time.time() > 10:
        sr_step = sr_phase(G, cfg, g, sr_opt, sr_step, until, sr_cap, t_start, lambda k: save("sr", k), log)
    if sr_step < cfg.sr_steps and t_start + budget - time.time() > 10:  # a session cap stopped it
        save("sr", sr_step)
        log(f"session cap in the super-resolution phase (sr step {sr_step}); --resume continues")
        print(f"stopped at sr step {sr_step}; continue with --resume --out {cfg.out}")
        return 0
    minutes = (time.time() - t_start) / 60
    save("sr", sr_step)
    sharpen_density(G)
    info = {"train_steps": step, "sr_steps": sr_step, "train_minutes": round(minutes, 1)}
    final = os.path.join(cfg.out, "builtin.safetensors")
    export(G, cfg, final, info)
    if args.export:
        export(G, cfg, args.export, info)
    log(f"done: {step} steps + {sr_step} sr steps in {minutes:.1f} min -> {final}")
    print(f"wrote {final} ({step} steps + {sr_step} sr steps, {minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
