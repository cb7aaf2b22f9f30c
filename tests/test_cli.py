"Integration tests of the `deocc` console script as a user runs it."
import hashlib, json, os
from pathlib import Path

def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}

def test_help_lists_commands(run_deocc):
    r = run_deocc("--help", check=0)
    assert "synth" in r.stdout and "usage: deocc" in r.stdout
    r = run_deocc("synth", "--help", check=0)
    assert "--n-identities" in r.stdout and "--force" in r.stdout

def test_synth_writes_imagefolder_deterministically(run_deocc, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = run_deocc("synth", "--out", a, "--n-identities", 4, "--seed", 1, check=0)
    assert "wrote 72 faces" in r.stdout
    pngs = [p for p in a.rglob("*.png") if p.name != "preview.png"]
    assert len(pngs) == 4 * 6 * 3
    assert sorted(p.name for p in a.iterdir() if p.is_dir()) == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    lines = (a / "meta.csv").read_text().strip().splitlines()
    assert len(lines) == 73 and lines[0].startswith("file,label,expression,identity,intensity,eye_l_x")
    assert (a / "preview.png").stat().st_size > 1000
    run_deocc("synth", "--out", b, "--n-identities", 4, "--seed", 1, check=0)
    assert _digest(a) == _digest(b)

def test_synth_refuses_overwrite_and_bad_args(run_deocc, tmp_path):
    out = tmp_path / "s"
    run_deocc("synth", "--out", out, "--n-identities", 1, "--frames", 1, "--size", 32, check=0)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = run_deocc("synth", "--out", out, "--n-identities", 1, "--frames", 1, check=2)
    assert "not empty" in r.stderr and "--force" in r.stderr and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before   # nothing damaged
    r = run_deocc("synth", "--out", tmp_path / "x", "--size", 1000, check=2)
    assert r.stderr.strip().count("\n") == 0 and "deocc synth: error: --size 1000: out of range, use 16..512" in r.stderr
    r = run_deocc("synth", "--out", tmp_path / "y", "--n-identities", 0, check=2)
    assert "n_identities" in r.stderr and "Traceback" not in r.stderr
    r = run_deocc("synth", "--out", tmp_path / "z", "--n-identities", 1, "--frames", 1, "--size", 32, "--force", check=0)

def _modes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in sorted(folder.rglob("*"))}

def test_written_files_follow_the_umask(run_deocc, tmp_path):
    "Files a command writes (images, meta.csv, preview) and checkpoints are readable by group and others under umask 022, like `open()`."
    from deocc.models import create_model
    old = os.umask(0o022)
    try:
        run_deocc("synth", "--out", tmp_path / "s", "--n-identities", 1, "--frames", 1, "--size", 32, check=0)
        create_model("fer-tiny").save_pretrained(tmp_path / "ckpt")
        os.umask(0o077)                                  # a private umask is respected too
        run_deocc("synth", "--out", tmp_path / "private", "--n-identities", 1, "--frames", 1, "--size", 32, check=0)
    finally:
        os.umask(old)
    modes = _modes(tmp_path / "s")
    assert {"meta.csv", "preview.png", "anger/" + next((tmp_path / "s" / "anger").iterdir()).name} <= set(modes)
    assert {m for f, m in modes.items() if (tmp_path / "s" / f).is_file()} == {0o644}, modes
    assert {m for f, m in modes.items() if (tmp_path / "s" / f).is_dir()} == {0o755}, modes
    assert set(_modes(tmp_path / "ckpt").values()) == {0o644} and (tmp_path / "ckpt").stat().st_mode & 0o777 == 0o755
    private = _modes(tmp_path / "private")
    assert {m for f, m in private.items() if (tmp_path / "private" / f).is_file()} == {0o600}, private

def test_bench_quick_runs(run_deocc):
    "`deocc bench --quick` (tiny batches, one repeat) gives every figure, the `deocc --help` time and the mixed/RandomErasing ratio."
    r = run_deocc("bench", "--quick", "--size", 32, "--json", check=0)
    res = json.loads(r.stdout)
    assert res["quick"] is True and res["size"] == 32 and res["device"] == "cpu"
    assert 0 < res["help_s"] < 60 and res["synth_faces_per_s"] > 0 and res["restore_latency_ms"] > 0
    assert abs(res["mixed_vs_random_erasing"] - res["occluder_images_per_s"]["mixed"] / res["random_erasing_images_per_s"]) < 1e-9
    assert set(res["readability"]) == {"fer-minixception", "faceapi-expression"} and all(0 <= a <= 1 for a in res["readability"].values())
    r = run_deocc("bench", "--size", 8, check=2)
    assert r.stderr.strip().count("\n") == 0 and "--size 8: out of range" in r.stderr
