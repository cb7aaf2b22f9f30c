"""Evaluation as a reviewer relies on it: the metrics (paired bootstrap, mask IoU, PSNR reductions), the Telea anchor, `deocc
evaluate` on a folder made by `deocc synth` + `deocc occlude`, and `deocc reproduce` as a user runs it (--data, --jobs,
--set teacher=...), with bad settings refused in one line."""
import json, math, os, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from deocc.core import bundled_names, make_generator

KEYS = {"n", "accuracy_input", "accuracy_restored", "accuracy_clean", "psnr_input", "psnr_restored",
        "judge_accuracy_input", "judge_accuracy_restored"}

# `deocc reproduce --quick` shrunk to seconds with the same --set flags a user has
TINY = ["n_identities=6", "extra_identities=2", "frames=1", "size=32", "fer_steps=3", "judge_steps=3", "dstar_steps=3", "deocc_pretrain_steps=2",
        "deocc_steps=2", "test_fraction=0.34", "val_fraction=0.25", "batch_size=8", "bootstrap=200"]
STAGES = ("shared/judge", "shared/dstar", "seed0/fer", "seed0/fer_occ", "seed0/pretrain", "seed0/no_expr", "seed0/full")


def _sets(*settings): return [a for s in (*TINY, *settings) for a in ("--set", s)]


@pytest.fixture(scope="module")
def occluded(tmp_path_factory):
    from deocc.cli import main
    root = tmp_path_factory.mktemp("ev")
    assert main(["synth", "--out", str(root / "clean"), "--n-identities", "2", "--frames", "1", "--size", "48", "--seed", "3"]) == 0
    assert main(["occlude", "--src", str(root / "clean"), "--out", str(root / "occ"), "--variants", "2", "--coverage", "0.2,0.3", "--seed", "1"]) == 0
    return root


# ---------------------------------------------------------------------------------------------------------------------
# the paired bootstrap

def _simulated(n_faces: int, seed: int, diff: float = 0.10, variants: int = 4):
    "Right/wrong of methods a and b on `n_faces` × `variants` images; a face's difficulty is shared by its variants."
    g = make_generator(seed)
    easy = torch.rand(n_faces, 1, generator=g).expand(n_faces, variants).flatten()
    a = (torch.rand(n_faces * variants, generator=g) < 0.3 + 0.4 * easy + diff).float()
    b = (torch.rand(n_faces * variants, generator=g) < 0.3 + 0.4 * easy).float()
    return a, b, torch.arange(n_faces).repeat_interleave(variants)


def test_bootstrap_interval_covers_the_true_difference():
    from deocc.metrics import paired_bootstrap
    hits = [(lambda r: r["lo"] <= 0.10 <= r["hi"])(paired_bootstrap(*_simulated(80, s), n=500, seed=s)) for s in range(60)]
    assert 0.85 <= sum(hits) / len(hits) <= 1.0, sum(hits)          # a 95 % interval: about 57 of 60 data sets


def test_bootstrap_narrows_with_more_faces_and_is_seeded():
    from deocc.metrics import paired_bootstrap
    width = lambda r: r["hi"] - r["lo"]
    small, large = paired_bootstrap(*_simulated(100, 1)), paired_bootstrap(*_simulated(1600, 1))
    assert 2.5 < width(small) / width(large) < 6                    # 16× the faces: about 4× narrower
    assert small["lo"] < small["mean"] < small["hi"] and small["clusters"] == 100 and small["n"] == 2000
    assert paired_bootstrap(*_simulated(100, 1)) == small           # same inputs and seed: the same interval
    assert paired_bootstrap(*_simulated(100, 1), seed=1) != small   # another resampling seed: another interval
    same = paired_bootstrap(torch.ones(8), torch.ones(8), torch.arange(8))
    assert (same["mean"], same["lo"], same["hi"]) == (0.0, 0.0, 0.0)


def test_bootstrap_resamples_faces_not_images():
    "With per-face difficulty, resampling images as if independent would understate the uncertainty."
    from deocc.metrics import paired_bootstrap
    g = make_generator(3)
    face = torch.randn(200, generator=g).repeat_interleave(4)                     # a face's effect, shared by its 4 variants
    a = (face + 0.3 * torch.randn(800, generator=g) > 0).float(); b = torch.zeros(800)
    by_face = paired_bootstrap(a, b, torch.arange(200).repeat_interleave(4))
    by_image = paired_bootstrap(a, b, torch.arange(800))
    assert by_face["hi"] - by_face["lo"] > 1.4 * (by_image["hi"] - by_image["lo"])


def test_bootstrap_refuses_mismatched_inputs():
    from deocc.core import DeoccError
    from deocc.metrics import paired_bootstrap
    with pytest.raises(DeoccError, match=r"three \(N,\) vectors"): paired_bootstrap(torch.ones(3), torch.ones(4), torch.arange(3))


# ---------------------------------------------------------------------------------------------------------------------
# mask IoU and the Telea row

def test_mask_iou_on_known_masks():
    from deocc.metrics import mask_iou
    true = torch.zeros(4, 1, 10, 10); true[:, :, :5] = 1                          # top half: 50 pixels
    pred = torch.zeros(4, 1, 10, 10)
    pred[0, :, :5] = 1                                                            # exact
    pred[1, :, :, :5] = 1                                                         # left half: 25 shared of 75
    pred[2, :, 5:] = 1                                                            # the other half: disjoint
    iou = mask_iou(pred, true)
    assert torch.allclose(iou, torch.tensor([1.0, 25 / 75, 0.0, 0.0]))
    assert mask_iou(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)).item() == 1.0   # nothing to find, nothing found
    assert mask_iou(pred, true, pooled=True) == pytest.approx((50 + 25) / (50 + 75 + 100 + 50))   # one IoU over the set


def test_psnr_reductions_per_image_and_pooled():
    "Per image: each image's masked MSE; pooled (training validation): the set's masked MSE, one number."
    from deocc.metrics import psnr
    clean = torch.zeros(2, 3, 8, 8); mask = torch.zeros(2, 1, 8, 8); mask[:, :, :4] = 1     # 96 masked values per image
    restored = clean.clone(); restored[0, :, :4] = 0.1; restored[1, :, :4] = 0.01
    per = psnr(restored, clean, mask)
    assert torch.allclose(per, torch.tensor([20.0, 40.0]), atol=1e-3)
    assert psnr(restored, clean, mask, pooled=True) == pytest.approx(-10 * math.log10((0.1 ** 2 + 0.01 ** 2) / 2), abs=1e-3)
    assert psnr(restored, clean, 1 - mask, pooled=True) == 100.0                    # untouched pixels: the cap


def test_telea_row_beats_the_occluded_input_inside_the_mask():
    from deocc.evaluate import evaluate_methods
    from deocc.models import create_fer
    from deocc.occlude import occlusion_protocol
    from deocc.synth import synthface
    torch.manual_seed(0)
    test = occlusion_protocol(synthface(2, 1, 64, seed=7), variants=2, levels=(0.15, 0.3), seed=2)   # 12 faces → 24 images
    res = evaluate_methods(test, create_fer("tiny").eval())
    rest = res["restoration"]
    assert set(rest) == {"A", "telea_true"} and set(res["fer"]["accuracy"]) == {"clean", "A", "telea_true"}
    assert rest["telea_true"]["psnr_in"] > rest["A"]["psnr_in"] + 3                 # Telea fills the hole better than the occluder
    assert rest["telea_true"]["psnr_out"] == pytest.approx(100.0, abs=1e-3)          # ... and leaves every other pixel alone
    assert len(res["fer"]["correct"]["telea_true"]) == len(test) == len(res["clusters"])


# ---------------------------------------------------------------------------------------------------------------------
# `deocc evaluate`

def test_evaluate_refuses_bad_settings_in_one_line(run_deocc, occluded, tiny_ckpts):
    "--size and --set are checked before any model is loaded: one line, exit 2."
    base = ["evaluate", "--data", occluded / "occ", "--deoccluder", tiny_ckpts / "full", "--fer", tiny_ckpts / "fer"]
    for args, needle in ((["--size", "-1"], "size = -1: out of range, use 16..512"), (["--set", "batch_size=0"], "batch_size = 0: out of range"),
                         (["--set", "size=big"], "size takes int"), (["--set", "colour=1"], "unknown evaluate setting 'colour'")):
        r = run_deocc(*base, *args, check=2)
        assert r.stderr.strip().count("\n") == 0 and needle in r.stderr and "internal error" not in r.stderr, r.stderr
    r = run_deocc(*base, "--set", "size=48", "--set", "batch_size=7", "--json", check=0)
    assert json.loads(r.stdout)["n"] == 24 and json.loads(r.stdout)["notes"] == []     # --set size=48: the files' own size


def test_evaluate_json_on_synth_plus_occlude(run_deocc, occluded, tiny_ckpts):
    r = run_deocc("evaluate", "--data", occluded / "occ", "--clean", occluded / "occ_clean", "--deoccluder", tiny_ckpts / "full",
                  "--fer", tiny_ckpts / "fer", "--judge", "fer-minixception", "--json", check=0)
    res = json.loads(r.stdout)
    assert KEYS <= set(res), KEYS - set(res)
    assert res["n"] == 2 * 6 * 2
    for k in KEYS - {"n", "psnr_input", "psnr_restored"}: assert 0 <= res[k] <= 1, k
    assert res["psnr_input"] > 5 and res["psnr_restored"] > 5
    assert any("resized" in n for n in res["notes"])                       # 48 px faces → the 96 px model input


@pytest.mark.skipif(not {"synthface-full", "synthface-fer", "synthface-judge"} <= set(bundled_names()), reason="no bundled checkpoints in this checkout")
def test_evaluate_out_of_the_box_with_bundled_checkpoints(run_deocc, occluded):
    r = run_deocc("evaluate", "--data", occluded / "occ", "--clean", occluded / "occ_clean", "--judge", "synthface-judge", "--json", check=0)
    res = json.loads(r.stdout)
    assert KEYS <= set(res) and res["n"] == 24
    assert res["accuracy_clean"] > 1 / 6          # the bundled FER is trained: better than chance on clean SynthFace


# ---------------------------------------------------------------------------------------------------------------------
# `deocc reproduce`

def test_reproduce_takes_any_dataset_spec(run_deocc, tmp_path):
    "`deocc reproduce --data` on a folder written by `deocc synth` (identities from its meta.csv), shrunk with --set."
    src = tmp_path / "faces"
    run_deocc("synth", "--out", src, "--n-identities", 6, "--frames", 1, "--size", 32, "--seed", 5, check=0)
    run_deocc("reproduce", "--quick", "--data", f"imagefolder:{src}", *_sets(), "--jobs", 1, "--out", tmp_path / "r", "--no-progress", check=0)
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["config"]["data"] == f"imagefolder:{src}" and res["config"]["judge_steps"] == 3
    assert res["meta"]["faces"].endswith("test 12 (2 held-out identities)")   # 2 of the folder's 6 people
    assert {"clean", "A", "B", "C", "C_true", "telea_true", "D", "Dstar"} <= set(res["aggregate"]["judge"]["accuracy"])


def _weights(out):
    return {s: (out / s / "final" / "model.safetensors").read_bytes() for s in STAGES}


def test_reproduce_two_jobs_equal_one(run_deocc, tmp_path):
    "Stages in two worker processes give bit-identical models and the same numbers as one process."
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        r = run_deocc("reproduce", "--quick", *_sets(), "--jobs", jobs, "--out", out, "--no-progress", check=0)
        runs[jobs] = (json.loads((out / "results.json").read_text()), _weights(out), r.stdout)
    (one, w1, _), (two, w2, log2) = runs[1], runs[2]
    assert w1 == w2                                                              # every trained model, byte for byte
    assert one["runs"] == two["runs"] and one["aggregate"] == two["aggregate"]   # every number, bootstrap intervals included
    assert one["meta"]["processes"].startswith("1 ") and two["meta"]["processes"].startswith("2 ")
    assert "seed0/full: started" in log2                                         # the stages really went to workers


def test_reproduce_with_a_ported_teacher(run_deocc, tmp_path):
    "`--set teacher=fer-minixception`: the ported FER is C's L_expr teacher and the training-FER column; no FER is trained."
    out = tmp_path / "r"
    run_deocc("reproduce", "--quick", *_sets("teacher=fer-minixception"), "--jobs", 1, "--out", out, "--no-progress", check=0)
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["teacher"] == "fer-minixception" and res["classifiers"]["fer"].startswith("fer-minixception")
    assert not (out / "seed0" / "fer").exists()
    assert json.loads((out / "seed0" / "full" / "train_config.json").read_text())["teacher"] == "fer-minixception"
    assert "training FER: fer-minixception" in (out / "results.md").read_text()


@pytest.mark.parametrize("settings, needle", [(["teacher=fer-minixeption"], "choose deocc-fer"), (["judge=resnet10t"], "choose deocc-judge"),
                                              (["teacher=faceapi-expression", "judge=faceapi-expression"], "independent"),
                                              (["fer_steps=-1"], "fer_steps = -1: out of range, use >= 1"),
                                              (["deocc_pretrain_steps=-5"], "deocc_pretrain_steps = -5: out of range, use >= 0"),
                                              (["dstar_p=2"], "dstar_p = 2.0: out of range, use 0.0..1.0"),
                                              (["fer_step=3"], "unknown reproduce setting 'fer_step'")])
def test_reproduce_refuses_bad_teacher_or_judge_in_one_line(capsys, tmp_path, settings, needle):
    from deocc.cli import main
    assert main(["reproduce", "--quick", *[a for s in settings for a in ("--set", s)], "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err and settings[0].split("=")[0] in err, err
    assert not (tmp_path / "r").exists()                                         # refused before any work


def _alive(pid: int) -> bool:
    "Whether process `pid` still runs (a zombie waiting to be reaped counts as gone)."
    try: return not open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"
    except OSError: return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_killed_reproduce_leaves_no_worker_behind(tmp_path):
    "SIGKILL the main process of `deocc reproduce --jobs 2`: its workers notice and end, so nothing keeps writing into --out."
    exe = Path(sys.executable).with_name("deocc")
    p = subprocess.Popen([str(exe), "reproduce", "--quick", *_sets("fer_steps=400"), "--jobs", "2", "--out", str(tmp_path / "r"), "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in p.stdout:
            if ": started" in line: break
        workers = [int(x) for x in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
        assert workers and all(_alive(w) for w in workers)
    finally:
        p.kill(); p.wait(60)
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)) and time.monotonic() < deadline: time.sleep(0.2)
    assert not any(map(_alive, workers)), [w for w in workers if _alive(w)]


def test_grid_artifacts_ratio(monkeypatch):
    "scripts/grid_artifacts.py: a half-resolution image upsampled by nearest neighbour scores high at 2 px, a full-resolution one about 1."
    import importlib.util
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))   # as when run: it imports validation_study beside it
    spec = importlib.util.spec_from_file_location("grid_artifacts", Path(__file__).parents[1] / "scripts" / "grid_artifacts.py")
    ga = importlib.util.module_from_spec(spec); spec.loader.exec_module(ga)
    g = torch.Generator().manual_seed(0)
    full = torch.rand(4, 3, 32, 32, generator=g)
    blocky = torch.nn.functional.interpolate(torch.rand(4, 3, 16, 16, generator=g), scale_factor=2, mode="nearest")
    mask = torch.zeros(4, 1, 32, 32); mask[..., 4:28, 4:28] = 1
    assert abs(ga.grid_ratio(full, mask, 2) - 1) < 0.1
    assert ga.grid_ratio(blocky, mask, 2) > 10          # within a 2×2 cell neighbours are equal
    assert 2.5 < ga.grid_ratio(blocky, mask, 4) < 3.5   # inside a 4-px cell one neighbour pair in three crosses a 2-px boundary
