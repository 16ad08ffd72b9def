"""Build tests/data/golden_small.npz from the developer golden file, small enough to ship in git.

The developer file (shared/golden/eg3d_small_reference.npz, 64 MB, described in its own
README) is not part of a clone, so the test suite reads only this derived copy. Run from the
repository root:

    python tests/data/make_golden_small.py [--src ../shared/golden/eg3d_small_reference.npz]

It also writes ``golden_small_amd.npz`` from ``eg3d_small_reference_outputs_amd.npz`` beside the
source: the same reference code and cases run on an AMD EPYC instead of the Intel Xeon that made
the main file (the six ``case_image*`` outputs only, images quantised the same way). Depth on
almost transparent pixels differs between the two CPUs, so the tests check against both.

What is kept, and how (see tests/data/README.md for the full key list):

* all 177 weight tensors and ``config_json``: unchanged (float32, same key names);
* every ``case_*`` array except the three below: unchanged (float32 stays float32);
* ``case_image`` and ``case_image_det`` (5x3x512x512): quantised to int16 as
  ``round(x * case_image_quant_scale)``, with ``case_image_quant_scale`` the largest power
  of two (at most 8192) that keeps every value inside int16 (4096 here: the images reach
  -4.82).
  Dequantise with ``q.astype(np.float32) / case_image_quant_scale``; the error is at
  most ``0.5 / case_image_quant_scale`` (1.2e-4 at 4096), far below the 1e-3 test tolerance.
  The script asserts both the no-clipping and the error bound;
* ``case_strat_jitter`` and ``case_importance_u`` (31 MB): NOT stored. With torch 2.13 they
  are exactly ``torch.manual_seed(case_rng_seed[n]); jitter = torch.rand(1, 16384, 48, 1);
  u = torch.rand(16384, 48)`` (jitter[0, ray, k, 0] is the draw for ray ``ray``, coarse
  sample k). The script checks that bit for bit and stores checksums instead:
  ``case_strat_jitter_sum`` / ``case_importance_u_sum`` (float64 sums, shape (5,)) and
  ``case_strat_jitter_sha256`` / ``case_importance_u_sha256`` (hex digests of the float32
  bytes of each case's (16384, 48) array), so a test can prove its regeneration.

The archive is an ordinary ``.npz`` (read it with ``np.load``, no pickle needed) whose
members are LZMA- rather than deflate-compressed: ``np.savez_compressed`` gives 24.9 MB,
LZMA 21.4 MB. ``np.load`` reads either through Python's zipfile module.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE.parents[1] / ".." / "shared" / "golden" / "eg3d_small_reference.npz"
DEFAULT_DST = HERE / "golden_small.npz"
AMD_SRC_NAME = "eg3d_small_reference_outputs_amd.npz"
AMD_DST = HERE / "golden_small_amd.npz"

QUANTISED = ("case_image", "case_image_det")
REGENERATED = ("case_strat_jitter", "case_importance_u")
N_RAYS, N_SAMPLES = 16384, 48


def regenerate_draws(rng_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The renderer's stochastic draws for one case: (strat_jitter, importance_u), each (16384, 48)."""
    torch.manual_seed(int(rng_seed))
    jitter = torch.rand(1, N_RAYS, N_SAMPLES, 1)
    u = torch.rand(N_RAYS, N_SAMPLES)
    return jitter.reshape(N_RAYS, N_SAMPLES).numpy(), u.numpy()


def sha256_hex(a: np.ndarray) -> str:
    """Hex digest of an array's float32 C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


def quant_scale(*arrays: np.ndarray) -> float:
    """Largest power of two s with max|x| * s inside int16, capped at 8192."""
    peak = max(float(np.abs(a).max()) for a in arrays)
    scale = 8192.0
    while peak * scale > 32767:
        scale /= 2
    return scale


def quantise(x: np.ndarray, scale: float) -> np.ndarray:
    """round(x * scale) as int16, asserting no clipping and error <= 0.5 / scale."""
    scaled = np.round(x.astype(np.float64) * scale)
    assert scaled.min() >= -32768 and scaled.max() <= 32767, "int16 clipping"
    q = scaled.astype(np.int16)
    err = np.abs(q.astype(np.float32) / np.float32(scale) - x).max()
    assert err <= 0.5 / scale + 1e-7, f"quantisation error {err}"
    return q


def build(src: Path) -> dict[str, np.ndarray]:
    """All arrays of the small golden file, checked against the source."""
    d = np.load(src)
    out: dict[str, np.ndarray] = {}
    for key in d.files:
        if key in QUANTISED or key in REGENERATED:
            continue
        a = d[key]
        assert a.dtype != np.float64, key
        out[key] = a
    n_weights = sum(1 for k in out if not k.startswith("case_") and k != "config_json")
    assert n_weights == 177, n_weights

    scale = quant_scale(*(d[k] for k in QUANTISED))
    out["case_image_quant_scale"] = np.float32(scale)
    for key in QUANTISED:
        out[key] = quantise(d[key], scale)

    sums = {k: [] for k in REGENERATED}
    digests = {k: [] for k in REGENERATED}
    for n, seed in enumerate(d["case_rng_seed"]):
        for key, a in zip(REGENERATED, regenerate_draws(seed)):
            assert np.array_equal(a, d[key][n]), f"{key}[{n}] is not reproducible with this torch"
            sums[key].append(a.astype(np.float64).sum())
            digests[key].append(sha256_hex(a))
    for key in REGENERATED:
        out[f"{key}_sum"] = np.array(sums[key], dtype=np.float64)
        out[f"{key}_sha256"] = np.array(digests[key])
    return out


def build_amd(src: Path, scale: float) -> dict[str, np.ndarray]:
    """The AMD reference outputs, images quantised with the main file's scale (same bound)."""
    d = np.load(src)
    assert sorted(d.files) == sorted(f"case_image{k}" for k in ("", "_raw", "_depth", "_det", "_raw_det",
                                                                "_depth_det")), d.files
    out = {k: quantise(d[k], scale) if k in QUANTISED else d[k] for k in d.files}
    out["case_image_quant_scale"] = np.float32(scale)
    return out


def save_npz_lzma(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an np.load-compatible .npz with LZMA-compressed members, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as zf:
        for key, a in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
            info.compress_type = zipfile.ZIP_LZMA
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)
    os.replace(tmp, path)


def main() -> None:
    """Write golden_small.npz and golden_small_amd.npz and report their sizes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--dst", type=Path, default=DEFAULT_DST)
    ap.add_argument("--amd-dst", type=Path, default=AMD_DST)
    args = ap.parse_args()
    src = args.src.resolve()
    arrays = build(src)
    scale = float(arrays["case_image_quant_scale"])
    for dst, out in ((args.dst, arrays), (args.amd_dst, build_amd(src.with_name(AMD_SRC_NAME), scale))):
        save_npz_lzma(dst, out)
        print(f"wrote {dst} ({dst.stat().st_size / 1e6:.2f} MB, {len(out)} keys, case_image_quant_scale {scale:g})")


if __name__ == "__main__":
    main()
