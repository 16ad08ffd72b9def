"""Peak memory and time of reading an FFHQ-size EG3D snapshot with renderer.checkpoint.

Writes a training snapshot (G + G_ema of ~31 M parameters each, D of ~29 M; random weights,
FFHQ-512 names and shapes from eg3d-reference.md 4.4, SR 8XDC) with the test helper, then reads
it in a fresh process and prints file size, peak RSS (with the RSS after imports for scale),
their ratio, and the read time.  The snapshot is deleted afterwards unless --keep.

    python bench/bench_checkpoint_memory.py [--dir /tmp] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def generator_shapes(
    channel_base: int = 32768, channel_max: int = 512, z_dim: int = 512, w_dim: int = 512, c_dim: int = 25
) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of a TriPlaneGenerator with SR 8XDC, in state-dict order."""

    def ch(res: int) -> int:
        return min(channel_base // res, channel_max)

    s: dict[str, tuple[int, ...]] = {'dataset_label_std': (c_dim,)}

    def layer(prefix: str, cin: int, cout: int, res: int) -> None:
        s.update(
            {
                f'{prefix}.weight': (cout, cin, 3, 3),
                f'{prefix}.noise_strength': (),
                f'{prefix}.bias': (cout,),
                f'{prefix}.resample_filter': (4, 4),
                f'{prefix}.noise_const': (res, res),
                f'{prefix}.affine.weight': (cin, w_dim),
                f'{prefix}.affine.bias': (cin,),
            }
        )

    def torgb(prefix: str, cin: int, cout: int) -> None:
        s.update(
            {
                f'{prefix}.weight': (cout, cin, 1, 1),
                f'{prefix}.bias': (cout,),
                f'{prefix}.affine.weight': (cin, w_dim),
                f'{prefix}.affine.bias': (cin,),
            }
        )

    for res in (4, 8, 16, 32, 64, 128, 256):
        b = f'backbone.synthesis.b{res}'
        if res == 4:
            s[f'{b}.const'] = (ch(4), 4, 4)
        s[f'{b}.resample_filter'] = (4, 4)
        if res > 4:
            layer(f'{b}.conv0', ch(res // 2), ch(res), res)
        layer(f'{b}.conv1', ch(res), ch(res), res)
        torgb(f'{b}.torgb', ch(res), 96)
    s.update(
        {
            'backbone.mapping.w_avg': (w_dim,),
            'backbone.mapping.embed.weight': (w_dim, c_dim),
            'backbone.mapping.embed.bias': (w_dim,),
            'backbone.mapping.fc0.weight': (w_dim, z_dim + w_dim),
            'backbone.mapping.fc0.bias': (w_dim,),
            'backbone.mapping.fc1.weight': (w_dim, w_dim),
            'backbone.mapping.fc1.bias': (w_dim,),
        }
    )
    for block, cin, cout, res in (('block0', 32, 256, 256), ('block1', 256, 128, 512)):
        b = f'superresolution.{block}'
        s[f'{b}.resample_filter'] = (4, 4)
        layer(f'{b}.conv0', cin, cout, res)
        layer(f'{b}.conv1', cout, cout, res)
        torgb(f'{b}.torgb', cout, 3)
    s.update(
        {
            'decoder.net.0.weight': (64, 32),
            'decoder.net.0.bias': (64,),
            'decoder.net.2.weight': (33, 64),
            'decoder.net.2.bias': (33,),
        }
    )
    return s


def discriminator_shapes(channel_base: int = 32768, channel_max: int = 512) -> dict[str, tuple[int, ...]]:
    """A DualDiscriminator-like set of shapes at 512 (6 input channels), ~29 M parameters."""

    def ch(res: int) -> int:
        return min(channel_base // res, channel_max)

    s: dict[str, tuple[int, ...]] = {}
    for res in (512, 256, 128, 64, 32, 16, 8):
        b, tmp, out = f'b{res}', ch(res), ch(res // 2)
        if res == 512:
            s.update({f'{b}.fromrgb.weight': (tmp, 6, 1, 1), f'{b}.fromrgb.bias': (tmp,)})
        s.update(
            {
                f'{b}.conv0.weight': (tmp, tmp, 3, 3),
                f'{b}.conv0.bias': (tmp,),
                f'{b}.conv1.weight': (out, tmp, 3, 3),
                f'{b}.conv1.bias': (out,),
                f'{b}.skip.weight': (out, tmp, 1, 1),
                f'{b}.resample_filter': (4, 4),
            }
        )
    s.update(
        {
            'mapping.embed.weight': (512, 25),
            'mapping.embed.bias': (512,),
            'epilogue.conv.weight': (512, 512, 3, 3),
            'epilogue.conv.bias': (512,),
            'epilogue.fc.weight': (512, 512 * 16),
            'epilogue.fc.bias': (512,),
            'epilogue.out.weight': (512, 512),
            'epilogue.out.bias': (512,),
        }
    )
    return s


def write_snapshot(path: Path) -> tuple[int, int]:
    import torch

    sys.path.insert(0, str(REPO / 'tests'))
    sys.path.insert(0, str(REPO))
    from eg3d_pickle import write_eg3d_pickle

    from renderer.checkpoint.spec import ModelSpec

    g = torch.Generator().manual_seed(0)
    G = {k: torch.randn(v, generator=g) for k, v in generator_shapes().items()}
    D = {k: torch.randn(v, generator=g) for k, v in discriminator_shapes().items()}
    spec = ModelSpec(
        init_kwargs={
            'z_dim': 512,
            'w_dim': 512,
            'c_dim': 25,
            'img_resolution': 512,
            'img_channels': 3,
            'channel_base': 32768,
            'channel_max': 512,
            'mapping_kwargs': {'num_layers': 2},
        },
        rendering_kwargs={
            'superresolution_module': 'training.superresolution.SuperresolutionHybrid8XDC',
            'depth_resolution': 48,
            'depth_resolution_importance': 48,
            'ray_start': 2.25,
            'ray_end': 3.3,
            'box_warp': 1,
        },
        neural_rendering_resolution=128,
    )
    write_eg3d_pickle(path, spec, G, D_state_dict=D, module_src='# module source\n' * 2000)
    return sum(t.numel() for t in G.values()), sum(t.numel() for t in D.values())


def peak_rss() -> int:
    """This process's peak RSS in bytes.

    VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork + exec, so a child would start
    with its parent's high-water mark."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def read_and_report(path: str) -> None:
    """Runs in the fresh process: import, read, print JSON."""
    sys.path.insert(0, str(REPO))
    from renderer.checkpoint import read_checkpoint

    after_imports = peak_rss()
    start = time.perf_counter()
    ckpt = read_checkpoint(path)
    seconds = time.perf_counter() - start
    peak = peak_rss()
    print(
        json.dumps(
            {
                'seconds': seconds,
                'peak_rss': peak,
                'rss_after_imports': after_imports,
                'tensors': len(ckpt.state_dict),
                'params': sum(t.numel() for t in ckpt.state_dict.values()),
            }
        )
    )


def check_against_golden() -> str:
    golden = REPO / 'tests' / 'data' / 'golden_small.npz'
    if not golden.exists():
        return 'golden file not found, name/shape check skipped'
    import numpy as np

    with np.load(golden) as d:
        want = {k: d[k].shape for k in d.files if not k.startswith('case_') and k != 'config_json'}
    got = generator_shapes(channel_base=2048, channel_max=32)
    return 'names/shapes match the golden small network' if got == want else 'MISMATCH with golden'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dir', default=tempfile.gettempdir())
    parser.add_argument('--keep', action='store_true')
    parser.add_argument('--read', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        read_and_report(args.read)
        return
    sys.path.insert(0, str(REPO))
    from renderer.engine.cpu import cpu_description

    print(cpu_description(), flush=True)  # first: only ratios compare across CPUs
    print(f'shape generator: {check_against_golden()}')
    path = Path(args.dir) / 'bench-eg3d-ffhq-size-snapshot.pkl'
    try:
        start = time.perf_counter()
        g_params, d_params = write_snapshot(path)
        print(
            f'wrote {path} in {time.perf_counter() - start:.1f} s '
            f'(G/G_ema {g_params / 1e6:.1f} M params each, D {d_params / 1e6:.1f} M)'
        )
        out = subprocess.run(
            [sys.executable, __file__, '--read', str(path)], check=True, capture_output=True, text=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        size = path.stat().st_size
        mb = 2**20
        print(f'file size            {size / mb:8.1f} MiB')
        print(f'RSS after imports    {r["rss_after_imports"] / mb:8.1f} MiB  (python + torch + numpy)')
        print(f'peak RSS             {r["peak_rss"] / mb:8.1f} MiB')
        print(f'peak RSS / file size {r["peak_rss"] / size:8.2f}')
        print(f'(peak - imports) / file size {(r["peak_rss"] - r["rss_after_imports"]) / size:.2f}')
        print(f'read time            {r["seconds"]:8.2f} s  ({r["tensors"]} tensors, {r["params"] / 1e6:.1f} M params)')
    finally:
        if not args.keep and path.exists():
            os.unlink(path)


if __name__ == '__main__':
    main()
