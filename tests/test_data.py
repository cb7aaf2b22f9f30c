"Dataset loaders (every published layout, written as a SynthFace fixture) and face detection/alignment."
import importlib.util, json, mmap, os, re, shutil, subprocess, sys, warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import deocc.data as dd
from deocc.cli import main
from deocc.core import DeoccError, CANONICAL_LANDMARKS, EXPRESSIONS, SIZE_RANGE, FaceSet, load_image
from deocc.synth import synthface
from deocc.data import (DATASETS, VARIANTS, load_dataset, parse_spec, write_fixture, write_variant, detect_faces, align_face,
                        apply_transform, datasets_help, StreamedFaceSet, RecordImages, face_loader)

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
    write_fixture("fer2013", tmp_path, faces)     # the pixels: fer2013.csv
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
    # the rest in-process: a `deocc` process imports torch first
    assert main(["data", "--data", f"rafdb:{tmp_path / 'nope'}", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "nope: no such file or folder" in err and "Traceback" not in err
    with pytest.raises(SystemExit): main(["data", "--help"])
    out = capsys.readouterr().out
    assert "oulu-casia:/path" in out and "affectnet:/path" in out
    assert f"{SIZE_RANGE[0]}..{SIZE_RANGE[1]}" in out and "(default: None)" not in out   # the shared --size; no empty defaults
    assert main(["data", "--data", spec, "--out", str(tmp_path / "o3"), "--size", "8"]) == 2
    assert "--size 8: out of range, use 16..512" in capsys.readouterr().err and not (tmp_path / "o3").exists()

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


# ----------------------------------------------------------------------------------------------------------------------
# repackaged layouts: the copies users actually have

# (n images, official split counts or None, offset of the source index in the file names, or None: no index in the name)
VARIANT_EXPECT = {("affectnet", "archives"): (36, {"train": 24, "test": 12}, 0), ("affectnet", "folders"): (36, {"train": 24, "test": 12}, 0),
                  ("ferplus", "votes"): (36, {"train": 12, "val": 12, "test": 12}, 0), ("fer2013", "kaggle"): (36, {"train": 12, "test": 24}, 0),
                  ("rafdb", "folders"): (36, {"train": 24, "test": 12}, 1), ("jaffe", "png"): (36, None, None),
                  ("imagefolder", "aliases"): (36, None, 0)}

def source_index(rel: str, offset: int) -> int:
    "The SynthFace index a fixture file was written from: the last number in its name."
    return int(re.findall(r"\d+", Path(rel).stem)[-1]) - offset

def test_variant_registry_is_covered():
    assert set(VARIANT_EXPECT) == set(VARIANTS)
    with pytest.raises(DeoccError, match="no fixture variant rafdb:zip; known: affectnet:archives"): write_variant("rafdb", "zip", "/tmp/x")

@pytest.mark.parametrize("name, variant", list(VARIANT_EXPECT))
def test_repackaged_layouts_load(name, variant, faces, tmp_path):
    spec = write_variant(name, variant, tmp_path, faces)
    fs, warns = load_quiet(spec, size=48)
    n, split, offset = VARIANT_EXPECT[name, variant]
    assert warns == [], warns
    assert fs.images.shape == (n, 3, 48, 48) and fs.classes == EXPRESSIONS
    assert torch.bincount(fs.labels, minlength=6).tolist() == [n // 6] * 6
    if offset is not None:      # every face kept its own label
        idx = [source_index(f, offset) for f in fs.meta["files"]]
        assert torch.equal(fs.labels, faces.labels[idx]), fs.meta["files"][:3]
    grey = name in ("fer2013", "ferplus", "jaffe")
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    ref = (faces.images.float() * luma).sum(1) if grey else faces.images.float()
    assert abs((fs.images.float()[:, 0] if grey else fs.images.float()).mean() - ref.mean()) < 2.0
    if split: assert Counter(fs.meta["split"]) == split
    else: assert "split" not in fs.meta

def test_affectnet_archive_details(faces, tmp_path):
    "Sibling folders named Manually_Annotated/, both lists without header, the file-lists folder given directly; bad rows named."
    spec = write_variant("affectnet", "archives", tmp_path, faces)
    base = tmp_path / "AffectNet"
    (base / "Manually_Annotated_compressed").rename(base / "Manually_Annotated")
    train = base / "Manually_Annotated_file_lists" / "training.csv"
    train.write_text("".join(train.read_text().splitlines(keepends=True)[1:]))
    fs, warns = load_quiet(spec, size=48)
    assert warns == [] and len(fs) == 36 and fs.meta["files"][0].startswith("Manually_Annotated/Manually_Annotated_Images/")
    fs, _ = load_quiet(f"affectnet:{base / 'Manually_Annotated_file_lists'}", size=48)   # the lists' folder: images one level up
    assert len(fs) == 36 and Path(fs.meta["files"][0]).is_absolute()
    val = base / "Manually_Annotated_file_lists" / "validation.csv"
    val.write_text(val.read_text() + "1/000000.jpg,12,12\n")
    with pytest.raises(DeoccError, match=r"validation.csv:13: expected the 9 AffectNet fields \(subDirectory_filePath, face_x"):
        load_dataset(spec)
    shutil.rmtree(base / "Manually_Annotated")
    with pytest.raises(DeoccError, match="no Manually_Annotated_Images/ folder found beside training.csv or in a sibling folder"):
        load_dataset(spec)

def test_class_folder_names(faces, tmp_path):
    "Aliases and contempt in an imagefolder; numbered folders only with their dataset's codes."
    spec = write_variant("imagefolder", "aliases", tmp_path / "a", faces)
    (tmp_path / "a" / "Contempt").mkdir(); shutil.copy(next((tmp_path / "a" / "happy").iterdir()), tmp_path / "a" / "Contempt" / "x.jpg")
    fs, warns = load_quiet(spec, size=48)
    assert len(fs) == 36 and "1 contempt (no deocc class) (e.g. Contempt/x.jpg)" in warns[0], warns
    (tmp_path / "a" / "3").mkdir()
    with pytest.raises(DeoccError, match=r"unknown expression folder\(s\) \['3'\]; class folders must be among .* rafdb:/path \(1-7\)"):
        load_dataset(spec)
    spec = write_variant("rafdb", "folders", tmp_path / "r", faces)
    (tmp_path / "r" / "DATASET" / "train" / "8").mkdir()
    with pytest.raises(DeoccError, match=r"\['8'\]; rafdb numbers its class folders 1=surprise, 2=fear"): load_dataset(spec)
    spec = write_variant("fer2013", "kaggle", tmp_path / "f", faces)
    for d in (tmp_path / "f" / "train").iterdir(): d.rename(d.with_name(str(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"].index(d.name))))
    fs, _ = load_quiet(spec, size=48)       # FER2013's codes 0-6 as folder names
    idx = [source_index(f, 0) for f in fs.meta["files"]]
    assert len(fs) == 36 and torch.equal(fs.labels, faces.labels[idx])

def test_ferplus_short_rows_named(faces, tmp_path):
    spec = write_variant("ferplus", "votes", tmp_path, faces)
    lab = tmp_path / "FER2013Valid" / "label.csv"
    lab.write_text(lab.read_text() + "fer0009999.png,1,2,3\n")
    with pytest.raises(DeoccError, match=r"label.csv:13: expected '<image>,<box>,<10 votes>' or '<image>,<10 votes>', got 4 fields"):
        load_dataset(spec)


# ----------------------------------------------------------------------------------------------------------------------
# streaming: the same faces from a record cache on disk

def both(spec, cache, **kw):
    "(in memory, streamed) loads of the same spec, warnings silenced."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(spec, stream=False, **kw), load_dataset(spec, stream=True, cache_dir=cache, workers=0, **kw)

def assert_same(mem: FaceSet, st: FaceSet):
    assert isinstance(st, StreamedFaceSet) and isinstance(st.images, RecordImages) and not isinstance(mem, StreamedFaceSet)
    assert st.images.shape == mem.images.shape and torch.equal(st.images[:], mem.images)
    assert torch.equal(st.labels, mem.labels) and torch.equal(st.identities, mem.identities)
    assert st.classes == mem.classes and st.meta == mem.meta and st.size == mem.size and len(st) == len(mem)
    assert (st.landmarks is None) == (mem.landmarks is None)
    if mem.landmarks is not None: assert torch.equal(st.landmarks, mem.landmarks)

@pytest.mark.parametrize("name", ["imagefolder", "rafdb", "fer2013", "ferplus", "affectnet", "ckplus"])
def test_streamed_equals_in_memory(name, faces, tmp_path):
    "Same labels, subjects, files, splits, landmarks and images, for every split."
    spec = write_fixture(name, tmp_path / "d", faces)
    for split in ("all", "train", "test"):
        mem, st = both(spec, tmp_path / "cache", split=split, size=48)
        assert_same(mem, st)
    if name == "imagefolder": assert st.landmarks is not None and st.landmarks.shape == (len(st), 12, 2)

def test_streamed_repackaged_and_aligned(tmp_path):
    "AffectNet archives, and photos aligned on 2 DataLoader worker processes: identical crops and methods."
    big = synthface(n_identities=12, frames=2, size=96, seed=1)
    canvas = torch.full((len(big), 3, 200, 200), 128, dtype=torch.uint8); canvas[:, :, 30:126, 50:146] = big.images
    spec = write_fixture("kdef", tmp_path / "k", FaceSet(canvas, big.labels, big.identities))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = load_dataset(spec, size=64, align=True)
        st = load_dataset(spec, size=64, align=True, stream=True, cache_dir=tmp_path / "cache", workers=2)
    assert len(st) == 144 > 2 * 64        # enough faces that the workers are used
    assert_same(mem, st)
    assert set(st.meta["align"]) <= {"eyes", "box", "none"} and "eyes" in st.meta["align"]
    mem, st = both(write_variant("affectnet", "archives", tmp_path / "a"), tmp_path / "cache", size=48)
    assert_same(mem, st)

def test_record_cache_reuse_and_invalidation(faces, tmp_path):
    spec, cache = write_fixture("rafdb", tmp_path / "d", faces), tmp_path / "cache"
    st = load_dataset(spec, size=48, stream=True, cache_dir=cache)
    folder = Path(st.images.path).parent
    info = json.loads((folder / "index.json").read_text())
    assert folder.name.startswith("rafdb-all-48px-") and info["n"] == 36 and info["size"] == 48 and info["dataset"] == "rafdb"
    assert (folder / "records.u8").stat().st_size == 36 * 3 * 48 * 48
    stamp = (folder / "records.u8").stat().st_mtime_ns
    again = load_dataset(spec, size=48, stream=True, cache_dir=cache)
    assert again.images.path == st.images.path and (folder / "records.u8").stat().st_mtime_ns == stamp   # found, not rebuilt
    load_dataset(spec, size=32, stream=True, cache_dir=cache); load_dataset(spec, size=48, split="test", stream=True, cache_dir=cache)
    f = next((tmp_path / "d").rglob("*.jpg")); os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    load_dataset(spec, size=48, stream=True, cache_dir=cache)
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 4      # other size, other split, changed source: new caches
    with open(folder / "records.u8", "r+b") as fh: fh.truncate(100)
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns - 10**9))   # back to the first cache's fingerprint
    with pytest.raises(DeoccError, match=f"{folder}: record cache of another format or truncated; delete the folder"):
        load_dataset(spec, size=48, stream=True, cache_dir=cache)

def test_streamed_unreadable_images(faces, tmp_path):
    spec = write_fixture("ckplus", tmp_path / "d", faces)
    bad = sorted((tmp_path / "d").rglob("*.png"))[-1]; bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DeoccError, match="not a readable image") as e: load_dataset(spec, size=48, stream=True, cache_dir=tmp_path / "c")
    assert str(bad) in str(e.value)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        st = load_dataset(spec + "?skip_bad=true,stream=true", size=48, cache_dir=tmp_path / "c")
        mem = load_dataset(spec + "?skip_bad=true", size=48)
    assert len(st) == 35 and "1 unreadable images (skip_bad=True)" in str(w[0].message)
    assert_same(mem, st)

def test_record_images_behave_like_a_tensor(faces, tmp_path, monkeypatch):
    st = load_dataset(write_fixture("rafdb", tmp_path / "d", faces), size=48, stream=True, cache_dir=tmp_path / "c")
    mem = st.in_memory()
    v = st.images
    assert (v.dtype, v.ndim, v.shape, v.size(0), len(v)) == (torch.uint8, 4, (36, 3, 48, 48), 36, 36)
    for key in (5, -1, slice(3, 9, 2), torch.tensor([7, 2, 7]), [1, 0], np.array([4]), st.labels == 2, torch.tensor(3)):
        assert torch.equal(v[key], mem.images[key]), key
    assert torch.equal(v[2, :, 10], mem.images[2, :, 10]) and torch.equal(v[1:3, 0], mem.images[1:3, 0])
    assert torch.equal(v.float(), mem.images.float()) and torch.equal(torch.empty_like(v), torch.empty_like(mem.images)) is not None
    assert torch.equal(torch.cat([v[:2], v]), torch.cat([mem.images[:2], mem.images])) and np.asarray(v).shape == (36, 3, 48, 48)
    with pytest.raises(IndexError): v[36]
    with pytest.raises(IndexError): v[torch.tensor([0.5])]
    sub = st.subset(torch.tensor([3, 1, 4]))
    assert isinstance(sub, StreamedFaceSet) and sub.images.positions.tolist() == [3, 1, 4]
    assert torch.equal(sub.float_images(torch.tensor([2, 0])), mem.float_images(torch.tensor([4, 3])))
    # bounded: a batch is read with positioned reads of exactly its records; nothing is mapped
    monkeypatch.setattr(mmap, "mmap", lambda *a, **k: pytest.fail("record files must not be mapped"))
    monkeypatch.setattr(np, "memmap", lambda *a, **k: pytest.fail("record files must not be mapped"))
    read, real = [], os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, off: read.append(sum(len(b) for b in bufs)) or real(fd, bufs, off))
    st.float_images(torch.tensor([9, 10, 11, 30]))
    assert read == [3 * 3 * 48 * 48, 3 * 48 * 48]      # one read per run of consecutive records
    monkeypatch.setattr(dd, "MATERIALIZE_BYTES", 10 * 3 * 48 * 48)
    with pytest.raises(DeoccError, match=r"36 streamed faces \(0.0 GiB\) are too many to load at once"): v.float()
    with pytest.raises(DeoccError, match="too many to load at once"): st.float_images()
    assert v[:10].shape == (10, 3, 48, 48)

def test_auto_streams_above_the_threshold(faces, tmp_path, monkeypatch):
    spec = write_fixture("imagefolder", tmp_path / "d", faces)
    assert type(load_dataset(spec, size=48)) is FaceSet
    monkeypatch.setattr(dd, "STREAM_AUTO_BYTES", 20 * 3 * 48 * 48)
    monkeypatch.setattr(dd, "STREAM_CACHE", tmp_path / "default-cache")
    st = load_dataset(spec, size=48)                         # 36 faces > 20: streamed, into the default cache
    assert isinstance(st, StreamedFaceSet) and Path(st.images.path).is_relative_to(tmp_path / "default-cache")
    assert type(load_dataset(spec, size=48, split="test", test_fraction=0.34)) is FaceSet     # 12 faces: in memory
    assert type(load_dataset(spec + "?stream=false", size=48)) is FaceSet
    with pytest.raises(DeoccError, match="stream must be true, false or auto, got 'sometimes'"): load_dataset(spec + "?stream=sometimes")
    with pytest.raises(DeoccError, match="synth is rendered in memory"): load_dataset("synth:n_identities=2,stream=true")
    with pytest.raises(DeoccError, match=r"unknown option\(s\) strem; its options are: aligned=True; every spec also takes neutral, align, cache_dir"):
        load_dataset(f"rafdb:{tmp_path}?strem=true")

def test_trainer_same_on_streamed_and_in_memory(faces, tmp_path):
    "train-fer and the de-occluder trainer see the same batches: identical losses, validation and weights."
    from deocc.train import load_train_val, train_fer, fer_train_config, train_deoccluder, train_preset   # only here: the training stack
    spec = write_fixture("rafdb", tmp_path / "d", faces)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = load_train_val(spec, 48, 0)
        st = load_train_val(spec + f"?stream=true,workers=0,cache_dir={tmp_path / 'c'}", 48, 0)
    assert all(isinstance(s, StreamedFaceSet) for s in st)
    for m, s in zip(mem, st): assert_same(m, s)
    cfg = fer_train_config("tiny", max_steps=3, epochs=1, batch_size=4)
    (fa, ha), (fb, hb) = (train_fer(*d, cfg=cfg, progress=False) for d in (mem, st))
    untimed = lambda h: [{k: v for k, v in r.items() if k != "time"} for r in h]
    assert ha.steps == hb.steps and untimed(ha) == untimed(hb) and "val_acc" in ha[-1]
    assert all(torch.equal(a, b) for a, b in zip(fa.state_dict().values(), fb.state_dict().values()))
    tcfg = train_preset("full", max_steps=2, epochs=1, batch_size=4)
    (_, ha), (_, hb) = (train_deoccluder(d[0], fa, tcfg, d[1], progress=False) for d in (mem, st))
    assert ha.steps == hb.steps and untimed(ha) == untimed(hb) and "val_acc_restored" in ha[-1]

def test_face_loader_shards_on_worker_processes(faces, tmp_path):
    st = load_dataset(write_fixture("rafdb", tmp_path / "d", faces), size=48, stream=True, cache_dir=tmp_path / "c")
    seen = []
    for rank in range(2):
        batches = list(face_loader(st, batch_size=4, seed=3, workers=1, rank=rank, world=2))
        assert len(batches) == 4 and all(x.shape == (4, 3, 48, 48) and x.dtype == torch.uint8 for x, _ in batches)
        for x, y in batches:
            i = [next(j for j in range(len(st)) if torch.equal(st.images[j], img)) for img in x]
            assert torch.equal(st.labels[i], y); seen += i
    assert len(seen) == len(set(seen)) == 32      # two disjoint shards of 18 faces, each cut to 4 whole batches

BIN = Path(sys.executable).parent

@pytest.mark.skipif(not (BIN / "torchrun").exists(), reason="torchrun is not installed next to this python")
def test_torchrun_two_gloo_processes_on_a_streamed_set(faces, tmp_path):
    "Both ranks stream the same set (the first builds the cache, the other waits for it) and train data-parallel."
    spec = write_fixture("rafdb", tmp_path / "d", faces) + f"?stream=true,cache_dir={tmp_path / 'c'}"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(BIN / "deocc"), "train-fer",
                        "--data", spec, "--out", str(tmp_path / "run"), "--size", "48", "--batch-size", "4",
                        "--max-steps", "2", "--no-progress"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "train-fer: 2 steps" in r.stdout
    state = json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())
    assert state["step"] == 2 and state["world_size"] == 2
    assert len([p for p in (tmp_path / "c").iterdir() if p.is_dir()]) == 1     # one cache, built once

def test_streaming_leaves_the_global_rng_alone(faces, tmp_path):
    "Building a cache and reading it through DataLoaders draws nothing from torch's global RNG (dropout draws from it)."
    spec = write_fixture("rafdb", tmp_path / "d", faces)
    torch.manual_seed(0); before = torch.get_rng_state()
    st = load_dataset(spec, size=48, stream=True, cache_dir=tmp_path / "c")
    for _ in face_loader(st, batch_size=8, workers=1): pass
    assert torch.equal(torch.get_rng_state(), before)
