"""Fit a picture into the generator: the latent w (then w+), the camera, and optionally the weights.

    fitter = Fitter(G, target, CameraGuess(yaw, pitch), FitSettings(steps=60), cancel=event)
    while not fitter.done:
        rec = fitter.step()            # one optimisation step: rec.loss, rec.psnr, rec.phase ...
        if rec.step % 5 == 0:
            show(fitter.preview())     # uint8 (H, W, 3) of the current fit in the input view
    result = fitter.result()           # ws, camera, yaw/pitch, psnr, tuned weights (if asked)

or `fitter.run(callback)`. The window drives it from a background thread: `step()` does one step and
returns its record, `history` holds them all, `time_left()` estimates the rest from the steps so far,
and the `cancel` token (threading.Event or anything with is_set()) stops the next step with
`Cancelled`; nothing is written by the fitter itself.

Phases (coarse-to-fine, so a CPU fit takes well under a minute on a small model; `sr_crop` super-resolves a
random square per Adam step instead of the whole image, for 512^2 models):
1. `pose`: w (a whitened offset from w_avg, one w for every layer) with yaw/pitch at a low neural
   resolution, raw-image loss (and the object mask, when there is one);
2. `detail`: the same at the model's neural resolution, the final (super-resolved) image in the loss;
3. `w+` (optional): a separate offset per layer, with a pull towards the shared w;
4. `polish` (optional): L-BFGS on the same latent and camera against the whole final image, a few
   iterations per step, sampling rays at least as densely as the model does (`polish_samples`). Adam moves
   every coordinate by about its learning rate, so it stalls near 20 dB on an EG3D network's own render; the
   quasi-Newton steps keep converging (also as the only phase, steps=0);
5. `newton` (optional): Levenberg-Marquardt on the shared w and the camera against the polish's loss at the
   model's own neural resolution, the Jacobian by forward differences (one render per parameter): where a fit
   of a network's own picture is near its answer, it converges in a few steps while L-BFGS creeps along the
   directions in which the latent makes up for a camera error (`newton.py`);
6. `tune` (optional, pivotal tuning): the generator's backbone, decoder and super-resolution weights
   around the found w and camera, with a locality term that keeps the tri-planes of other latents
   (drawn between the pivot and random latents) where they were.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch

from ..camera import camera_tuple, default_focal
from ..model.generator import TriPlaneGenerator
from ..progress import CancelToken, check_cancel
from .camera import orbit_camera_t
from .compare import psnr, resize, shown_difference, to_uint8
from .newton import LevenbergMarquardt, fp32_twin
from .render import planes_with_grad, render_diff, render_inference
from .settings import CameraGuess, FitRecord, FitResult, FitSettings, FitTarget

UNSEEN_PHASE_PACE = {"detail": 2.5, "tune": 2.5, "polish": 5.0}
"""A phase's step time as a multiple of the last step's before it has run (polish: about 4-5 renders a step)."""

POLISH_POSE_UNIT = 0.04
"""Radians per unit of the polish's pose offset. L-BFGS's steps are not invariant to units: an image moves
about 600x more per radian of yaw than per whitened w coordinate (the golden network: 0.035 rad costs as
much as 0.03 on all 512 coordinates), so in radians its first steps threw the camera 30-40 degrees off;
in units of 0.04 rad both kinds of parameter have about the same curvature."""

NEWTON_RENDERS_PER_STEP_BEFORE = 10.0
"""A step before the newton phase (an Adam step, or a polish step's line search, with autograd) costs about this
many of its renders without autograd."""

NEWTON_STEP_W = 0.01
"""Forward-difference step of the newton phase's Jacobian per whitened w coordinate (about a hundredth of the
mapped latents' spread)."""

NEWTON_STEP_POSE = 1e-3
"""Forward-difference step per camera parameter (radians of yaw and pitch; radius; log focal length)."""

POLISH_ITERATIONS = 3
"""L-BFGS iterations per polish step (about 1.2 renders each with the strong-Wolfe line search)."""

RAW_PROXY_DB = 20.0
"""The raw render counts as a proxy of the final image above this PSNR (the mean latent at the start camera:
the built-in model measures 30.6 dB, the golden random-weight network 14.5 dB)."""


@torch.no_grad()
def w_basis(G: TriPlaneGenerator, n: int = 2048, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """w_avg (w_dim,) and a whitening basis (w_dim, w_dim): w = w_avg + a @ basis for a ~ N(0, I) spans the
    mapping network's output distribution (PCA of n mapped latents, conditioned on the frontal camera)."""
    from ..camera import default_camera

    g = torch.Generator().manual_seed(seed)
    dev = G.backbone.mapping.w_avg.device
    z = torch.randn(n, G.z_dim, generator=g).to(dev)
    c = default_camera(G.rendering_kwargs).expand(n, -1) if G.c_dim else torch.zeros(n, 0)
    c = c.to(dev)
    w = torch.cat([G.mapping(z[i : i + 512], c[i : i + 512])[:, 0] for i in range(0, n, 512)]).cpu()
    mean = G.backbone.mapping.w_avg.detach().cpu().clone()
    _, s, vh = torch.linalg.svd(w - w.mean(0), full_matrices=False)
    basis = vh * (s / math.sqrt(n - 1))[:, None]
    return mean.to(dev), basis.to(dev)


class Fitter:
    """A fit that advances one step per `step()` call (see the module doc)."""

    def __init__(
        self,
        G: TriPlaneGenerator,
        target: FitTarget,
        camera: CameraGuess | None = None,
        settings: FitSettings | None = None,
        cancel: CancelToken | None = None,
        basis: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        self.G = G
        self.device = dev = G.backbone.mapping.w_avg.device
        self.settings = s = (settings or FitSettings()).resolved(G)
        self.cancel = cancel
        self.target = target.image.float().reshape(1, 3, G.img_resolution, G.img_resolution).to(dev)
        self.mask = None if target.mask is None else target.mask.float().reshape(1, 1, *self.target.shape[-2:]).to(dev)
        rk = G.rendering_kwargs
        cam = camera or CameraGuess()
        self.pivot = [float(p) for p in rk.get("avg_camera_pivot", (0, 0, 0))]
        # every parameter lives on the model's device (L-BFGS and the newton phase flatten them into one vector);
        # the camera is built from them on the CPU, where its few scalar operations cost nothing
        self.yaw = torch.tensor(float(cam.yaw), device=dev, requires_grad=True)
        self.pitch = torch.tensor(float(cam.pitch), device=dev, requires_grad=True)
        self._pose_offset: torch.Tensor | None = None
        """The polish phase's yaw/pitch offset in POLISH_POSE_UNIT units (None outside it)."""
        radius = float(cam.radius or rk.get("avg_camera_radius", 2.7))
        self.radius = torch.tensor(radius, device=dev, requires_grad=True)
        self.log_focal = torch.tensor(math.log(cam.focal or default_focal(rk)), device=dev, requires_grad=True)
        self.w_mean, self.basis = basis if basis is not None else w_basis(G, s.pca_samples, s.seed)
        self.a = torch.zeros(self.basis.shape[0], device=dev, requires_grad=True)
        self.delta = torch.zeros(G.num_ws, G.w_dim, device=dev, requires_grad=True)
        self.history: list[FitRecord] = []
        self.tuned: TriPlaneGenerator | None = None
        self._t0: float | None = None
        self._elapsed = 0.0
        self.final_resolution = int(s.resolution or min(G.neural_rendering_resolution, 128))
        self.phases = s.phases()
        self.raw_proxy = s.raw_proxy if s.raw_proxy is not None else self._raw_is_proxy()
        self.total_steps = sum(n for _, n in self.phases)
        self._phase_index = 0
        self._phase_step = 0
        self._opt: torch.optim.Optimizer | LevenbergMarquardt | None = None
        self._newton_parameters: list[torch.Tensor] = []
        """What the newton phase moves: the shared whitened w, then the camera's free parameters."""
        self._newton_G: TriPlaneGenerator | None = None
        """The model the newton phase renders with: fp32 throughout (newton.fp32_twin)."""
        self._frozen: TriPlaneGenerator | None = None
        self._best: tuple[float, list[torch.Tensor]] | None = None
        """The detail and w+ phases' lowest loss so far and the parameters that gave it."""
        self._gen = torch.Generator().manual_seed(s.seed + 1)

    # ----------------------------------------------------------------- state
    @property
    def done(self) -> bool:
        return self._phase_index >= len(self.phases)

    @property
    def phase(self) -> str:
        return "done" if self.done else self.phases[self._phase_index][0]

    def ws(self) -> torch.Tensor:
        """Current ws (1, num_ws, w_dim)."""
        w = self.w_mean + self.a @ self.basis
        return (w[None] + self.delta)[None]

    def camera(self) -> torch.Tensor:
        """Current camera (25,) (differentiable in the pose parameters)."""
        yaw, pitch = self._pose()
        cam = orbit_camera_t(yaw.cpu(), pitch.cpu(), self.radius.cpu(), self.pivot, self.log_focal.exp().cpu())
        return cam.to(self.device)

    def _pose(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Yaw and pitch now: during the polish, the phase's start plus POLISH_POSE_UNIT x its pose offset."""
        if self._pose_offset is None:
            return self.yaw, self.pitch
        return self.yaw + POLISH_POSE_UNIT * self._pose_offset[0], self.pitch + POLISH_POSE_UNIT * self._pose_offset[1]

    def time_left(self) -> float | None:
        """Seconds the remaining steps should take at the pace so far (None before the first step)."""
        if not self.history:
            return None
        per_phase: dict[str, list[float]] = {}
        for r in self.history:
            per_phase.setdefault(r.phase, []).append(r.seconds)
        last = self.history[-1].seconds
        left = 0.0
        for i, (name, n) in enumerate(self.phases[self._phase_index :]):
            done_here = self._phase_step if i == 0 else 0
            times = per_phase.get(name)
            pace = float(np.median(times)) if times else last * self._unseen_pace(name)
            left += (n - done_here) * pace
        return left

    def _unseen_pace(self, name: str) -> float:
        """A phase's step time as a multiple of the last step's before it has run."""
        if name == "newton":  # a render per parameter, without autograd
            return (self.a.numel() + 4) / NEWTON_RENDERS_PER_STEP_BEFORE
        return UNSEEN_PHASE_PACE.get(name, 1.0)

    # ----------------------------------------------------------------- steps
    def _start_phase(self, name: str) -> None:
        s = self.settings
        self._newton_G = None  # a newton phase's fp32 copy of the model is freed when the phase ends
        moves_pose = s.optimise_pose and name in ("pose", "detail", "w+", "polish", "newton")
        pose = [self.yaw, self.pitch] if moves_pose else []
        extra = []
        if s.optimise_radius and name != "tune":
            extra.append(self.radius)
        if s.optimise_focal and name != "tune":
            extra.append(self.log_focal)
        groups: list[dict] = []
        if name in ("pose", "detail"):
            lr = s.lr_w if name == "pose" else s.lr_w * 0.5
            groups.append({"params": [self.a], "lr": lr})
        elif name == "w+":
            groups.append({"params": [self.delta], "lr": s.w_plus_lr})
        if pose:
            groups.append({"params": pose, "lr": s.lr_pose if name == "pose" else s.lr_pose * 0.5})
        if extra:
            groups.append({"params": extra, "lr": s.lr_pose * 0.5})
        if name == "newton":
            n_pose = len(pose) + len(extra)
            h = torch.tensor([NEWTON_STEP_W] * self.a.numel() + [NEWTON_STEP_POSE] * n_pose, device=self.device)
            unit = torch.tensor([1.0] * self.a.numel() + [POLISH_POSE_UNIT] * n_pose, device=self.device)
            self._newton_parameters = [self.a, *pose, *extra]
            self._newton_G = fp32_twin(self.G)
            self._opt = LevenbergMarquardt(self._newton_residual, h, unit, self.cancel)
            return
        if name == "polish":
            latent = [self.a, self.delta] if s.w_plus_steps > 0 else [self.a]
            if pose:
                self._pose_offset = torch.zeros(2, device=self.device, requires_grad=True)
                pose = [self._pose_offset]
            params = latent + pose + extra
            self._opt = torch.optim.LBFGS(
                params, lr=1.0, max_iter=POLISH_ITERATIONS, history_size=20, line_search_fn="strong_wolfe"
            )
            return
        if name == "tune":
            self._frozen = self.G
            self.tuned = copy.deepcopy(self.G)
            self.tuned.requires_grad_(False)
            params = [*self.tuned.backbone.synthesis.parameters(), *self.tuned.decoder.parameters()]
            params += list(self.tuned.superresolution.parameters())
            for p in params:
                p.requires_grad_(True)
            groups = [{"params": params, "lr": s.tune_lr}]
        for g in groups:
            g["base_lr"] = g["lr"]
        self._opt = torch.optim.Adam(groups, betas=(0.9, 0.99))

    @torch.no_grad()
    def _raw_is_proxy(self) -> bool:
        """Does the raw render look like the final image downscaled (see FitSettings.raw_proxy)?"""
        out = self.render()
        raw = out["image_raw"]
        return psnr(raw, resize(out["image"], raw.shape[-1])) >= RAW_PROXY_DB

    def _loss(self, name: str) -> tuple[torch.Tensor, float]:
        """Phase `name`'s loss (with autograd) and the raw render's PSNR against the target."""
        terms, p = self._terms(name)
        l1 = 0.0 if name == "polish" else 0.5  # L-BFGS wants a smooth loss: squares only
        loss = torch.zeros((), device=self.device)
        for weight, d, kind in terms:
            if kind == "picture":
                loss = loss + weight * (d.square().mean() + l1 * d.abs().mean())
            elif kind == "mask" and l1:
                loss = loss + weight * d.abs().mean()
            else:
                loss = loss + weight * d.square().mean()
        return loss, p

    @torch.no_grad()
    def _residual(self) -> tuple[torch.Tensor, float]:
        """The newton phase's residual vector, whose sum of squares is the polish's loss at newton_resolution,
        and the raw render's PSNR."""
        terms, p = self._terms("newton")
        return torch.cat([(weight / d.numel()) ** 0.5 * d.flatten() for weight, d, _ in terms if weight > 0]), p

    def _terms(self, name: str) -> tuple[list[tuple[float, torch.Tensor, str]], float]:
        """Phase `name`'s loss as (weight, difference, kind) terms, each weight x the difference's mean square
        (in the Adam phases a "picture" adds half its mean absolute value, a "mask" counts that alone), and the
        raw PSNR."""
        s = self.settings
        G = self.tuned if name == "tune" and self.tuned is not None else self.G
        if name == "newton" and self._newton_G is not None:
            G = self._newton_G
        exact = name in ("polish", "newton")
        n_c, n_f = s.polish_samples if exact and s.polish_samples else s.samples
        raw_weight = s.raw_weight if self.raw_proxy else 0.1 * s.raw_weight
        if name == "pose" and not self.raw_proxy:
            res, sr = self.final_resolution, True
        elif name == "pose":
            res, sr = s.start_resolution, False
        elif name == "tune":
            res, sr = int(s.tune_resolution or self.final_resolution), True
        elif name == "newton":
            res, sr = int(s.newton_resolution or self.G.neural_rendering_resolution), s.image_weight > 0
        else:
            res, sr = self.final_resolution, s.image_weight > 0
        if exact and sr and not self.raw_proxy:
            raw_weight = 0.0  # the raw render is another picture: only the final image counts
        ws = self.ws().detach() if name == "tune" else self.ws()
        cam = self.camera()
        if name == "tune":
            cam = cam.detach()
        crop = self._crop(res) if sr and not exact else None
        if name == "newton":  # no autograd there: the viewer's faster renderer, the same picture
            out = render_inference(G, ws, cam, res, n_c, n_f, superresolution=sr)
        else:
            out = render_diff(G, ws, cam, res, n_c, n_f, superresolution=sr, crop=crop)
        target_raw = resize(self.target, res)
        terms = [(raw_weight, shown_difference(out.raw, target_raw), "picture")]
        if self.mask is not None and s.mask_weight > 0:
            terms.append((s.mask_weight, out.alpha - resize(self.mask, res), "mask"))
        if sr and out.image is not None:
            target = self.target
            if crop is not None:
                k = self.target.shape[-1] // self.G.superresolution.block_input_resolution(res)
                top, left, size = (k * v for v in crop)
                target = target[..., top : top + size, left : left + size]
            terms.append((s.image_weight, shown_difference(out.image, target), "picture"))
        if name in ("pose", "detail", "polish", "newton"):
            terms.append((s.prior_weight, self.a, "prior"))
        if name == "w+" or (exact and s.w_plus_steps > 0):
            scale = float(self.basis.square().sum(0).mean().clamp_min(1e-8))
            terms.append((s.w_plus_pull / scale, self.delta, "prior"))
        if name == "tune" and self.tuned is not None and self._frozen is not None and s.locality_weight > 0:
            after, before = self._locality_planes()
            terms.append((s.locality_weight / float(before.square().mean().clamp_min(1e-8)), after - before, "prior"))
        return terms, psnr(out.raw.detach(), target_raw)

    def _crop(self, res: int) -> tuple[int, int, int] | None:
        """A random (top, left, size) square of the super-resolution input for this step, or None (whole)."""
        size = self.settings.sr_crop
        r = self.G.superresolution.block_input_resolution(res)
        noise = self.G.rendering_kwargs.get("superresolution_noise_mode", "none")
        if size is None or size >= r or noise != "none":  # a crop has no place in a noise image
            return None
        top, left = (int(v) for v in torch.randint(0, r - size + 1, (2,), generator=self._gen))
        return top, left, int(size)

    def _locality_planes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The tuned and the frozen tri-planes at latents between the pivot and random latents (the locality
        term: their mean squared change)."""
        assert self.tuned is not None and self._frozen is not None
        k = self.settings.locality_samples
        a = torch.randn(k, self.basis.shape[0], generator=self._gen).to(self.device)
        w_rand = self.w_mean + a @ self.basis
        pivot = self.ws().detach()[0, -1]
        t = torch.rand(k, 1, generator=self._gen).to(self.device)
        w = pivot + t * (w_rand - pivot)
        ws = w[:, None].expand(-1, self.G.num_ws, -1)
        with torch.no_grad():
            before = planes_with_grad(self._frozen, ws)
        return planes_with_grad(self.tuned, ws), before

    def _fit_parameters(self) -> list[torch.Tensor]:
        """What the latent and camera phases move (restored together to a phase's best iterate)."""
        return [self.a, self.delta, self.yaw, self.pitch, self.radius, self.log_focal]

    def step(self) -> FitRecord:
        """Run one optimisation step; raises Cancelled when the token is set, RuntimeError when done."""
        if self.done:
            raise RuntimeError("the fit is finished")
        check_cancel(self.cancel)
        name, n = self.phases[self._phase_index]
        if self._opt is None:  # a phase's first step, or the first after `restore`
            self._start_phase(name)
        assert self._opt is not None
        t = time.perf_counter()
        if name == "polish":
            loss, p = self._polish_step()
        elif name == "newton":
            loss, p = self._newton_step()
        else:
            loss, p = self._adam_step(name, n)
        with torch.no_grad():
            self.pitch.clamp_(-1.2, 1.2)
            self.radius.clamp_(0.5, 20.0)
        dt = time.perf_counter() - t
        self._elapsed += dt
        yaw, pitch = self._pose()
        rec = FitRecord(len(self.history), name, loss.item(), p, yaw.item(), pitch.item(), dt)
        self.history.append(rec)
        self._phase_step += 1
        if self._phase_step >= n:
            if self._best is not None:  # end the phase on the best iterate it visited
                with torch.no_grad():
                    for q, v in zip(self._fit_parameters(), self._best[1], strict=True):
                        q.copy_(v)
            self._phase_index += 1
            self._phase_step = 0
            self._opt = None
            self._best = None
            if self._pose_offset is not None:  # fold the polish's pose offset into yaw/pitch
                with torch.no_grad():
                    yaw, pitch = self._pose()
                    self.yaw.copy_(yaw)
                    self.pitch.copy_(pitch)
                self._pose_offset = None
            if name == "tune" and self.tuned is not None:
                self.tuned.requires_grad_(False)
        return rec

    def state(self) -> dict:
        """Where the fit stands (latent, camera, phase and step, history) in tensors and plain values, for
        torch.save(weights_only-loadable) and `restore`: a long fit can run in several sittings. Inside a phase it
        also keeps what the phase's optimiser carries (Adam's moments, L-BFGS's curvature pairs, the polish's pose
        offset, the best iterate, the crop generator), so a fit continued from it takes the same steps as one that
        never stopped."""
        yaw, pitch = self._pose()
        state = {
            "a": self.a.detach().cpu().clone(),
            "delta": self.delta.detach().cpu().clone(),
            "pose": [yaw.item(), pitch.item(), self.radius.item(), self.log_focal.item()],
            "phase_index": self._phase_index,
            "phase_step": self._phase_step,
            "phases": [list(p) for p in self.phases],
            "history": [asdict(r) for r in self.history],
            "elapsed": self._elapsed,
            "generator": self._gen.get_state(),
        }
        if self._opt is not None and self.phase != "tune":
            state["resume"] = {
                "phase_pose": [self.yaw.item(), self.pitch.item()],
                "pose_offset": None if self._pose_offset is None else self._pose_offset.detach().cpu().clone(),
                "optimiser": _to_cpu(self._opt.state_dict()),
                "best": None if self._best is None else [self._best[0], _to_cpu(self._best[1])],
            }
        return state

    def restore(self, state: dict) -> None:
        """Continue from `state()` of a fit with the same model and phases (ValueError when it does not fit)."""
        phases = [(str(name), int(n)) for name, n in state["phases"]]
        if phases != self.phases:
            raise ValueError(
                f"the saved fit ran the phases {phases}, this one runs {self.phases}: use the same settings"
            )
        if tuple(state["a"].shape) != tuple(self.a.shape) or tuple(state["delta"].shape) != tuple(self.delta.shape):
            raise ValueError("the saved fit's latent has another shape: it was made with another model")
        index, step = int(state["phase_index"]), int(state["phase_step"])
        if index < len(phases) and phases[index][0] == "tune" and step > 0:
            raise ValueError("the saved fit stopped inside the tuning phase, whose weights it does not keep")
        resume = state.get("resume") if 0 < step and index < len(phases) else None
        with torch.no_grad():
            self.a.copy_(state["a"])
            self.delta.copy_(state["delta"])
            pose = list(state["pose"])
            if resume is not None:  # the phase's own start, to which its pose offset (if any) adds
                pose[:2] = resume["phase_pose"]
            for q, v in zip((self.yaw, self.pitch, self.radius, self.log_focal), pose, strict=True):
                q.fill_(float(v))
        self._phase_index, self._phase_step = index, step
        self._opt, self._best, self._pose_offset = None, None, None
        self.history = [FitRecord(**r) for r in state["history"]]
        self._elapsed = float(state["elapsed"])
        if "generator" in state:
            self._gen.set_state(state["generator"])
        if resume is not None:
            self._start_phase(phases[index][0])
            assert self._opt is not None
            if resume["pose_offset"] is not None and self._pose_offset is not None:
                with torch.no_grad():
                    self._pose_offset.copy_(resume["pose_offset"])
            self._opt.load_state_dict(resume["optimiser"])
            if resume["best"] is not None:
                loss, values = resume["best"]
                self._best = (float(loss), [v.to(self.device) for v in values])

    def _adam_step(self, name: str, n: int) -> tuple[torch.Tensor, float]:
        """One Adam step of phase `name` (n steps long): the loss before it and the raw PSNR."""
        assert isinstance(self._opt, torch.optim.Optimizer)
        ramp = ramp_down(self._phase_step, n)
        for g in self._opt.param_groups:
            g["lr"] = g["base_lr"] * ramp
        loss, p = self._loss(name)
        tracked = name in ("detail", "w+") and self.settings.sr_crop is None  # a crop's loss is not comparable
        if tracked and (self._best is None or loss.item() < self._best[0]):
            self._best = (loss.item(), [q.detach().clone() for q in self._fit_parameters()])
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        return loss, p

    def _polish_step(self) -> tuple[torch.Tensor, float]:
        """POLISH_ITERATIONS L-BFGS iterations (each line search re-renders): the lowest loss it saw and that
        render's raw PSNR. Cancellation is checked between steps, so the parameters never stop mid-search."""
        assert isinstance(self._opt, torch.optim.LBFGS)
        seen: list[tuple[torch.Tensor, float]] = []

        def closure() -> float:
            assert isinstance(self._opt, torch.optim.LBFGS)
            self._opt.zero_grad(set_to_none=True)
            loss, p = self._loss("polish")
            loss.backward()
            seen.append((loss.detach(), p))
            return float(loss.detach())

        self._opt.step(closure)
        return min(seen, key=lambda v: float(v[0]))

    def _newton_vector(self) -> torch.Tensor:
        return torch.cat([q.detach().reshape(-1) for q in self._newton_parameters])

    @torch.no_grad()
    def _set_newton_vector(self, x: torch.Tensor) -> None:
        i = 0
        for q in self._newton_parameters:
            q.copy_(x[i : i + q.numel()].view_as(q))
            i += q.numel()

    def _newton_residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual at parameters x (the fit's own parameters are left as they were)."""
        now = self._newton_vector()
        self._set_newton_vector(x)
        try:
            r, _ = self._residual()
        finally:
            self._set_newton_vector(now)
        return r

    def _newton_step(self) -> tuple[torch.Tensor, float]:
        """One Levenberg-Marquardt iteration: its loss and raw PSNR (cancellation leaves the parameters be)."""
        assert isinstance(self._opt, LevenbergMarquardt)
        x, loss = self._opt.step(self._newton_vector())
        self._set_newton_vector(x)
        r, p = self._residual()
        return r.square().sum(), p

    def run(self, callback: Callable[["Fitter", FitRecord], None] | None = None) -> FitResult:
        """All remaining steps (callback(fitter, record) after each), then the result."""
        while not self.done:
            rec = self.step()
            if callback is not None:
                callback(self, rec)
        return self.result()

    # ----------------------------------------------------------------- outputs
    @torch.no_grad()
    def render(self, camera: torch.Tensor | None = None, generator: TriPlaneGenerator | None = None) -> dict:
        """The viewer's render (no autograd) of the current fit: 'image', 'image_raw', 'image_depth', ...;
        the tuned generator once tuning has started, unless another is given."""
        G = generator or self.tuned or self.G
        cam = (self.camera() if camera is None else camera).detach().reshape(1, 25).to(self.device)
        ws = self.ws().detach()
        return G.synthesis(ws, cam)

    def preview(self) -> np.ndarray:
        """uint8 (R, R, 3) of the current fit's final image in the input view."""
        img = self.render()["image"][0]
        return to_uint8(img)

    def result(self) -> FitResult:
        """The fit as it stands (normally called when done)."""
        out = self.render()
        ws = self.ws().detach()[0].cpu().numpy().astype(np.float32)
        cam = self.camera().detach().cpu()
        yaw, pitch = self._pose()
        return FitResult(
            ws=ws,
            camera=camera_tuple(cam),
            yaw=yaw.item(),
            pitch=pitch.item(),
            radius=self.radius.item(),
            focal=self.log_focal.exp().item(),
            psnr=psnr(out["image"], self.target),
            psnr_raw=psnr(out["image_raw"], resize(self.target, out["image_raw"].shape[-1])),
            seconds=self._elapsed,
            steps=len(self.history),
            tuned=self.tuned,
            history=list(self.history),
        )


def _to_cpu(value):
    """A copy of a state (nested dicts, lists, tuples, tensors, plain values) with its tensors on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


def ramp_down(step: int, n: int, tail: float = 0.25) -> float:
    """Learning-rate factor at `step` of a phase of `n` steps: 1, then a cosine down towards 0 over the last
    `tail` of the phase (as StyleGAN's projector ends), so a fit settles instead of ending mid-stride."""
    left = (n - step) / max(n * tail, 1e-9)
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, left))
