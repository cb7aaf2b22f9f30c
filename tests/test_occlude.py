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
    assert {r["kind"] for r in rows} <= {"block", "stroke", "sunglasses", "face_mask", "hand", "scarf", "hair", "object", "object_art"}
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
    r = run_deocc("occlude", "--src", synth_dir, "--out", tmp_path / "z", "--coverage", "-0.2,0.4", check=2)   # an option to argparse
    assert "--coverage=-0.2,0.4" in r.stderr and "0..1" in r.stderr and r.stderr.strip().count("\n") == 0
    r = run_deocc("occlude", "--src", synth_dir, "--out", tmp_path / "z", "--coverage=-0.2,0.4", check=2)
    assert "coverage must lie in (0, 0.95]" in r.stderr and r.stderr.strip().count("\n") == 0
    r = run_deocc("occlude", "--src", synth_dir, "--out", tmp_path / "z", "--size", 8, check=2)
    assert "--size 8" in r.stderr and "16..512" in r.stderr
    assert not (tmp_path / "z").exists()                       # refused before any work
    r = run_deocc("occlude", "--src", tmp_path / "missing", "--out", tmp_path / "w", check=2)
    assert "no such folder" in r.stderr and "Traceback" not in r.stderr
    run_deocc("occlude", "--src", synth_dir, "--out", out, "--variants", 1, "--force", check=0)
    assert len([p for p in out.rglob("*.png") if p.name != "preview.png"]) == 12


def test_occlude_api_coverage_masks_and_errors():
    from deocc.occlude import occlude, face_region, ALL_KINDS
    from deocc.synth import synthface
    from deocc.core import make_generator, DeoccError
    fs = synthface(n_identities=2, frames=1, size=64, seed=9)
    x, target = fs.float_images(), torch.linspace(0.1, 0.4, len(fs))
    region = face_region(fs.landmarks, 64)
    for k in ALL_KINDS + ("mixed",):
        o = occlude(x, k, target, fs.landmarks, make_generator(0))
        assert o.image.shape == x.shape and o.mask.shape == (12, 1, 64, 64) and len(o.kind) == 12
        assert (o.coverage - target).abs().mean() < 0.03, k
        assert torch.allclose(o.coverage, (o.mask * region).sum((1, 2, 3)) / region.sum((1, 2, 3)))
        assert torch.equal((o.image != x).any(1, keepdim=True), o.mask.bool()), k
        assert torch.equal(occlude(x, k, target, fs.landmarks, make_generator(0)).image, o.image)
    with pytest.raises(DeoccError, match="float in"): occlude(x.double() * 255)
    for bad in (-0.2, (-0.2, 0.4), (0.3, 1.2), torch.tensor([0.2, float("nan")]), "0.1,0.2,0.3", ("a", 0.2)):
        with pytest.raises(DeoccError, match="coverage"): occlude(x[:2], "block", bad)
    from deocc.occlude import parse_coverage                                   # the one coverage check, API and command
    assert parse_coverage("0.1,0.4") == (0.1, 0.4) and parse_coverage(0.25) == (0.25, 0.25)
    assert parse_coverage(torch.tensor([0.3, 0.1, 0.2])) == pytest.approx((0.1, 0.3))
    with pytest.raises(DeoccError, match=r"lo > hi.*0 < LOW <= HIGH <= 0.95"): parse_coverage("0.4,0.1", "--coverage")
    with pytest.raises(DeoccError, match=r"--coverage '-0.2,0.4': coverage must lie in \(0, 0.95\]"): parse_coverage("-0.2,0.4", "--coverage")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"): occlude(x[:, :1])


# ---------------------------------------------------------------- object art
ART = Path(__file__).resolve().parents[1] / "deocc" / "assets" / "occluders"


def _package_data_globs() -> list[str]:
    "The `deocc` globs of setup.py's package_data (read with ast: setup.py is not run)."
    import ast
    tree = ast.parse((ART.parents[2] / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "package_data":
            return ast.literal_eval(node.value)["deocc"]
    raise AssertionError("setup.py has no package_data")


def _category(sprite: str) -> str: return sprite.split("_")[0]


def test_object_art_licences_attribution_and_packaging():
    import json
    man = json.loads((ART / "manifest.json").read_text())
    src = man["source"]
    assert src["package"] == "emoji-datasource-google" and src["version"] and src["size"] == 64
    art_lic, pkg_lic = (ART / "LICENSE-ART").read_text(), (ART / "LICENSE-PACKAGE").read_text()
    assert "Apache License" in art_lic and "Version 2.0, January 2004" in art_lic and "TERMS AND CONDITIONS" in art_lic
    assert "MIT License" in pkg_lic and "Cal Henderson" in pkg_lic
    attr = (ART / "ATTRIBUTION.md").read_text()
    assert f"`emoji-datasource-google` version {src['version']}" in attr and "Noto Emoji" in attr and "Apache License" in attr
    assert "mask_1f637.png" in attr and "Changes:" in attr                   # the one modified file is declared
    for s in man["sprites"]: assert f"| {s['file']} | img/google/64/{s['source']} |" in attr
    deocc_dir = ART.parents[1]
    packaged = {p for g in _package_data_globs() for p in deocc_dir.glob(g)}
    shipped = {p for p in ART.iterdir() if p.is_file()}
    assert shipped <= packaged, sorted(p.name for p in shipped - packaged)    # every asset file is package data
    assert {"LICENSE-ART", "LICENSE-PACKAGE", "ATTRIBUTION.md", "manifest.json"} <= {p.name for p in shipped}
    assert sum(p.stat().st_size for p in ART.glob("*.png")) < 512 * 1024      # well under 1 MB


def test_object_art_manifest_matches_files():
    import json
    from deocc.occlude import ART_PLACES, load_occluder_art
    man = json.loads((ART / "manifest.json").read_text())
    files = [s["file"] for s in man["sprites"]]
    assert len(files) == len(set(files)) and 30 <= len(files) <= 60
    assert set(files) == {p.name for p in ART.glob("*.png")}                  # no unlisted or missing sprite
    cats = {s["category"] for s in man["sprites"]}
    assert {"hand", "drink", "phone", "microphone", "glasses", "mask", "scarf", "food"} <= cats
    for s in man["sprites"]:
        assert s["place"] in ART_PLACES and s["file"] == f"{s['category']}_{Path(s['source']).stem}.png"
        im = Image.open(ART / s["file"])
        assert im.mode in ("RGBA", "LA") and im.size == (64, 64), s["file"]        # with an alpha channel (LA: grey art)
        a = np.asarray(im.convert("RGBA"))[..., 3]
        assert (a == 0).mean() > 0.05 and (a > 200).mean() > 0.05, s["file"]  # a real cut-out: transparent and opaque parts
    assert sum(s["category"] == "hand" for s in man["sprites"]) >= 6          # several gestures and skin tones
    art = load_occluder_art()
    assert art.files == files and art.category == [s["category"] for s in man["sprites"]]
    assert art.rgba.shape == (len(files), 4, 64, 64) and art.place.tolist() == [ART_PLACES.index(s["place"]) for s in man["sprites"]]


@pytest.fixture(scope="module")
def art_faces():
    from deocc.synth import synthface
    fs = synthface(n_identities=2, frames=1, size=64, seed=9)
    return fs.float_images(), fs.landmarks


@pytest.mark.parametrize("kind", ["object_art", "object_art_heldout", "mixed"])
def test_object_art_mask_is_changed_pixels_and_coverage(art_faces, kind):
    from deocc.occlude import occlude, face_region
    from deocc.core import make_generator
    x, lm = art_faces
    target = torch.linspace(0.1, 0.4, len(x))
    for landmarks in (lm, None):
        o = occlude(x, kind, target, landmarks, make_generator(1))
        assert o.image.shape == x.shape and o.mask.shape == (len(x), 1, 64, 64) and o.image.dtype == x.dtype
        assert set(o.mask.unique().tolist()) <= {0.0, 1.0} and 0 <= o.image.min() and o.image.max() <= 1
        assert torch.equal((o.image != x).any(1, keepdim=True), o.mask.bool())       # the contract, exactly
        assert (o.mask.sum((1, 2, 3)) > 20).all()
        region = face_region(landmarks, 64).expand(len(x), -1, -1, -1)
        assert torch.allclose(o.coverage, (o.mask * region).sum((1, 2, 3)) / region.sum((1, 2, 3)))
        err = (o.coverage - target).abs()
        assert err.mean() < 0.02 and err.max() < 0.06, (kind, err)
        art = [s for s, k in zip(o.sprite, o.kind) if k.startswith("object_art")]
        assert all(art) and all(not s for s, k in zip(o.sprite, o.kind) if not k.startswith("object_art"))


def test_object_art_deterministic_and_batch_independent(art_faces):
    from deocc.occlude import occlude, sample_occlusions, OcclusionConfig, _render, _check_landmarks
    from deocc.core import make_generator
    x, lm = art_faces
    lm = _check_landmarks(lm, len(x), x.device)
    a = occlude(x, "object_art", (0.1, 0.4), lm, make_generator(5))
    b = occlude(x, "object_art", (0.1, 0.4), lm, make_generator(5))
    assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask) and a.sprite == b.sprite
    assert not torch.equal(occlude(x, "object_art", (0.1, 0.4), lm, make_generator(6)).image, a.image)
    cfg = OcclusionConfig()
    for kind in ("object_art", "object_art_heldout", "mixed"):
        p = sample_occlusions(len(x), kind, (0.1, 0.4), make_generator(2))
        full = _render(x, p, lm, cfg)
        idx = torch.tensor([7, 0, 11, 4])                                        # a sub-batch, reordered
        part = _render(x[idx], {k: v[idx] for k, v in p.items()}, lm[idx], cfg)
        art = torch.tensor([k.startswith("object_art") for k in part.kind])
        assert art.any(), kind
        assert torch.equal(part.image[art], full.image[idx][art]) and torch.equal(part.mask[art], full.mask[idx][art])
        assert part.sprite == [full.sprite[i] for i in idx.tolist()] and torch.equal(part.coverage[art], full.coverage[idx][art])
        only_masks = _render(None, p, lm, cfg, (len(x), 64, 64))                # kornia's mask path agrees with the images
        assert torch.equal(only_masks.mask, full.mask)


def test_heldout_categories_never_drawn_by_training_kinds():
    from deocc.occlude import (sample_occlusions, OcclusionConfig, RandomOcclusion, occlusion_protocol, art_split, _render,
                               OCCLUDER_KINDS, HELDOUT_KINDS)
    from deocc.synth import synthface
    from deocc.core import make_generator
    assert "object_art" in OCCLUDER_KINDS and "object_art_heldout" not in OCCLUDER_KINDS and HELDOUT_KINDS == ("object_art_heldout",)
    cfg = OcclusionConfig(); split = art_split(cfg)
    assert set(split["object_art_heldout"]) == set(cfg.art_heldout) and not set(split["object_art"]) & set(cfg.art_heldout)
    n = 4000
    for kind in ("mixed", "object_art", "object_art_heldout"):
        o = _render(None, sample_occlusions(n, kind, 0.2, make_generator(3)), None, cfg, (n, 24, 24))
        cats = {_category(s) for s in o.sprite if s}
        side = "object_art_heldout" if kind == "object_art_heldout" else "object_art"
        assert cats == set(split[side]), (kind, cats)                           # every category of its side, nothing else
        assert ("object_art_heldout" in o.kind) == (kind == "object_art_heldout")
    share = sum(k == "object_art" for k in _render(None, sample_occlusions(n, "mixed", 0.2, make_generator(4)), None, cfg, (n, 16, 16)).kind) / n
    assert abs(share - 2 / 10) < 0.03                                            # mixed: art twice a drawn kind's weight
    aug = RandomOcclusion("mixed", 0.2, seed=0)
    for _ in range(3): aug(torch.rand(64, 3, 32, 32))
    assert "object_art_heldout" not in aug.last.kind and all(_category(s) in split["object_art"] for s in aug.last.sprite if s)
    held = occlusion_protocol(synthface(n_identities=1, frames=1, size=48, seed=0), variants=2, kind="object_art_heldout")
    assert set(held.meta["kind"]) == {"object_art_heldout"} and {_category(s) for s in held.meta["sprite"]} <= set(cfg.art_heldout)
    moved = OcclusionConfig(art_heldout=("hand", "glasses"))                    # the split is configuration
    o = _render(None, sample_occlusions(500, "object_art_heldout", 0.2, make_generator(0), cfg=moved), None, moved, (500, 16, 16))
    assert {_category(s) for s in o.sprite} == {"hand", "glasses"}


def test_object_art_dtype_device_and_errors(art_faces):
    from deocc.occlude import occlude, OcclusionConfig, RandomOcclusion
    from deocc.core import make_generator, DeoccError
    x, lm = art_faces
    o = occlude(x.double(), "object_art", 0.2, lm, make_generator(0))
    assert o.image.dtype == torch.float64 and o.mask.dtype == torch.float64
    assert torch.equal((o.image != x.double()).any(1, keepdim=True), o.mask.bool())
    if torch.cuda.is_available():
        g = occlude(x.cuda(), "object_art", 0.2, lm.cuda(), make_generator(0))
        assert g.image.device.type == "cuda" and g.mask.device.type == "cuda" and g.sprite == o.sprite
        assert torch.equal((g.image != x.cuda()).any(1, keepdim=True), g.mask.bool())
    with pytest.raises(DeoccError, match="unknown occluder kind 'object_arts'.*object_art_heldout"): occlude(x, "object_arts")
    with pytest.raises(DeoccError, match="unknown occluder kind"): RandomOcclusion(["hand", "emoji"])
    with pytest.raises(DeoccError, match="unknown categor"): occlude(x, "object_art", cfg=OcclusionConfig(art_heldout=("hat",)))
    with pytest.raises(DeoccError, match="each side"):
        occlude(x, "object_art_heldout", cfg=OcclusionConfig(art_heldout=("hand", "drink", "phone", "microphone", "glasses", "mask",
                                                                            "scarf", "bottle", "food", "book", "flower", "goggles")))
    with pytest.raises(DeoccError, match="art_rotation"): OcclusionConfig(art_rotation=(0.1,))


def test_occlude_cli_heldout_art(run_deocc, synth_dir, tmp_path):
    out = tmp_path / "held"
    r = run_deocc("occlude", "--src", synth_dir, "--out", out, "--kinds", "object_art_heldout", "--variants", 2, check=0)
    assert "wrote 24 occluded faces" in r.stdout
    rows = list(csv.DictReader(open(out / "occlusion.csv")))
    assert len(rows) == 24 and {r["kind"] for r in rows} == {"object_art_heldout"}
    assert {_category(r["sprite"]) for r in rows} <= {"food", "book", "flower", "goggles"}
    for r in rows[:6]:                                         # mask == the pixels that differ from the clean face
        changed = (_png(out / r["file"]) != _png(tmp_path / "held_clean" / r["file"])).any(-1)
        mask = _png(tmp_path / "held_mask" / r["file"])[..., 0] == 255
        assert not (changed & ~mask).any() and changed[mask].mean() > 0.95   # (uint8 rounding may hide a faint edge pixel)
