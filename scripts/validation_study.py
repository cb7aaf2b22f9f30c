"""The validation study behind settings of `deocc reproduce` (docs in nbs/07b_reproduce.ipynb, "Validation study").

Every variant trains with the reproduce's own recipes (`judge_train_config`, `dstar_train_config`, `deocc_train_config`) on
the split of the `full` preset and is scored on its *validation* identities only (the test identities are split off
and never used). Prints one JSON line per variant, then, for the judge candidates, the choice the rule below makes.

  - judge_<backbone>: judge candidates of other families than the FER's EfficientNet, at the judge's budget. Rule: the
    smallest checkpoint within `--tolerance` points of the best final validation accuracy (the bundle must stay small).
  - dstar_p<p>: D* with the judge's backbone and budget `dstar_steps`, with a share p of occluded training faces;
    scored by accuracy on occluded validation faces.
  - C_lambda<l>: C fine-tuned from the seed-0 pretrained de-occluder with lambda_expr = l; needs --results, a
    `deocc reproduce` folder whose seed0/pretrain (and, for the in-package teacher, seed0/fer) stages are done.

Usage: OMP_NUM_THREADS=1 python scripts/validation_study.py [--results DIR] [--set KEY=VALUE ...] [VARIANT ...]
(--set changes the ReproduceConfig as in `deocc reproduce`, e.g. --set judge_steps=300 for a cheaper screen.)
"""
import argparse, json, sys, time
from dataclasses import replace
from pathlib import Path

import torch
from deocc.core import DeoccError, add_options
from deocc.models import n_params
from deocc.reproduce import (REPRODUCE_PRESETS, Run, check_config, deocc_train_config, dstar_train_config, judge_train_config,
                             split_data)
from deocc.train import apply_settings, train_deoccluder, train_fer

JUDGES = ("resnet10t", "regnetx_002", "dla46_c", "test_resnet")
VARIANTS = {   # name: (kind, settings)
    **{f"judge_{b}": ("judge", dict(backbone=b)) for b in JUDGES},
    **{f"dstar_p{p}": ("dstar", dict(p=p)) for p in (0.75, 0.9, 1.0)},
    **{f"C_lambda{l}": ("deocc", dict(lambda_expr=l)) for l in (0.1, 0.3, 1.0)},
}


def judge_variant(cfg, train, val, backbone: str) -> dict:
    "The reproduce's judge recipe with `backbone`: final and best validation accuracy, parameters, checkpoint MB."
    model, h = train_fer(train, val, judge_train_config(cfg, len(train), backbone=backbone), progress=False)
    return dict(backbone=backbone, val_acc=[round(r["val_acc"], 3) for r in h], final=round(h[-1]["val_acc"], 4),
                params=n_params(model), mb=round(n_params(model) * 4 / 1e6, 1))


def dstar_variant(cfg, train, val, p: float) -> dict:
    "The reproduce's D* recipe with occlusion share `p`: accuracy on occluded validation faces per epoch."
    fc = dstar_train_config(cfg, len(train))
    _, h = train_fer(train, val, replace(fc, occlusion=dict(fc.occlusion, p=p)), progress=False)
    return dict(val_acc_occluded=[round(r["val_acc_occluded"], 3) for r in h], final=round(h[-1]["val_acc_occluded"], 4))


def deocc_variant(cfg, train, val, results: Path, lambda_expr: float) -> dict:
    "The reproduce's C recipe from the seed-0 pretrained de-occluder with `lambda_expr`: validation logs per epoch."
    if results is None or not (results / "seed0" / "pretrain" / "done.json").exists():
        sys.exit("C_lambda variants need --results: a deocc reproduce folder whose seed0/pretrain stage is done")
    tc = deocc_train_config(cfg, "full", 0, cfg.deocc_steps, len(train), str(results / "seed0" / "pretrain" / "final"), lambda_expr=lambda_expr)
    teacher = Run(cfg, results, "cpu").teacher(0)
    _, h = train_deoccluder(train, teacher, tc, val, progress=False)
    keys = [k[4:] for k in h[-1] if k.startswith("val_")]
    return {k: [round(r[f"val_{k}"], 4) for r in h] for k in keys}


def choose_judge(rows: list[dict], tolerance: float) -> dict:
    "The smallest judge within `tolerance` points of the best final validation accuracy."
    best = max(r["final"] for r in rows)
    ok = [r for r in rows if r["final"] >= best - tolerance / 100]
    return min(ok, key=lambda r: r["params"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="*", metavar="VARIANT", help="any of: " + ", ".join(VARIANTS) + " (default: all)")
    p.add_argument("--results", type=Path, default=None, help="deocc reproduce folder (C_lambda variants)")
    add_options(p, "set")                             # ReproduceConfig settings, as in deocc reproduce
    p.add_argument("--tolerance", type=float, default=1.0, help="judge rule: points below the best that still count")
    ns = p.parse_args(argv)
    unknown = [v for v in ns.variants if v not in VARIANTS]
    if unknown: p.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(1)
    try: cfg = check_config(apply_settings(REPRODUCE_PRESETS["full"], ns.set, "reproduce"))
    except DeoccError as e: p.error(str(e))
    train, val, _ = split_data(cfg)                       # the test identities are split off and never used here
    judges = []
    for name in ns.variants or list(VARIANTS):
        kind, s = VARIANTS[name]; t0 = time.time()
        if kind == "judge": res = judge_variant(cfg, train, val, s["backbone"]); judges.append(res)
        elif kind == "dstar": res = dstar_variant(cfg, train, val, s["p"])
        else: res = deocc_variant(cfg, train, val, ns.results, s["lambda_expr"])
        print(json.dumps(dict(variant=name, seconds=round(time.time() - t0), **res)), flush=True)
    if len(judges) > 1: print(json.dumps(dict(judge_choice=choose_judge(judges, ns.tolerance)["backbone"], tolerance=ns.tolerance)), flush=True)


if __name__ == "__main__":
    main()
