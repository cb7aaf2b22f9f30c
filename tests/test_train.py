"Integration tests of `deocc train-fer` and `deocc train`: the commands a user runs, bad input, kill + resume, DDP."
import csv, json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA = ["--data", "synth:n_identities=10,frames=1"]                # 60 faces: 8 training identities (42 train, 6 validation faces)
TINY = [*DATA, "--size", "48", "--batch-size", "16", "--no-progress"]   # small faces and batches keep every run to seconds


def _steps(out: Path) -> list[dict]:
    with open(out / "steps.csv", newline="") as f: return list(csv.DictReader(f))


def _trainer_state(out: Path) -> dict:
    return json.loads((out / "last" / "trainer.json").read_text())


@pytest.fixture(scope="module")
def fer_dir(tmp_path_factory):
    "A tiny FER checkpoint trained by the CLI for 3 steps (shared by the tests below)."
    out = tmp_path_factory.mktemp("runs") / "fer"
    r = subprocess.run([str(BIN / "deocc"), "train-fer", "--out", str(out), "--max-steps", "3", *TINY],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "train-fer: 3 steps" in r.stdout and "acc=" in r.stdout
    return out


def test_train_fer_writes_run_folder(fer_dir):
    names = sorted(p.name for p in fer_dir.iterdir())
    assert names == ["best", "history.csv", "history.json", "last", "steps.csv", "train_config.json"]
    cfg = json.loads((fer_dir / "best" / "config.json").read_text())
    assert cfg["type"] == "fer" and cfg["config"]["classes"] == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    assert [int(s["step"]) for s in _steps(fer_dir)] == [1, 2, 3]
    hist = json.loads((fer_dir / "history.json").read_text())
    assert 0.0 <= hist[-1]["val_acc"] <= 1.0 and hist[-1]["step"] == 3


def test_train_deoccluder_cli(run_deocc, fer_dir, tmp_path):
    out = tmp_path / "full"
    r = run_deocc("train", "--preset", "full", "--fer", fer_dir, "--out", out, "--max-steps", "2", *TINY, check=0)
    assert "train --preset full: 2 steps" in r.stdout and "acc_restored=" in r.stdout and "mask_iou=" in r.stdout
    meta = json.loads((out / "best" / "config.json").read_text())
    assert meta["type"] == "deoccluder" and meta["config"]["mode"] == "blind" and meta["format"] == 3
    tc = json.loads((out / "best" / "train_config.json").read_text())
    from deocc.losses import LOSS_PRESETS
    assert tc["loss"]["lambda_expr"] == LOSS_PRESETS["full"].lambda_expr > 0 and tc["preset"] == "full"
    assert tc["occlusion"] == "continuous"
    steps = _steps(out)
    assert len(steps) == 2 and {"expr", "pixel", "adv", "mask", "d", "total"} <= set(steps[0])
    # model B: no L_expr term at all, guided mode (no mask net, so no L_mask either)
    out_b = tmp_path / "b"
    run_deocc("train", "--preset", "no_expr", "--fer", fer_dir, "--out", out_b, "--max-steps", "1", "--mode", "guided", *TINY, check=0)
    tc = json.loads((out_b / "last" / "train_config.json").read_text())
    assert tc["loss"]["lambda_expr"] == 0.0 and tc["model"]["mode"] == "guided"
    assert _steps(out_b)[0].get("expr", "") == "" and _steps(out_b)[0].get("mask", "") == ""


def test_train_settings_from_the_command_line(run_deocc, fer_dir, tmp_path):
    "--lambda-expr and --set KEY=VALUE reach the saved training config; a bad key fails before any work."
    out = tmp_path / "set"
    run_deocc("train", "--fer", fer_dir, "--out", out, "--max-steps", "1", "--lambda-expr", "0.7", "--set", "train_dilate=3",
              "--set", "expr_loss=feat", "--set", "model.mask_dilate=2", "--set", "best_metric=psnr_mask", *TINY, check=0)
    tc = json.loads((out / "last" / "train_config.json").read_text())
    assert (tc["loss"]["lambda_expr"], tc["train_dilate"], tc["loss"]["expr_loss"], tc["model"]["mask_dilate"], tc["best_metric"]) == \
           (0.7, 3, "feat", 2, "psnr_mask")
    r = run_deocc("train", "--fer", fer_dir, "--out", tmp_path / "bad", "--set", "lambda_exprr=1", *TINY, check=2)
    assert "unknown training setting 'lambda_exprr'" in r.stderr and "Traceback" not in r.stderr
    r = run_deocc("train", "--fer", fer_dir, "--out", tmp_path / "bad", "--set", "lambda_expr", *TINY, check=2)
    assert "expected KEY=VALUE" in r.stderr
    r = run_deocc("train", "--fer", fer_dir, "--out", tmp_path / "bad", "--set", "lambda_expr=-0.5", *TINY, check=2)
    assert "lambda_expr = -0.5: out of range, use >= 0.0" in r.stderr and r.stderr.strip().count("\n") == 0
    assert not (tmp_path / "bad").exists()


def test_set_lambda_expr_and_fer_settings(run_deocc, fer_dir, tmp_path):
    "`deocc train --set lambda_expr=0.5` reaches the loss; `deocc train-fer --set` reaches the FER's training and model configs."
    run_deocc("train", "--fer", fer_dir, "--out", tmp_path / "c", "--max-steps", "1", "--set", "lambda_expr=0.5", *TINY, check=0)
    tc = json.loads((tmp_path / "c" / "last" / "train_config.json").read_text())
    assert tc["loss"]["lambda_expr"] == 0.5 and tc["preset"] == "full"
    run_deocc("train-fer", "--out", tmp_path / "f", "--max-steps", "1", "--set", "label_smoothing=0.1", "--set", "drop_rate=0.2", *TINY, check=0)
    tc = json.loads((tmp_path / "f" / "last" / "train_config.json").read_text())
    assert (tc["label_smoothing"], tc["model"]["drop_rate"], tc["max_steps"]) == (0.1, 0.2, 1)


@pytest.mark.parametrize("args, needle", [(["train-fer", "--epochs", "-1"], "epochs = -1: out of range, use >= 1"),
                                          (["train-fer", "--max-steps", "0"], "max_steps = 0: out of range, use >= 1"),
                                          (["train-fer", "--size", "-1"], "--size -1: out of range, use 16..512"),
                                          (["train-fer", "--set", "warmup=2"], "warmup = 2.0: out of range, use 0.0..1.0"),
                                          (["train", "--fer", "synthface-fer", "--batch-size", "0"], "batch_size = 0: out of range"),
                                          (["train", "--fer", "synthface-fer", "--set", "epochs=1.5"], "epochs takes int")])
def test_bad_numbers_refused_in_one_line_before_work(run_deocc, tmp_path, args, needle):
    r = run_deocc(*args, "--out", tmp_path / "run", "--no-progress", check=2)
    assert needle in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert not (tmp_path / "run" / "last").exists() and "checkpoints in" not in r.stdout


def test_b_and_c_learn_the_same_mask_net(run_deocc, fer_dir, tmp_path):
    "With one seed, the no_expr (B) and full (C) runs end with bit-identical mask nets and different fill nets."
    from deocc.models import read_weights
    for p in ("no_expr", "full"):
        run_deocc("train", "--preset", p, "--fer", fer_dir, "--out", tmp_path / p, "--max-steps", "3", *TINY, check=0)
    b, c = read_weights(tmp_path / "no_expr" / "last"), read_weights(tmp_path / "full" / "last")
    assert b.keys() == c.keys() and any(k.startswith("mask_net.") for k in b)
    assert all(torch.equal(b[k], c[k]) for k in b if k.startswith("mask_net."))
    assert not all(torch.equal(b[k], c[k]) for k in b if k.startswith("fill_net."))


def test_fine_tune_a_checkpoint_on_own_data(run_deocc, tmp_path):
    "A user adapts a de-occluder to their faces: --init takes a checkpoint, --fer a bundled name; training starts from its weights."
    from deocc.models import read_weights
    data = ["--data", "synth:n_identities=4,frames=1", "--batch-size", "4", "--no-progress"]
    start_dir = tmp_path / "start"
    run_deocc("train", "--fer", "synthface-fer", "--out", start_dir, "--max-steps", "1", *data, check=0)
    out = tmp_path / "ft"
    r = run_deocc("train", "--fer", "synthface-fer", "--init", start_dir / "last", "--out", out, "--max-steps", "1", *data, check=0)
    assert "train --preset full: 1 steps" in r.stdout
    tc = json.loads((out / "last" / "train_config.json").read_text())
    assert tc["init"] == str(start_dir / "last")
    start, tuned = read_weights(start_dir / "last"), read_weights(out / "last")
    assert start.keys() == tuned.keys()
    # one Adam step from the given weights: each weight moved, by at most the learning rate (BN running stats aside)
    weights = [k for k in start if start[k].is_floating_point() and "running_" not in k]
    step = max((tuned[k].float() - start[k].float()).abs().max().item() for k in weights)
    assert 0 < step <= tc["lr"] * 1.01, step
    r = run_deocc("train", "--fer", "synthface-fer", "--init", start_dir / "last", "--mode", "guided", "--out", tmp_path / "x",
                  "--max-steps", "1", *data, check=2)
    assert "another architecture" in r.stderr and "Traceback" not in r.stderr


def test_fine_tune_the_bundled_model(run_deocc, tmp_path):
    "The bundled C starts a fine-tune, and so does a copy whose config.json predates a newer DeoccConfig field (its default)."
    import shutil
    from deocc.models import read_weights
    bundled = ROOT / "deocc" / "weights" / "synthface-full"
    legacy = tmp_path / "legacy"; shutil.copytree(bundled, legacy)
    meta = json.loads((legacy / "config.json").read_text()); meta["config"].pop("mirror", None)   # saved before the field existed
    (legacy / "config.json").write_text(json.dumps(meta))
    for init in ("synthface-full", legacy):
        out = tmp_path / f"ft-{Path(init).name}"
        r = run_deocc("train", "--fer", "synthface-fer", "--init", init, "--out", out, "--max-steps", "1",
                      "--data", "synth:n_identities=4,frames=1", "--batch-size", "4", "--no-progress", check=0)
        assert "train --preset full: 1 steps" in r.stdout
        assert read_weights(out / "last").keys() == read_weights(bundled).keys()


def test_bad_input_fails_before_work(run_deocc, fer_dir, tmp_path):
    out = tmp_path / "x"
    r = run_deocc("train", "--preset", "full", "--out", out, *TINY, check=2)
    assert "needs --fer" in r.stderr and "Traceback" not in r.stderr
    r = run_deocc("train", "--preset", "full", "--fer", tmp_path / "missing", "--out", out, *TINY, check=2)
    assert "no such FER checkpoint" in r.stderr and "train-fer" in r.stderr
    empty = tmp_path / "empty"; (empty / "anger").mkdir(parents=True)
    r = run_deocc("train-fer", "--out", out, *TINY, "--data", empty, check=2)
    assert "no images" in r.stderr and r.stderr.strip().count("\n") == 0
    r = run_deocc("train-fer", "--out", out, "--data", "synth:n_identities=2,frames=1", "--size", "32", "--no-progress", check=2)
    assert "training needs at least 2" in r.stderr and "held out for validation" in r.stderr   # 1 test + 1 train identity
    # a 7-class FER against 6-class data
    fer7 = tmp_path / "fer7"
    code = ("from deocc.models import create_fer; from deocc.core import class_names; "
            f"create_fer('tiny', classes=class_names(True)).save_pretrained({str(fer7)!r})")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    r = run_deocc("train", "--preset", "full", "--fer", fer7, "--out", out, *TINY, check=2)
    assert "class-count mismatch" in r.stderr
    assert not (out / "last").exists()                      # nothing was trained or written
    # a second run into a used folder (nothing-to-resume and config-drift are tested in nbs/06_train.ipynb)
    r = run_deocc("train-fer", "--out", fer_dir, "--max-steps", "1", *TINY, check=2)
    assert "already holds a training run" in r.stderr and "--resume" in r.stderr


def test_kill_and_resume_reaches_same_step_count(fer_dir, tmp_path):
    "SIGKILL a run after its first checkpoints, resume it, and end at exactly the planned number of steps."
    out, total = tmp_path / "run", 40
    args = [str(BIN / "deocc"), "train", "--preset", "full", "--fer", str(fer_dir), "--out", str(out), "--max-steps", str(total), "--epochs", "100",
            "--save-every", "1", *TINY]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_at = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and p.poll() is None:
            try: killed_at = _trainer_state(out)["step"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError): killed_at = None
            if killed_at is not None and killed_at >= 2: p.send_signal(signal.SIGKILL); break
            time.sleep(0.02)
    finally:
        if p.poll() is None: p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL, f"run was not killed (exit {p.returncode}): {p.stderr.read()[-500:]}"
    saved = _trainer_state(out)["step"]
    assert 2 <= saved < total
    r = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert f"{total} steps" in r.stdout
    assert [int(s["step"]) for s in _steps(out)] == list(range(1, total + 1))   # no step lost or repeated
    assert _trainer_state(out)["step"] == total


def test_ddp_two_gloo_processes(fer_dir, tmp_path):
    "torchrun --nproc_per_node 2 runs the unchanged command data-parallel on CPU (gloo)."
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(BIN / "deocc"), "train", "--preset", "full",
                        "--fer", str(fer_dir), "--out", str(out), "--max-steps", "3", *TINY],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    state = _trainer_state(out)
    assert state["step"] == 3 and state["world_size"] == 2
    assert [int(s["step"]) for s in _steps(out)] == [1, 2, 3]
    # the run ends with `check_replicas`, which fails the command if the two ranks' weights differ
    assert json.loads((out / "last" / "config.json").read_text())["type"] == "deoccluder"
