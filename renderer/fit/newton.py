"""Levenberg-Marquardt steps on a fit's residuals with a forward-difference Jacobian (the fit's `newton` phase).

Near its answer, fitting a network's own picture is a least-squares problem whose residual vanishes at the
answer; there Gauss-Newton converges in a few steps where L-BFGS creeps along the directions in which the
latent makes up for a camera error (bench/bench_identify.py). The Jacobian costs one render per parameter
(no autograd, the viewer's cost per render) and residuals x parameters float32 of memory.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn

from ..progress import CancelToken, check_cancel

DAMPING_START = 0.05
"""Damping at a phase's start, relative to J^T J's mean diagonal in the parameters' units; divided by 10 after
each step that lowers the loss, multiplied by 10 after each trial that does not."""

DAMPING_TRIALS = 8
"""Damped steps tried per iteration before it gives up (keeps the parameters, leaves the damping raised)."""

ROWS_PER_BLOCK = 65536
"""Rows of the Jacobian per float64 block when forming J^T J (its float32 copy stays the only full one)."""


@contextmanager
def full_fp32(device: torch.device) -> Iterator[None]:
    """cuDNN convolutions and cuBLAS matmuls in full fp32 while it lasts, on CUDA (elsewhere nothing changes).

    cuDNN convolves in TF32 by default, whose 10-bit mantissa rounds each activation by ~5e-4 of itself: a forward
    difference over a step of 1e-2 would carry ~5% noise, most in the directions the camera hides in. The flags
    are process-wide, so renders on other threads meanwhile run in full fp32 too (slower, never less exact)."""
    if device.type != "cuda":
        yield
        return
    b = torch.backends
    old = (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32)
    b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = False, False
    try:
        yield
    finally:
        b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = old


Model = TypeVar("Model", bound=nn.Module)


def fp32_twin(G: Model, only_on_cuda: bool = True) -> Model:
    """G itself off CUDA or when none of its blocks runs fp16; else a copy whose blocks all run in fp32.

    On a GPU EG3D runs its high-resolution backbone blocks and its super-resolution in fp16 (`use_fp16`), whose
    rounding a forward difference would drown in, as in TF32's. A copy leaves the model other threads render
    with as it was. (`only_on_cuda=False` copies on any device and always: the CPU ignores `use_fp16`.)"""
    on_cuda = next(G.parameters()).device.type == "cuda"
    if only_on_cuda and not (on_cuda and any(getattr(m, "use_fp16", False) for m in G.modules())):
        return G
    twin = copy.deepcopy(G)
    for m in twin.modules():
        if hasattr(m, "use_fp16"):
            setattr(m, "use_fp16", False)  # noqa: B010 - a plain attribute of some modules, not in nn.Module's type
    return twin


class LevenbergMarquardt:
    """Damped Gauss-Newton on residual(x) (a vector) over parameters x (a vector), one iteration per `step`.

    `h` holds each parameter's difference step, `unit` its natural size: the damping term is
    damping x mean(diag(J^T J) unit^2) x sum((dx / unit)^2), Levenberg's trust region in those units. (Marquardt's
    diagonal scaling lets a step run far along the directions the picture hardly sees, where the linear model
    stops holding: on the golden network the undamped step predicted 1/70 of the loss and gave 10x it.) The
    damping is the solver's whole state (`state_dict`), so a fit saved between iterations continues as if it
    never stopped."""

    def __init__(
        self,
        residual: Callable[[torch.Tensor], torch.Tensor],
        h: torch.Tensor,
        unit: torch.Tensor,
        cancel: CancelToken | None = None,
    ):
        self.residual = residual
        self.h = h
        self.unit = unit
        self.cancel = cancel
        self.damping = DAMPING_START

    def state_dict(self) -> dict:
        return {"damping": self.damping}

    def load_state_dict(self, state: dict) -> None:
        self.damping = float(state["damping"])

    def jacobian(self, x: torch.Tensor, r0: torch.Tensor) -> torch.Tensor:
        """(len(r0), len(x)) float32 forward differences at x; Cancelled between columns."""
        J = torch.empty(r0.numel(), x.numel(), dtype=torch.float32, device=r0.device)
        for k in range(x.numel()):
            check_cancel(self.cancel)
            xk = x.clone()
            xk[k] += self.h[k]
            J[:, k] = (self.residual(xk) - r0) / self.h[k]
        return J

    def step(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """One iteration from x: the new x (x itself when no damped step lowered the loss) and its loss
        (sum of squared residuals). Every residual is taken in full fp32 (`full_fp32`)."""
        with full_fp32(x.device):
            return self._step(x)

    def _step(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        r0 = self.residual(x)
        loss0 = float(r0.double().square().sum())
        J = self.jacobian(x, r0)
        A = torch.zeros(x.numel(), x.numel(), dtype=torch.float64, device=J.device)
        g = torch.zeros(x.numel(), dtype=torch.float64, device=J.device)
        for i in range(0, J.shape[0], ROWS_PER_BLOCK):
            block = J[i : i + ROWS_PER_BLOCK].double()
            A += block.T @ block
            g += block.T @ r0[i : i + ROWS_PER_BLOCK].double()
        del J
        inv_unit2 = self.unit.double().to(A.device).square().reciprocal()
        level = float((A.diagonal() / inv_unit2).mean().clamp_min(1e-30))
        for _ in range(DAMPING_TRIALS):
            check_cancel(self.cancel)
            dx = torch.linalg.solve(A + self.damping * level * torch.diag(inv_unit2), -g)
            x1 = x + dx.to(x.dtype)
            loss1 = float(self.residual(x1).double().square().sum())
            if loss1 < loss0:
                self.damping = max(self.damping / 10, 1e-12)
                return x1, loss1
            self.damping *= 10
        return x, loss0
