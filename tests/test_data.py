"Dataset loaders (every published layout, written as a SynthFace fixture) and face detection/alignment."
import importlib.util, shutil, warnings
from collections import Counter
from pathlib import Path

import pytest
import torch

from deocc.core import DeoccError, CANONICAL_LANDMARKS, EXPRESSIONS, load_image
from deocc.synth import synthface
from deocc.data import (DATASETS, load_dataset, parse_spec, write_fixture, detect_faces, align_face, apply_transform,
                        datasets_help)

REAL = ["imagefolder", "oulu-casia", "ckplus", "rafdb", "fer2013", "ferplus", "kdef", "jaffe", "affectnet"]
# (n images, n identities, official split counts or None) for the default fixture: 3 identities x 6 expressions x 2 frames
EXPECT = {"imagefolder": (36, 3, None), "oulu-casia": (36, 3, None), "ckplus": (36, 3, None),
          "rafdb": (36, 36, {"train": 24, "test": 12}), "fer2013": (36, 36, {"train": 12, "val": 12, "test": 12}),
          "ferplus": (36, 36, {"train": 12, "val": 12, "test": 12}), "kdef": (36, 3, None), "jaffe": (36, 3, None),
          "affectnet": (36, 36, {"train": 24, "test": 12})}

@pytest.fixture(scope="module")
def faces():
    return synthface(n_identities=3, frames=2, size=48)

def load_quiet(*a, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always"); fs = load_dataset(*a, **kw)
    return fs, [str(x.message) for x in w]

def test_registry_lists_every_dataset():
    assert set(REAL) | {"synth"} == set(DATASETS)
    help_text = datasets_help()
    for name in DATASETS: assert f"  {name}:" in help_text

@pytest.mark.parametrize("name", REAL)
def test_every_layout_round_trips(name, faces, tmp_path):
    spec = write_fixture(name, tmp_path, faces)
    fs, warns = load_quiet(spec, size=48)
    n, n_ids, split = EXPECT[name]
    assert warns == [], warns
    assert fs.images.shape == (n, 3, 48, 48) and fs.images.dtype == torch.uint8
    assert fs.classes == EXPRESSIONS
    assert torch.bincount(fs.labels, minlength=6).tolist() == [n // 6] * 6       # every expression mapped, none lost
    assert len(fs.identities.unique()) == n_ids
    assert len(fs.meta["files"]) == n and all(not Path(f).is_absolute() for f in fs.meta["files"])
    # pixel content survives (JPEG at quality 95 or 48 px grey for FER: mean level within 2 grey levels)
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    ref = (faces.images.float() * luma).sum(1) if name in ("fer2013", "ferplus", "jaffe") else faces.images.float()
    got = fs.images.float()[:, 0] if name in ("fer2013", "ferplus", "jaffe") else fs.images.float()
    assert abs(got.mean() - ref.mean()) < 2.0
    if split: assert Counter(fs.meta["split"]) == split
    else: assert "split" not in fs.meta

@pytest.mark.parametrize("name", REAL)
def test_train_test_splits(name, faces, tmp_path):
    spec = write_fixture(name, tmp_path, faces)
    tr, _ = load_quiet(spec, split="train", size=48)
    te, _ = load_quiet(spec, split="test", size=48)
    assert len(tr) + len(te) + (12 if EXPECT[name][2] and "val" in EXPECT[name][2] else 0) == EXPECT[name][0]
    assert not set(tr.meta["files"]) & set(te.meta["files"])
    if EXPECT[name][2] is None:   # subject-independent: no subject on both sides
        assert not set(tr.identities.tolist()) & set(te.identities.tolist())
    else: assert set(te.meta["split"]) == {"test"}
    te2, _ = load_quiet(spec, split="test", size=48)
    assert te2.meta["files"] == te.meta["files"]     # deterministic

def test_neutral_is_opt_in(tmp_path):
    fs = synthface(n_identities=2, frames=1, size=48, neutral=True)
    for name in ("rafdb", "fer2013", "kdef", "jaffe", "affectnet", "imagefolder"):
        spec = write_fixture(name, tmp_path / name, fs)
        six, warns = load_quiet(spec, size=48)
        seven, _ = load_quiet(spec, size=48, neutral=True)
        assert len(six) == 12 and len(seven) == 14 and seven.classes[-1] == "neutral", name
        assert any("2 neutral" in w for w in warns), (name, warns)

def test_spec_parsing_and_errors(tmp_path):
    assert parse_spec("synth") == ("synth", "", {})
    assert parse_spec("ckplus:/d/CK+?last_k=1,skip_bad=true") == ("ckplus", "/d/CK+", {"last_k": 1, "skip_bad": True})
    assert parse_spec(str(tmp_path)) == ("imagefolder", str(tmp_path), {})
    with pytest.raises(DeoccError, match=r"unknown data spec 'ck:/x': use one of synth:, imagefolder:/path, oulu-casia:/path"):
        load_dataset("ck:/x")
    with pytest.raises(DeoccError, match=r"ckplus: unknown option\(s\) lastk; its options are: last_k=3"):
        load_dataset(f"ckplus:{tmp_path}?lastk=2")
    with pytest.raises(DeoccError, match="split must be one of all, train, val, test"):
        load_dataset(write_fixture("kdef", tmp_path / "k"), split="dev")
    fs = load_dataset("synth:n_identities=2,frames=1", size=32, split="test")
    assert fs.images.shape == (6, 3, 32, 32) and len(fs.identities.unique()) == 1

def test_missing_label_files(faces, tmp_path):
    cases = {"ckplus": "Emotion", "rafdb": "basic/EmoLabel/list_patition_label.txt", "ferplus": "FER2013Valid/label.csv",
             "affectnet": "training.csv"}
    for name, rel in cases.items():
        spec = write_fixture(name, tmp_path / name, faces)
        p = tmp_path / name / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
        if name == "affectnet": (tmp_path / name / "validation.csv").unlink()
        with pytest.raises(DeoccError, match="missing label f") as e: load_dataset(spec)
        assert str(tmp_path / name) in str(e.value)

def test_unknown_expression_folder_and_code(faces, tmp_path):
    spec = write_fixture("oulu-casia", tmp_path / "o", faces)
    (tmp_path / "o/VL/Strong/P002/Contempt").mkdir()
    with pytest.raises(DeoccError, match=r"P002/Contempt: unknown expression folder 'Contempt'"): load_dataset(spec)
    spec = write_fixture("imagefolder", tmp_path / "i", faces)
    (tmp_path / "i/faces/joy").mkdir()
    with pytest.raises(DeoccError, match=r"unknown expression folder\(s\) \['joy'\]"): load_dataset(spec)
    spec = write_fixture("jaffe", tmp_path / "j", faces)
    shutil.copy(next((tmp_path / "j").glob("KA.AN1.*.tiff")), tmp_path / "j/KA.XX1.99.tiff")
    with pytest.raises(DeoccError, match=r"KA.XX1.99.tiff: unknown JAFFE expression code 'XX'"): load_dataset(spec)
    spec = write_fixture("ckplus", tmp_path / "c", faces)
    next((tmp_path / "c/Emotion").rglob("*_emotion.txt")).write_text("   9.0000000e+00\n")
    with pytest.raises(DeoccError, match="emotion code 9 out of range"): load_dataset(spec)
    spec = write_fixture("rafdb", tmp_path / "r", faces)
    lab = tmp_path / "r/basic/EmoLabel/list_patition_label.txt"
    lab.write_text(lab.read_text() + "train_09999.jpg 8\n")
    with pytest.raises(DeoccError, match=r"list_patition_label.txt:37: expected '<image> <label 1-7>'"): load_dataset(spec)

def test_unreadable_image_raises_or_is_counted(faces, tmp_path):
    for name, pattern in (("ckplus", "*.png"), ("kdef", "*.JPG"), ("rafdb", "*_aligned.jpg"), ("ferplus", "fer*.png")):
        spec = write_fixture(name, tmp_path / name, faces)
        bad = sorted((tmp_path / name).rglob(pattern))[-1]; bad.write_bytes(b"\x89PNG garbage")
        with pytest.raises(DeoccError, match="not a readable image") as e: load_dataset(spec, size=48)
        assert str(bad) in str(e.value)
        fs, warns = load_quiet(spec + "?skip_bad=true", size=48)
        assert len(fs) == 35 and len(warns) == 1 and "1 unreadable images (skip_bad=True)" in warns[0], (name, warns)

def test_empty_folders(faces, tmp_path):
    empty = tmp_path / "empty"; empty.mkdir()
    for name, msg in (("oulu-casia", "no VL/Strong/ folder found"), ("ckplus", "no cohn-kanade-images/ folder found"),
                      ("rafdb", "missing label file list_patition_label.txt"), ("fer2013", "missing label file fer2013.csv"),
                      ("ferplus", "no FER2013Train/"), ("kdef", "no KDEF images found"), ("jaffe", "no JAFFE images found"),
                      ("affectnet", "missing label files training.csv"), ("imagefolder", "no images found")):
        with pytest.raises(DeoccError, match=msg) as e: load_dataset(f"{name}:{empty}")
        assert str(empty) in str(e.value), name
    # an empty sequence inside a dataset is skipped and counted; an empty Oulu tree is an error naming it
    spec = write_fixture("oulu-casia", tmp_path / "o", faces)
    seq = tmp_path / "o/VL/Strong/P003/Sadness"; shutil.rmtree(seq); seq.mkdir()
    fs, warns = load_quiet(spec, size=48)
    assert len(fs) == 34 and "1 empty sequence folders (e.g. VL/Strong/P003/Sadness)" in warns[0]
    for p in (tmp_path / "o/VL/Strong").iterdir(): shutil.rmtree(p)
    with pytest.raises(DeoccError, match=r"Strong: no images found"): load_dataset(spec)

def test_fer2013_csv_errors(tmp_path):
    p = tmp_path / "fer2013.csv"
    p.write_text("emotion,pixels,Usage\n3," + " ".join(["7"] * 2304) + ",Training\n9," + " ".join(["7"] * 2304) + ",Training\n")
    with pytest.raises(DeoccError, match=r"fer2013.csv:3: emotion must be 0-6, got '9'"): load_dataset(f"fer2013:{p}")
    p.write_text("label,pix\n3,1 2\n")
    with pytest.raises(DeoccError, match="missing column\\(s\\) emotion, pixels; found label, pix"): load_dataset(f"fer2013:{p}")
    p.write_text("emotion,pixels,Usage\n3," + " ".join(["7"] * 2304) + ",Training\n")
    fs = load_dataset(f"fer2013:{tmp_path}", size=48)      # a folder holding fer2013.csv works too
    assert len(fs) == 1 and fs.images.unique().tolist() == [7]

def test_ferplus_csv_layout(faces, tmp_path):
    spec = write_fixture("fer2013", tmp_path, faces)
    cols = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    order = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    rows = []
    for i, l in enumerate(faces.labels.tolist()):
        votes = [0] * 10; votes[order.index(EXPRESSIONS[l])] = 9; votes[7] = 1
        name = "" if i == 0 else f"fer{i:07d}.png"
        if i == 1: votes = [0, 0, 0, 0, 0, 0, 0, 6, 4, 0]          # contempt wins: dropped
        rows.append(",".join(["Training" if i % 2 else "PrivateTest", name] + [str(v) for v in votes]))
    (tmp_path / "fer2013new.csv").write_text(cols + "\n" + "\n".join(rows) + "\n")
    fs, warns = load_quiet(f"ferplus:{tmp_path}", size=48)
    assert len(fs) == 34 and "1 rows without a FER+ image" in warns[0] and "1 contempt (majority vote" in warns[0]
    assert torch.equal(fs.labels, faces.labels[2:])

def test_detect_and_align_real_photo():
    spec = importlib.util.find_spec("skimage")
    if spec is None: pytest.skip("scikit-image (test-only: ships the public-domain astronaut photo) is not installed")
    photo = load_image(Path(spec.origin).parent / "data" / "astronaut.png")
    boxes = detect_faces(photo)
    assert len(boxes) == 1 and 150 < boxes[0][0] < 200 and 80 < boxes[0][2] < 120
    crop, info = align_face(photo, 64, name="astronaut.png")
    assert crop.shape == (3, 64, 64) and info["method"] == "eyes"
    mapped = apply_transform(info["matrix"], torch.tensor(info["eyes"]))
    assert torch.allclose(mapped, CANONICAL_LANDMARKS[:2] * 64, atol=1e-3)
    # a 4x larger copy aligns to (nearly) the same crop: the pre-shrink avoids aliasing
    big = torch.nn.functional.interpolate(photo[None].float(), scale_factor=4, mode="bilinear")[0].round().to(torch.uint8)
    crop4, info4 = align_face(big, 64)
    assert info4["method"] == "eyes" and (crop4.float() - crop.float()).abs().mean() < 12

def test_align_errors():
    with pytest.raises(DeoccError, match="no face found in blank.png"):
        align_face(torch.full((3, 80, 80), 90, dtype=torch.uint8), name="blank.png")
    with pytest.raises(DeoccError, match=r"expected a \(3, H, W\) uint8 image"):
        align_face(torch.zeros(3, 80, 80))

def test_align_with_cache(tmp_path):
    big = synthface(n_identities=2, frames=1, size=96, seed=1)
    canvas = torch.full((len(big), 3, 200, 200), 128, dtype=torch.uint8); canvas[:, :, 30:126, 50:146] = big.images
    from deocc.core import FaceSet
    spec = write_fixture("kdef", tmp_path / "k", FaceSet(canvas, big.labels, big.identities))
    fs, _ = load_quiet(spec, size=64, align=True, cache_dir=tmp_path / "cache")
    assert fs.images.shape == (12, 3, 64, 64) and set(fs.meta["align"]) <= {"eyes", "box", "none"}
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 12
    fs2, _ = load_quiet(spec, size=64, align=True, cache_dir=tmp_path / "cache")
    assert torch.equal(fs.images, fs2.images) and fs.meta["align"] == fs2.meta["align"]

def test_cli_data_command(run_deocc, faces, tmp_path, capsys):
    spec = write_fixture("ckplus", tmp_path / "ck", faces)
    r = run_deocc("data", "--data", spec, "--out", tmp_path / "out", "--size", 48, "--split", "test", check=0)
    assert r.stdout.startswith("wrote 12 faces (1 identities")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == sorted(EXPRESSIONS)
    assert len(load_dataset(str(tmp_path / "out"), size=48)) == 12
    from deocc.cli import main      # the rest in-process: starting `deocc` imports every command module
    assert main(["data", "--data", f"rafdb:{tmp_path / 'nope'}", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "nope: no such file or folder" in err and "Traceback" not in err
    with pytest.raises(SystemExit): main(["data", "--help"])
    out = capsys.readouterr().out
    assert "oulu-casia:/path" in out and "affectnet:/path" in out

def test_ferplus_csv_with_image_folders(faces, tmp_path):
    "fer2013new.csv beside FER2013Train/Valid/Test PNG folders (no fer2013.csv): images come from the folders."
    write_fixture("ferplus", tmp_path, faces)
    order = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    usage = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}
    rows = []
    for d, u in usage.items():
        for line in (tmp_path / d / "label.csv").read_text().splitlines():
            name = line.split(",")[0]; i = int(name[3:10])
            votes = [0] * 10; votes[order.index(EXPRESSIONS[int(faces.labels[i])])] = 10
            rows.append(",".join([u, name] + [str(v) for v in votes]))
        (tmp_path / d / "label.csv").unlink()
    (tmp_path / "fer2013new.csv").write_text("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
                                             + "\n".join(rows) + "\n")
    fs, warns = load_quiet(f"ferplus:{tmp_path}", size=48)
    assert warns == [] and len(fs) == 36 and Counter(fs.meta["split"]) == {"train": 12, "val": 12, "test": 12}
    idx = [int(Path(f).name[3:10]) for f in fs.meta["files"]]
    assert torch.equal(fs.labels, faces.labels[idx])
    shutil.rmtree(tmp_path / "FER2013Test")
    with pytest.raises(DeoccError, match="no FER2013Test/ folder for PrivateTest images"): load_dataset(f"ferplus:{tmp_path}")

def test_rafdb_variants(faces, tmp_path):
    "Label lines '<image> <split> <label>' and zips that unpack to Image/aligned/aligned/."
    spec = write_fixture("rafdb", tmp_path, faces)
    lab = tmp_path / "basic/EmoLabel/list_patition_label.txt"
    lab.write_text("\n".join(f"{n} {n.split('_')[0]} {l}" for n, l in (x.split() for x in lab.read_text().splitlines())) + "\n")
    aligned = tmp_path / "basic/Image/aligned"
    nested = aligned / "aligned"; nested.mkdir()
    for f in list(aligned.glob("*.jpg")): f.rename(nested / f.name)
    fs, warns = load_quiet(spec, size=48)
    assert warns == [] and len(fs) == 36 and Counter(fs.meta["split"]) == {"train": 24, "test": 12}
