"""The validation study behind three settings of `deocc reproduce` (docs in nbs/07_evaluate.ipynb, "Validation study").

Scores, on the *validation* identities of the full reproduce's split (never the test identities), seed 0:
  - B from scratch; C trained from scratch (λ_expr = 1) vs fine-tuned from the shared pretrained B (λ_expr = 1 and 0.3);
  - judge candidates: test_convnext for 15 and 40 epochs, resnet10t for 15 epochs.

Usage: OMP_NUM_THREADS=1 python scripts/validation_study.py RESULTS_DIR [VARIANT ...]
RESULTS_DIR is a `deocc reproduce` folder whose seed0/fer and seed0/pretrain stages are done (about 50 min on 1 CPU thread
for all variants). Prints one JSON line per variant.
"""
import json, sys, time
from dataclasses import replace
from pathlib import Path

import torch
from deocc.evaluate import REPRODUCE_PRESETS, _split, deocc_train_config, judge_train_config
from deocc.models import load_model
from deocc.train import train_deoccluder, train_fer

VARIANTS = {   # name: (kind, settings)
    "B_scratch": ("deocc", dict(init=False, lambda_expr=0.0)),   # = the reproduce's `pretrain` stage of seed 0
    "C_scratch_l1": ("deocc", dict(init=False, lambda_expr=1.0)),
    "C_from_B_l1": ("deocc", dict(init=True, lambda_expr=1.0)),
    "C_from_B_l0.3": ("deocc", dict(init=True, lambda_expr=0.3)),
    "judge_test_convnext_15": ("judge", dict(backbone="test_convnext", epochs=15)),
    "judge_test_convnext_40": ("judge", dict(backbone="test_convnext", epochs=40)),
    "judge_resnet10t_15": ("judge", dict(backbone="resnet10t", epochs=15)),
    # second round, after the full run's seed-2 judge stopped at 54 % on validation faces: a longer schedule, per judge seed
    **{f"judge_resnet10t_25_seed{s}": ("judge", dict(backbone="resnet10t", epochs=25, seed=s)) for s in (0, 1, 2)},
}


def main(results: str, *names: str):
    torch.set_num_threads(1)
    results, cfg = Path(results), REPRODUCE_PRESETS["full"]
    train, val, _ = _split(cfg)                       # the test identities are split off and never used here
    fer = load_model(results / "seed0" / "fer" / "final")
    for name in names or VARIANTS:
        kind, s = VARIANTS[name]; t0 = time.time()
        if kind == "judge":   # the reproduce's judge recipe with this backbone and budget
            jc = judge_train_config(replace(cfg, judge_backbone=s["backbone"], judge_epochs=s["epochs"]), s.get("seed", 0))
            _, h = train_fer(train, val, jc, progress=False)
            res = dict(val_acc=[round(r["val_acc"], 3) for r in h])
        else:                 # the reproduce's C recipe, from scratch or from the seed-0 pretrained de-occluder
            init = str(results / "seed0" / "pretrain" / "final") if s["init"] else None
            tc = deocc_train_config(cfg, "full", 0, cfg.deocc_epochs, init, lambda_expr=s["lambda_expr"])
            _, h = train_deoccluder(train, fer, tc, val, progress=False)
            res = {k: [round(r[f"val_{k}"], 4) for r in h] for k in ("acc_occluded", "acc_restored", "psnr_mask", "pixel")}
        print(json.dumps(dict(variant=name, seconds=round(time.time() - t0), **res)), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2 or any(n not in VARIANTS for n in sys.argv[2:]):
        sys.exit(__doc__ + "\nvariants: " + ", ".join(VARIANTS))
    main(*sys.argv[1:])
