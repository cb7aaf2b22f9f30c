"Integration tests of `deocc occlude` and the occlusion API as a user runs them."
import csv, hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _png(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from deocc.synth import synthface
    from deocc.core import save_faceset
    out = tmp_path_factory.mktemp("src") / "faces"
    save_faceset(synthface(n_identities=2, frames=1, size=48, seed=4), out)
    return out


def test_occlude_cli_on_synth_folder(run_deocc, synth_dir, tmp_path):
    out = tmp_path / "occ"
    r = run_deocc("occlude", "--src", synth_dir, "--out", out, "--kinds", "mixed", "--variants", 4,
                  "--coverage", "0.1,0.4", "--seed", 3, check=0)
    assert "wrote 48 occluded faces (12 faces x 4 variants" in r.stdout
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png") if p.name != "preview.png")
    assert len(files) == 48 and all(f.split("/")[0] in ("anger", "disgust", "fear", "happiness", "sadness", "surprise") for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occ", "occ_clean", "occ_mask"]
    assert (out / "preview.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "occlusion.csv")))
    assert len(rows) == 48 and [float(r["level"]) for r in rows[:4]] == [0.1, 0.2, 0.3, 0.4]
    cov = np.array([float(r["coverage"]) for r in rows]); lvl = np.array([float(r["level"]) for r in rows])
    assert abs(cov - lvl).mean() < 0.03 and abs(cov - lvl).max() < 0.1          # coverage within tolerance
    assert {r["kind"] for r in rows} <= {"block", "stroke", "sunglasses", "face_mask", "hand", "scarf", "hair", "object"}
    assert len({r["kind"] for r in rows}) >= 3
    meta = list(csv.DictReader(open(out / "meta.csv")))
    assert len(meta) == 48 and "eye_l_x" in meta[0] and meta[0]["kind"] == rows[0]["kind"]
    for r in rows[:12]:                                        # mask == exactly the pixels that differ from the clean face
        occ, clean = _png(out / r["file"]), _png(tmp_path / "occ_clean" / r["file"])
        mask = _png(tmp_path / "occ_mask" / r["file"])[..., 0]
        assert set(np.unique(mask)) <= {0, 255}
        changed = (occ != clean).any(-1)
        assert not (changed & (mask == 0)).any()               # nothing outside the mask changed
        assert changed[mask == 255].mean() > 0.95              # (uint8 rounding may hide a rare faint edge pixel)
        assert (_png(synth_dir / r["source"]) == clean).all()  # the clean copy is the source face
    from deocc.core import load_imagefolder                    # OUT stays a plain ImageFolder for `deocc evaluate`
    assert len(load_imagefolder(out)) == 48 and len(load_imagefolder(tmp_path / "occ_clean")) == 48


def test_occlude_cli_is_deterministic_and_seeded(run_deocc, synth_dir, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for o, seed in ((a, 1), (b, 1), (c, 2)):
        run_deocc("occlude", "--src", synth_dir, "--out", o, "--variants", 2, "--seed", seed, check=0)
    assert _digest(a) == _digest(b) and _digest(a.with_name("a_mask")) == _digest(b.with_name("b_mask"))
    assert _digest(a) != _digest(c)


def test_occlude_cli_single_kind_and_bad_input(run_deocc, synth_dir, tmp_path):
    out = tmp_path / "s"
    r = run_deocc("occlude", "--src", synth_dir, "--out", out, "--kinds", "sunglasses,face_mask", "--variants", 1,
                  "--coverage", "0.25", check=0)
    rows = list(csv.DictReader(open(out / "occlusion.csv")))
    assert {r["kind"] for r in rows} <= {"sunglasses", "face_mask"} and all(r["level"] == "0.250" for r in rows)
    before = _digest(out)
    r = run_deocc("occlude", "--src", synth_dir, "--out", out, check=2)
    assert "not empty" in r.stderr and "--force" in r.stderr and "Traceback" not in r.stderr
    assert _digest(out) == before
    r = run_deocc("occlude", "--src", synth_dir, "--out", tmp_path / "x", "--kinds", "hat", check=2)
    assert "unknown occluder kind 'hat'" in r.stderr and r.stderr.strip().count("\n") == 0
    r = run_deocc("occlude", "--src", synth_dir, "--out", tmp_path / "y", "--coverage", "0.5,0.1", check=2)
    assert "LOW <= HIGH" in r.stderr
    r = run_deocc("occlude", "--src", synth_dir, "--out", tmp_path / "z", "--coverage", "abc", check=2)
    assert "--coverage 'abc'" in r.stderr
    r = run_deocc("occlude", "--src", tmp_path / "missing", "--out", tmp_path / "w", check=2)
    assert "no such folder" in r.stderr and "Traceback" not in r.stderr
    run_deocc("occlude", "--src", synth_dir, "--out", out, "--variants", 1, "--force", check=0)
    assert len([p for p in out.rglob("*.png") if p.name != "preview.png"]) == 12


def test_occlude_api_coverage_masks_and_errors():
    from deocc.occlude import occlude, face_region, OCCLUDER_KINDS
    from deocc.synth import synthface
    from deocc.core import make_generator, DeoccError
    fs = synthface(n_identities=2, frames=1, size=64, seed=9)
    x, target = fs.float_images(), torch.linspace(0.1, 0.4, len(fs))
    region = face_region(fs.landmarks, 64)
    for k in OCCLUDER_KINDS + ("mixed",):
        o = occlude(x, k, target, fs.landmarks, make_generator(0))
        assert o.image.shape == x.shape and o.mask.shape == (12, 1, 64, 64) and len(o.kind) == 12
        assert (o.coverage - target).abs().mean() < 0.03, k
        assert torch.allclose(o.coverage, (o.mask * region).sum((1, 2, 3)) / region.sum((1, 2, 3)))
        assert torch.equal((o.image != x).any(1, keepdim=True), o.mask.bool()), k
        assert torch.equal(occlude(x, k, target, fs.landmarks, make_generator(0)).image, o.image)
    with pytest.raises(DeoccError, match="float in"): occlude(x.double() * 255)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"): occlude(x[:, :1])
