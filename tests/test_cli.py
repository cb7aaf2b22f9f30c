"Integration tests of the `deocc` console script as a user runs it."
import hashlib
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
    assert r.stderr.strip().count("\n") == 0 and "--size 1000 out of range" in r.stderr
    r = run_deocc("synth", "--out", tmp_path / "y", "--n-identities", 0, check=2)
    assert "n_identities" in r.stderr and "Traceback" not in r.stderr
    r = run_deocc("synth", "--out", tmp_path / "z", "--n-identities", 1, "--frames", 1, "--size", 32, "--force", check=0)
