"SynthFace: crop layout, determinism, device parity, part masks, the readability benchmark's output and `deocc synth`."
import csv
from dataclasses import replace

import pytest
import torch

from deocc.core import CANONICAL_LANDMARKS, LANDMARK_NAMES, SIZE_RANGE, DeoccError, EXPRESSIONS, to_uint8
from deocc.synth import (AU_NAMES, IDENTITY_RANGES, PARTS, SynthConfig, expression_aus, face_layout, prototype_matrix,
                         random_faces, readability, render_faces, sample_identities, sample_face_params, synthface)

torch.set_num_threads(1)


def test_default_face_sits_on_the_canonical_layout():
    lay = face_layout(n=128, size=96)
    err = (lay["landmarks"] - CANONICAL_LANDMARKS).abs() * 96
    assert err.max() < 2.0, dict(zip(LANDMARK_NAMES, err.max(1).values.tolist()))
    assert 0.80 <= lay["cheek_to_cheek"] <= 0.90     # tight crop, like aligned FER datasets
    assert 0.72 <= lay["brow_to_chin"] <= 0.90
    assert lay["skin_area"] > 0.5                     # the face, not the background, fills the frame


def _extreme_params(n: int, cfg: SynthConfig, sign: float):
    "Identities at the far end of every range that moves landmarks outwards, at the pose extremes."
    ids = sample_identities(n, seed=11, cfg=cfg)
    for k in ("chin", "face_w", "eye_x", "mouth_w", "mouth_y", "brow_off"): ids[k] = torch.full((n,), IDENTITY_RANGES[k][1])
    ids["eye_y"] = torch.full((n,), IDENTITY_RANGES["eye_y"][0])
    p = sample_face_params(ids, torch.arange(n), cfg)
    p["scale"] = torch.full((n,), cfg.scale[1])
    p["shift"] = torch.tensor([[sign * cfg.shift, cfg.shift], [sign * cfg.shift, -cfg.shift]]).repeat(n // 2, 1)
    p["angle"] = torch.full((n,), sign * cfg.rotation * torch.pi / 180)
    return p


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_landmarks_stay_inside_the_frame_at_the_pose_extremes(sign):
    cfg = SynthConfig()
    labels = torch.arange(6).repeat(2)
    au = expression_aus(labels, torch.ones(12)) + 0.0
    au[:, AU_NAMES.index("AU26_jaw_drop")] = 1.0           # the chin at its lowest
    _, lm, _ = render_faces(_extreme_params(12, cfg, sign), au.clamp(0, 1), 96)
    assert ((lm >= 0) & (lm <= 96)).all(), (lm.min(), lm.max())


def test_landmarks_inside_the_frame_over_the_default_dataset():
    fs = synthface(24, frames=3, seed=3)
    assert ((fs.landmarks >= 0) & (fs.landmarks <= 96)).all()


def test_same_seed_gives_identical_uint8_images():
    a, b = synthface(3, frames=2, size=64, seed=5), synthface(3, frames=2, size=64, seed=5)
    assert a.images.dtype == torch.uint8 and torch.equal(a.images, b.images) and torch.equal(a.landmarks, b.landmarks)
    assert not torch.equal(a.images, synthface(3, frames=2, size=64, seed=6).images)
    x1, y1 = random_faces(6, seed=9); x2, y2 = random_faces(6, seed=9)
    assert torch.equal(to_uint8(x1), to_uint8(x2)) and torch.equal(y1, y2)


def test_cpu_device_argument_matches_default():
    x_default, _ = random_faces(4, seed=1)
    x_cpu, _ = random_faces(4, seed=1, device="cpu")
    assert torch.equal(x_default, x_cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x_cpu, _ = random_faces(8, seed=1, device="cpu")
    x_gpu, _ = random_faces(8, seed=1, device="cuda")
    diff = (to_uint8(x_cpu).int() - to_uint8(x_gpu.cpu()).int()).abs()
    assert diff.float().mean() < 0.5 and diff.max() <= 8     # same code, float rounding only


def test_part_masks_shape_and_range():
    fs = synthface(3, frames=1, size=64, seed=4, parts=True)
    pm = fs.meta["parts"]
    assert pm.shape == (len(fs), len(PARTS), 64, 64) and pm.dtype == torch.uint8
    frac = (pm > 127).float().mean((2, 3))                 # (N, 5) area fractions
    for name, i in zip(PARTS, range(len(PARTS))):
        assert (frac[:, i] > 0).float().mean() >= 0.6, name  # eyes, brows, nose, mouth and skin are visible on most faces
    assert (frac[:, PARTS.index("skin")] > 0.4).all()
    assert (frac[:, PARTS.index("mouth")] < 0.1).all()


def test_render_rejects_wrong_au_shape():
    p = sample_face_params(sample_identities(1), torch.zeros(1, dtype=torch.long))
    with pytest.raises(DeoccError, match=f"au must be \\(B, {len(AU_NAMES)}\\)"):
        render_faces(p, torch.zeros(1, 13))
    assert prototype_matrix().shape == (6, len(AU_NAMES))


def test_sizes_outside_the_shared_range_are_refused_alike(run_deocc, tmp_path):
    "The renderer, the dataset and `deocc synth` accept the same sides (`SIZE_RANGE`) and say so the same way."
    lo, hi = SIZE_RANGE
    for bad in (lo - 1, hi + 1):
        with pytest.raises(DeoccError, match=f"^size {bad}: out of range, use {lo}..{hi}$"): synthface(1, frames=1, size=bad)
        with pytest.raises(DeoccError, match=f"^size {bad}: out of range, use {lo}..{hi}$"): random_faces(1, size=bad)
    assert random_faces(1, size=lo)[0].shape == (1, 3, lo, lo)
    r = run_deocc("synth", "--out", tmp_path / "x", "--size", hi + 1, check=2)
    assert f"--size {hi + 1}: out of range, use {lo}..{hi}" in r.stderr and not (tmp_path / "x").exists()
    r = run_deocc("synth", "--help", check=0)
    assert f"{lo}..{hi}" in " ".join(r.stdout.split()) and "32..256" not in r.stdout


def test_readability_output_shape():
    r = readability("fer-minixception", n_identities=2, seed=7, size=64)
    assert r["n"] == 12 and r["confusion"].shape == (6, 6) and int(r["confusion"].sum()) == 12
    assert r["confusion"].sum(1).tolist() == [2] * 6         # every expression shown once per identity
    assert 0.0 <= r["accuracy"] <= 1.0 and r["accuracy"] == pytest.approx(float(r["confusion"].trace()) / 12)
    assert r["intensity"] == 1.0
    assert readability("faceapi-expression", n_identities=1, seed=7, size=64, intensity=None)["intensity"] == "dataset"
    with pytest.raises(DeoccError, match="no-such-teacher"):   # the message names the unknown teacher
        readability("no-such-teacher", n_identities=1)


def test_synth_cli_writes_imagefolder_and_meta(run_deocc, tmp_path):
    out = tmp_path / "s"
    r = run_deocc("synth", "--out", out, "--n-identities", 2, "--frames", 2, "--size", 48, "--seed", 1, check=0)
    assert "wrote 24 faces (2 identities x 6 expressions x 2 frames)" in r.stdout
    assert (out / "preview.png").is_file()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(EXPRESSIONS)
    with open(out / "meta.csv") as f: rows = list(csv.reader(f))
    header = ["file", "label", "expression", "identity", "intensity"] + [f"{n}_{a}" for n in LANDMARK_NAMES for a in "xy"]
    assert rows[0] == header and len(rows) == 1 + 24
    assert all((out / row[0]).is_file() and row[2] in EXPRESSIONS for row in rows[1:])
    assert all(0 <= float(v) <= 48 for row in rows[1:] for v in row[5:])


def test_aligned_high_resolution_faces_land_on_the_canonical_layout():
    "A face rendered small on a 512 px canvas and aligned by `deocc.data` lands on `CANONICAL_LANDMARKS`, as photos do."
    from deocc.data import align_face, apply_transform
    n = 8
    cfg = replace(SynthConfig(), scale=(0.3, 0.3), rotation=8.0, blur=(0.3, 0.3))
    ids = sample_identities(n, seed=99, cfg=cfg); g = torch.Generator().manual_seed(3)
    p = sample_face_params(ids, torch.arange(n), cfg, g)
    p["shift"] = torch.rand(n, 2, generator=g) - 0.5
    big, lm, _ = render_faces(p, torch.zeros(n, len(AU_NAMES)), 512, generator=g)
    errs = []
    for im, l in zip(to_uint8(big), lm):
        try: _, info = align_face(im, 96)
        except DeoccError: continue
        if info["method"] == "eyes": errs.append((apply_transform(info["matrix"], l.double()).float() / 96 - CANONICAL_LANDMARKS).norm(dim=-1) * 96)
    assert len(errs) >= 6, f"only {len(errs)} of {n} faces aligned by their eyes"
    err = torch.stack(errs)
    assert err[:, :2].mean() < 3 and err.mean() < 4, err.mean(0)
