"""The synthesis layers' autograd forms (what fits and training differentiate) against the straightforward
maths: per-sample modulated weights and the activation op by op, in float64 where rounding would hide a slip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from renderer.model import layers


def plain_synthesis_layer(layer: layers.SynthesisLayer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The layer as the paper writes it: weights scaled by the styles and demodulated per sample, one grouped
    conv, constant noise, bias, lrelu, gain, clamp, each an ordinary autograd op."""
    styles = layer.affine(w)
    noise = layer.noise_const * layer.noise_strength
    y = layers.modulated_conv2d(
        x, layer.weight, styles, layer.resample_filter, noise=noise, up=layer.up, padding=1, flip_weight=layer.up == 1
    )
    y = F.leaky_relu(y + layer.bias.reshape(1, -1, 1, 1), 0.2) * layers.SQRT2
    return y.clamp(-layer.conv_clamp, layer.conv_clamp) if layer.conv_clamp is not None else y


def outputs_and_gradients(module: torch.nn.Module, forward, x: torch.Tensor, w: torch.Tensor, seed: int = 1):
    """forward(x, w), then the gradients of a fixed random projection of it for x, w and every parameter."""
    x, w = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y = forward(x, w)
    probe = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    (y * probe).sum().backward()
    grads = [x.grad, w.grad] + [p.grad for p in module.parameters()]
    return y.detach(), [g if g is not None else torch.zeros(()) for g in grads]


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("clamp", [None, 0.7])
@pytest.mark.parametrize("channels_last", [False, True])
def test_synthesis_layer_with_gradients_matches_the_modulated_weights(up, batch, clamp, channels_last):
    """Styles and demodulation on the activations around one shared-weight conv, and the fused activation's
    backward, give the straightforward layer's output and gradients (input, latent, every weight)."""
    torch.manual_seed(0)
    layer = layers.SynthesisLayer(6, 5, 8, 12, up=up, conv_clamp=clamp).double()
    torch.nn.init.normal_(layer.bias)
    torch.nn.init.normal_(layer.affine.bias)
    layer.noise_strength.data.fill_(0.3)
    x = torch.randn(batch, 6, 12 // up, 12 // up, dtype=torch.float64) * 2
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(batch, 8, dtype=torch.float64)
    ours, ours_g = outputs_and_gradients(layer, lambda a, b: layer(a, b, noise_mode="const"), x, w)
    plain, plain_g = outputs_and_gradients(layer, lambda a, b: plain_synthesis_layer(layer, a, b), x, w)
    if clamp is not None:
        assert (plain.abs() == clamp).any() and (plain.abs() < clamp).any()  # the clamp bites and lets through
    assert (ours - plain).abs().max() <= 1e-12 * float(plain.abs().max())
    for a, b in zip(ours_g, plain_g, strict=True):
        assert (a - b).abs().max() <= 1e-11 * max(1.0, float(b.abs().max()))


def test_the_float32_layer_with_gradients_takes_the_activation_form(monkeypatch):
    """A float32 layer under autograd runs the activation form (the comparison above is in float64, where
    both forms are exact): its output is the plain layer's to float32 rounding, and it never builds a per-sample
    modulated weight."""
    torch.manual_seed(0)
    layer = layers.SynthesisLayer(6, 5, 8, 12, conv_clamp=None)
    x, w = torch.randn(2, 6, 12, 12), torch.randn(2, 8)
    plain = plain_synthesis_layer(layer, x, w).detach()

    def no_weights(*args, **kwargs):
        raise AssertionError("the autograd form should not modulate the weights")

    monkeypatch.setattr(layers, "modulated_weight", no_weights)
    ours = layer(x.requires_grad_(True), w, noise_mode="const").detach()
    assert (ours - plain).abs().max() <= 1e-5 * float(plain.abs().max())


@pytest.mark.parametrize("clamp", [None, 0.4])
def test_torgb_gradients_agree_across_memory_layouts(clamp):
    """The 1x1 modulated conv: channels-last batch 1 (a 2-D product), batch 3 (bmm) and NCHW agree in output and
    in the gradients for the input, the latent and the weights."""
    torch.manual_seed(0)
    rgb = layers.ToRGBLayer(7, 3, 8, conv_clamp=clamp).double()
    torch.nn.init.normal_(rgb.bias, std=0.3)
    x = torch.randn(3, 7, 10, 10, dtype=torch.float64)
    w = torch.randn(3, 8, dtype=torch.float64)
    for n in (1, 3):
        runs = [
            outputs_and_gradients(rgb, lambda a, b: rgb(a, b), v[:n], w[:n])
            for v in (x, x.contiguous(memory_format=torch.channels_last))
        ]
        (y0, g0), (y1, g1) = runs
        if clamp is not None:
            assert (y0.abs() == clamp).any()
        assert (y0 - y1).abs().max() <= 1e-12
        for a, b in zip(g0, g1, strict=True):
            assert (a - b).abs().max() <= 1e-11 * max(1.0, float(b.abs().max()))
