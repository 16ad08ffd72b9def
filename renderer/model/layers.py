"""StyleGAN2 building blocks: equalized-lr FC, bias+activation, FIR resampling, modulated conv.

Each op follows the reference's order of float32 operations (eg3d-math.md §1-6) so that
outputs match it bit for bit on CPU; shapes are NCHW.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = float(np.sqrt(2))

# activation -> (function, default alpha, default gain)
_ACTIVATIONS = {
    "linear": (lambda x, a: x, 0.0, 1.0),
    "relu": (lambda x, a: F.relu(x), 0.0, SQRT2),
    "lrelu": (lambda x, a: F.leaky_relu(x, a), 0.2, SQRT2),
    "tanh": (lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": (lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "softplus": (lambda x, a: F.softplus(x), 0.0, 1.0),
}


def bias_act(
    x: torch.Tensor, b: torch.Tensor | None, act: str = "linear", gain: float | None = None, clamp: float | None = None
) -> torch.Tensor:
    """Add bias along dim 1, apply the activation, scale by gain (if != 1), clip to +-clamp."""
    func, alpha, def_gain = _ACTIVATIONS[act]
    gain = def_gain if gain is None else float(gain)
    # one fresh tensor, then in-place steps: saves three full-size allocations per layer
    x = x + b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)]) if b is not None else x.clone()
    if x.requires_grad and torch.is_grad_enabled():  # training: the same maths out of place, for autograd
        if act == "lrelu":
            return _LreluGainClamp.apply(x, alpha, gain, clamp)
        x = func(x, alpha)
        x = x * gain if gain != 1 else x
        return x.clamp(-clamp, clamp) if clamp is not None else x
    if act == "lrelu":
        F.leaky_relu_(x, alpha)
    else:
        x = func(x, alpha)
    if gain != 1:
        x.mul_(gain)
    if clamp is not None:
        x.clamp_(-clamp, clamp)
    return x


class _LreluGainClamp(torch.autograd.Function):
    """clamp(gain * lrelu(x)), computed in place on x (a fresh tensor), whose backward reads only the output:
    its sign is x's (gain > 0), and a clamped output sits on the bound. Op by op, autograd would allocate, keep
    and walk a full-size tensor for each of lrelu, gain and clamp."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float, gain: float, clamp: float | None) -> torch.Tensor:
        F.leaky_relu_(x, alpha)
        if gain != 1:
            x.mul_(gain)
        if clamp is not None:
            x.clamp_(-clamp, clamp)
        ctx.alpha, ctx.gain, ctx.clamp = alpha, gain, clamp
        ctx.save_for_backward(x)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (y,) = ctx.saved_tensors
        g = torch.ops.aten.leaky_relu_backward(grad, y, ctx.alpha, True)
        if ctx.gain != 1:
            g.mul_(ctx.gain)
        if ctx.clamp is not None:
            g = torch.ops.aten.hardtanh_backward(g, y, -ctx.clamp, ctx.clamp)
        return g, None, None, None


class FullyConnected(nn.Module):
    """Equalized-learning-rate linear layer: weights are scaled by lr_mul/sqrt(in) at run time."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = float(lr_multiplier / np.sqrt(in_features))
        self.bias_gain = float(lr_multiplier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b: torch.Tensor | None = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale rows to unit mean square."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def fir_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    """The separable FIR low-pass as a normalised 2-D filter (the stored resample_filter)."""
    t = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(t, t)
    return f / f.sum()


def _depthwise_fir(x: torch.Tensor, f: torch.Tensor, gain: float, padding: int = 0) -> torch.Tensor:
    """True convolution of every channel with gain*f (flip is a no-op for symmetric f), zero padding."""
    c = x.shape[1]
    k = (f * gain).to(x.dtype).flip([0, 1])
    k = k[None, None].repeat([c, 1, 1, 1])
    return F.conv2d(x, k, groups=c, padding=padding)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 upsampling: zero insertion, pad (2,1,2,1), FIR with 4f (reference upfirdn2d)."""
    n, c, h, w = x.shape
    x = x.reshape([n, c, h, 1, w, 1])
    x = F.pad(x, [0, 1, 0, 0, 0, 1])
    x = x.reshape([n, c, h * 2, w * 2])
    x = F.pad(x, [2, 1, 2, 1])
    return _depthwise_fir(x, f, 4.0)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
) -> torch.Tensor:
    """Convolution with optional x2 upsampling (transposed conv + FIR), as in eg3d-math §4."""
    channels_last = _is_channels_last(x)
    if up == 1:
        if not flip_weight and w.shape[-1] > 1:
            w = w.flip([2, 3])
        if channels_last:  # both operands NHWC: oneDNN then runs (and answers) channels-last
            return F.conv2d(x, w.contiguous(memory_format=torch.channels_last), padding=padding, groups=groups)
        return F.conv2d(x, w, padding=padding, groups=groups)
    assert up == 2 and padding == 1 and w.shape[-1] == 3
    out_ch, in_ch = w.shape[0] // groups, w.shape[1]
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, out_ch, in_ch, 3, 3).transpose(1, 2).reshape(groups * in_ch, out_ch, 3, 3)
    if flip_weight:
        wt = wt.flip([2, 3])
    # a contiguous weight keeps oneDNN on its channels-last path (a transposed view costs a full output copy)
    x = F.conv_transpose2d(x, wt.contiguous(), stride=2, padding=0, groups=groups)
    if channels_last:  # oneDNN may answer in NCHW; stay channels-last for the layers that follow
        x = x.contiguous(memory_format=torch.channels_last)
    return _depthwise_fir(x, f, 4.0, padding=1)


def _is_channels_last(x: torch.Tensor) -> bool:
    """True for a 4-D tensor stored NHWC (and not also NCHW-contiguous, as 1x1 images are)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def modulated_weight(
    weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Per-sample weights (N, O, I, k, k): weight scaled by styles (N, I), then demodulated."""
    out_ch, in_ch, kh, kw = weight.shape
    if dtype == torch.float16 and demodulate:
        # fp16 pre-normalisation (cancels in the demodulation apart from the epsilon)
        weight = weight * (1 / np.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(styles.shape[0], -1, 1, 1, 1)
    return w


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    f: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    demodulate: bool = True,
    flip_weight: bool = True,
) -> torch.Tensor:
    """Fused (grouped) modulated convolution. x: (N, I, H, W); weight: (O, I, k, k); styles: (N, I)."""
    batch = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = modulated_weight(weight, styles, demodulate, x.dtype)
    if batch > 1:  # one grouped conv for the batch (for batch 1 a reshape would blur the NHWC strides)
        x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f, up=up, padding=padding, groups=batch, flip_weight=flip_weight)
    if batch > 1:
        x = x.reshape(batch, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise.to(x.dtype))
    return x


class SynthesisLayer(nn.Module):
    """Style-modulated 3x3 conv (optionally x2 up) + noise + lrelu, with an optional clamp."""

    noise_const: torch.Tensor  # buffers (registered in __init__)
    resample_filter: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: int = 1,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.register_buffer("resample_filter", fir_filter())

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device, generator=generator)
                * self.noise_strength
            )
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}")
        if noise is None and fused_conv_available(x):
            return self._fused(x, styles)
        if torch.is_grad_enabled() and x.dtype in (torch.float32, torch.float64) and not _autocast(x):
            return self._modulate_activations(x, styles, noise)
        x = modulated_conv2d(
            x, self.weight, styles, self.resample_filter, noise=noise, up=self.up, padding=1, flip_weight=(self.up == 1)
        )
        # fp16 activations are biased and clamped in fp32, as the reference's fused kernel does
        y = bias_act(x.float(), self.bias, act="lrelu", gain=SQRT2, clamp=self.conv_clamp)
        return y.to(x.dtype)

    def _modulate_activations(self, x: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """The same layer for autograd, with the styles and demodulation on the activations around one conv by the
        shared weight (StyleGAN2's non-fused form, equal in exact arithmetic): the backward then needs no
        per-sample weight gradient, a second full-size convolution, to reach the styles."""
        n = x.shape[0]
        dcoefs = (styles.square() @ self.weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # (N, O)
        x = x * styles.reshape(n, -1, 1, 1)
        x = conv2d_resample(x, self.weight, self.resample_filter, up=self.up, padding=1, flip_weight=(self.up == 1))
        x = torch.addcmul(self.bias.reshape(1, -1, 1, 1), x, dcoefs.reshape(n, -1, 1, 1))  # one pass: d x + b
        if noise is not None:
            x = x.add_(noise)
        return _LreluGainClamp.apply(x, 0.2, SQRT2, self.conv_clamp)

    def _fused(self, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """The same layer with bias and lrelu inside oneDNN's convolution (one pass over the output
        instead of four); the gain is folded into the weights and bias (lrelu(g z) = g lrelu(z), g > 0)."""
        w = modulated_weight(self.weight, styles)[0]
        b = self.bias * SQRT2
        conv = torch.ops.mkldnn._convolution_pointwise
        if self.up == 1:
            y = conv(
                x,
                (w * SQRT2).contiguous(memory_format=torch.channels_last),
                b,
                [1, 1],
                [1, 1],
                [1, 1],
                1,
                "leaky_relu",
                [0.2],
                "",
            )
        else:  # transposed conv (weights not flipped), then the FIR low-pass carries bias and lrelu
            t = F.conv_transpose2d(x, w.transpose(0, 1).contiguous(), stride=2)
            t = t.contiguous(memory_format=torch.channels_last)
            c = t.shape[1]
            k = (self.resample_filter * (4.0 * SQRT2)).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
            y = conv(
                t,
                k.contiguous(memory_format=torch.channels_last),
                b,
                [1, 1],
                [1, 1],
                [1, 1],
                c,
                "leaky_relu",
                [0.2],
                "",
            )
        return y.clamp_(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else y


def fused_conv_available(x: torch.Tensor) -> bool:
    """Whether a layer may use oneDNN's fused conv + bias + lrelu: fp32 channels-last batch-1 CPU
    inference without autograd (the op has no backward), outside autocast (bf16 previews keep
    autocast's convs)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.shape[0] == 1
        and _is_channels_last(x)
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and _HAS_FUSED_CONV
    )


def _autocast(x: torch.Tensor) -> bool:
    """Whether autocast is on for x's device (its convolutions then run in reduced precision)."""
    return torch.is_autocast_enabled(x.device.type)


_HAS_FUSED_CONV = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class ToRGBLayer(nn.Module):
    """1x1 modulated conv without demodulation: features -> image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = float(1 / np.sqrt(in_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """A 1x1 modulated conv is a per-sample matmul; done as one, in x's memory layout (no copy)."""
        styles = self.affine(w) * self.weight_gain
        wt = (self.weight[:, :, 0, 0].unsqueeze(0) * styles.unsqueeze(1)).to(x.dtype)  # (N, O, I)
        n, c, h, w_ = x.shape
        if fused_conv_available(x):  # oneDNN 1x1 conv with bias and the clamp (as hardtanh) in one pass
            clamp = [-self.conv_clamp, self.conv_clamp] if self.conv_clamp is not None else []
            return torch.ops.mkldnn._convolution_pointwise(
                x,
                wt[0, :, :, None, None].contiguous(memory_format=torch.channels_last),
                self.bias,
                [0, 0],
                [1, 1],
                [1, 1],
                1,
                "hardtanh" if clamp else "none",
                clamp,
                "",
            )
        if x.is_contiguous():
            y = torch.bmm(wt, x.reshape(n, c, h * w_)).reshape(n, -1, h, w_)
        elif n == 1:  # channels-last: pixels x channels (a 2-D product: bmm's backward here is 6x slower)
            y = (x.permute(0, 2, 3, 1).reshape(h * w_, c) @ wt[0].t()).reshape(1, h, w_, -1).permute(0, 3, 1, 2)
        else:
            xf = x.permute(0, 2, 3, 1).reshape(n, h * w_, c)
            y = torch.bmm(xf, wt.transpose(1, 2)).reshape(n, h, w_, -1).permute(0, 3, 1, 2)
        return bias_act(y.float(), self.bias, clamp=self.conv_clamp).to(x.dtype)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' StyleGAN2 generator: [const | conv0 (up)], conv1, ToRGB.

    With ``upsample=False`` (the reference's SynthesisBlockNoUp) conv0 keeps the resolution
    and the incoming image is not upsampled but added to in place, as the reference does.
    """

    resample_filter: torch.Tensor  # a buffer (registered in __init__)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        use_fp16: bool = False,
        conv_clamp: float | None = None,
        upsample: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.use_fp16 = use_fp16
        self.upsample = upsample
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim, resolution, up=2 if upsample else 1, conv_clamp=conv_clamp
            )
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
    ):
        dtype = torch.float16 if (self.use_fp16 and ws.device.type == "cuda") else torch.float32
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            assert x is not None  # every block after the first gets the previous block's features
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise_mode, generator)
        x = self.conv1(x, next(w_iter), noise_mode, generator)
        if img is not None and self.upsample:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter)).to(torch.float32, memory_format=torch.contiguous_format)
        img = img.add_(y) if img is not None else y
        return x, img


def block_channels(channel_base: int, channel_max: int, resolution: int) -> int:
    """Feature width of the backbone block at a resolution."""
    return min(channel_base // resolution, channel_max)


def log2_int(n: int) -> int:
    """log2 of a power of two, checked."""
    k = int(math.log2(n))
    if 2**k != n:
        raise ValueError(f"{n} is not a power of two")
    return k
