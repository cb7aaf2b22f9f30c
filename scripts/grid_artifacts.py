"""Is the fill's blocky look a grid? Edge strength across s-pixel cell boundaries over edge strength within cells.

For each de-occluder (a checkpoint folder or bundled name), restores the first `--n` validation faces of the full
preset's split (occluded with `scripts/validation_study.py`'s validation protocol) and prints, for
cells of 2, 4, 8 and 16 pixels, the mean absolute difference between neighbouring pixels that straddle a cell boundary
divided by the same for neighbours inside a cell, over pixels inside the true occlusion mask. A real face scores about
1 at every scale; a decoder that upsamples by nearest neighbour or pixel-shuffles a half-resolution block leaves a
ratio above 1 at its cell size. The clean faces are scored first, as the reference.

Usage: OMP_NUM_THREADS=1 python scripts/grid_artifacts.py [--n 240] DEOCCLUDER [DEOCCLUDER ...]
"""
import argparse

import torch
from deocc.evaluate import restore_faces
from deocc.models import create_model
from deocc.reproduce import REPRODUCE_PRESETS, split_data
from validation_study import validation_protocol   # scripts/, beside this file


def grid_ratio(img: torch.Tensor,   # (B, 3, H, W) in [0, 1]
               mask: torch.Tensor,  # (B, 1, H, W) in {0, 1}: where to look
               s: int) -> float:
    "Mean |neighbour difference| across s-pixel cell boundaries over that within cells, both directions, inside `mask`."
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(1, keepdim=True).transpose(-1, -2)   # (B, 1, W-1, H)
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(1, keepdim=True)                      # (B, 1, H-1, W)
    ratios = []
    for d, m in ((dx, mask[..., :, 1:].transpose(-1, -2)), (dy, mask[..., 1:, :])):
        across = ((torch.arange(d.shape[-2]) % s) == s - 1).float()[:, None]                    # pixel s-1 | pixel s
        ratios.append(((d * m * across).sum(), (m * across).sum(), (d * m * (1 - across)).sum(), (m * (1 - across)).sum()))
    a, na, w, nw = (sum(r[i] for r in ratios) for i in range(4))
    return float((a / na) / (w / nw))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("deoccluders", nargs="+", metavar="DEOCCLUDER", help="checkpoint folders or bundled names")
    p.add_argument("--n", type=int, default=240, help="validation images to restore")
    ns = p.parse_args(argv)
    cfg = REPRODUCE_PRESETS["full"]
    _, val, _ = split_data(cfg)
    vo = validation_protocol(cfg, val)
    x, true = vo.images[:ns.n], vo.meta["mask"][:ns.n].float()
    rows = {"clean faces": vo.meta["clean"][:ns.n].float() / 255}
    for d in ns.deoccluders: rows[d] = restore_faces(create_model(d), x, None)[0]
    print("cell size:", "  ".join(f"{s:>5d}px" for s in (2, 4, 8, 16)), "  (inside the true mask)")
    for name, img in rows.items(): print("  ".join(f"{grid_ratio(img, true, s):7.2f}" for s in (2, 4, 8, 16)), "  ", name)


if __name__ == "__main__":
    main()
