"""The bad-input matrix: every user-facing entry point (the `deocc` commands, the dataset loaders, the demo's upload and
restore functions, `create_model`/`from_pretrained`) gets broken or odd images, broken checkpoints, missing paths,
out-of-range values and unwritable output folders. Each one must end in a clear one-line error (exit code 2 for commands, no traceback)
or be handled correctly (the pixels checked), and nothing written before may be damaged. Then resume after SIGKILL, for
`deocc train-fer` and for `reproduce`.

The matrix (¹ corrupt, 0-byte, not-an-image, 10,000×10,000; ² 1×1, RGBA, 16-bit, grey, CMYK JPEG, EXIF-rotated JPEG;
³ truncated or 0-byte safetensors, another architecture's weights, corrupt config.json, not a checkpoint, a file, missing):

    entry point                              unreadable¹   odd²                 checkpoints³   missing path   unwritable --out
    deocc occlude --src                      error         pixels checked       -              error          error, no work
    deocc evaluate --data/--clean            error         runs (n checked)     error (3 opts) error          (no --out)
    deocc train-fer --data                   error         runs                 -              error          error, no work
    deocc train --fer                        -             -                    error          error          error, no work
    deocc data --data                        error         pixels checked       -              error          error, no work
    deocc synth, deocc reproduce             -             -                    -              -              error, no work
    load_image/load_imagefolder/load_dataset error|skipped pixels checked       -              error          -
    create_model/from_pretrained/load_model  -             -                    error          error          -
    demo face_from_upload + upload handler   error|status  pixels checked;      -              error|status   -
                                                           under 32 px: status
    demo load_demo_models                    -             -                    error          error          -
    demo restore_face + restore handler      -             1×1/grey/RGBA/16-bit faces (session) and paint layers (PNG data
                                                           URLs, arrays) checked; bad paint or shapes → error|status

Out-of-range values, refused with one line and exit 2 before any work (the real console script, in a child process):
`occlude --coverage -0.2,0.4`, `evaluate --size -1`, `train-fer --epochs -1`, `reproduce --set fer_steps=-1`.

Most commands run in-process through `deocc.cli.main` (what the console script calls; stderr and warnings captured as a
user would see them), which keeps the matrix to seconds; `test_console_script_*` check the real console script too."""
import contextlib, csv, hashlib, io, json, os, re, shutil, signal, subprocess, sys, time, traceback, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deocc.core import DeoccError, load_image, load_imagefolder
from deocc.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = dict(os.environ, OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False")
NO_WRITE = Path("/proc/deocc-no-write/out")       # not creatable even for root (chmod does not stop root)
QUIET = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)   # hidden from users by default


# ----------------------------------------------------------------------------------------------------------------------
# helpers

def cli(*args) -> tuple[int, str, str]:
    "Run `deocc ARGS` in-process: (exit code, stdout, stderr incl. warnings). An escaping exception fails the test."
    from deocc.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try: rc = main([str(a) for a in args])
        except SystemExit as e: rc = e.code
        except BaseException: rc = "traceback"; traceback.print_exc()
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in ws if not issubclass(w.category, QUIET))
    return rc, out.getvalue(), shown + err.getvalue()


def assert_error(r: tuple[int, str, str], *needles: str, code: int = 2):
    "Exit `code`, and stderr is one line `deocc <command>: error: ...` containing every needle, without a traceback."
    rc, out, err = r
    assert rc == code and "Traceback" not in err, f"exit {rc}\nstderr: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"deocc( [a-z-]+)?: error: ", lines[0]), f"not one error line:\n{err}"
    for n in needles: assert str(n) in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def resized(img: torch.Tensor, size: int) -> torch.Tensor:
    "What the loaders must give for a `(3, H, W)` uint8 image: centre square, antialiased bilinear to `size`, rounded."
    _, h, w = img.shape; s = min(h, w)
    img = img[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if s == size: return img
    x = torch.nn.functional.interpolate(img[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].round().clamp(0, 255).to(torch.uint8)


def assert_ok(r: tuple[int, str, str]) -> str:
    rc, out, err = r
    assert rc == 0 and "Traceback" not in err, f"exit {rc}\nstdout: {out}\nstderr: {err}"
    return out


def tree_hashes(*folders: Path) -> dict[str, str]:
    "sha256 of every file under the folders (relative path → hash), hidden files included."
    return {f"{d.name}/{p.relative_to(d)}": hashlib.sha256(p.read_bytes()).hexdigest()
            for d in folders for p in sorted(d.rglob("*")) if p.is_file()}


def demo_error(fn, *needles: str):
    "The demo function raises a DeoccError naming every needle (the Gradio handlers turn it into the status line)."
    with pytest.raises(DeoccError) as e: fn()
    for n in needles: assert str(n) in str(e.value), f"{n!r} not in {e.value}"


# ----------------------------------------------------------------------------------------------------------------------
# inputs: each odd image with the RGB pixels it must give (None: it must be refused)

RED, BLUE = (220, 20, 20), (20, 20, 220)

def _halves(h, w, a, b, axis=1) -> np.ndarray:
    x = np.zeros((h, w, 3), np.uint8)
    if axis == 1: x[:, : w // 2], x[:, w // 2:] = a, b
    else: x[: h // 2], x[h // 2:] = a, b
    return x

def write_inputs(d: Path, k: int = 1) -> dict[str, tuple[Path, np.ndarray | None, int]]:
    "kind → (file, expected (H, W, 3) uint8 or None for unreadable, tolerance); every image but the 1×1 one `k`× larger."
    d.mkdir(parents=True, exist_ok=True)
    up = lambda a: np.repeat(np.repeat(a, k, 0), k, 1)                  # nearest-neighbour enlargement
    f = {}
    Image.fromarray(_halves(24, 24, RED, BLUE)).save(d / "ok.png"); png = (d / "ok.png").read_bytes()
    (d / "corrupt.png").write_bytes(png[: len(png) // 2]);               f["corrupt"] = (d / "corrupt.png", None, 0)
    (d / "empty.png").write_bytes(b"");                                  f["empty"] = (d / "empty.png", None, 0)
    (d / "notes.jpg").write_text("file,label\nx.png,3\n");              f["not_an_image"] = (d / "notes.jpg", None, 0)
    Image.new("RGB", (1, 1), (10, 200, 30)).save(d / "dot.png");         f["1x1"] = (d / "dot.png", np.array([[[10, 200, 30]]], np.uint8), 0)
    rgba = np.zeros((16, 16, 4), np.uint8); rgba[..., 0] = 255; rgba[:, 8:, 3] = 255; rgba[:, 4:8, 3] = 128
    Image.fromarray(up(rgba), "RGBA").save(d / "rgba.png")
    exp = np.full((16, 16, 3), 255, np.uint8); exp[:, 8:] = (255, 0, 0); exp[:, 4:8] = (255, 127, 127)   # alpha on white
    f["rgba"] = (d / "rgba.png", up(exp), 1)
    g16 = (np.arange(256, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)          # 0 .. 65535
    Image.fromarray(up(g16)).save(d / "deep16.png")
    f["16bit"] = (d / "deep16.png", up(np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), 3, -1)), 0)   # scaled, not clipped
    Image.fromarray(up(np.arange(256, dtype=np.uint8).reshape(16, 16)[::-1].copy()), "L").save(d / "grey.png")
    f["grey"] = (d / "grey.png", up(np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16, 1)[::-1], 3, -1)), 0)
    Image.fromarray(_halves(24 * k, 24 * k, RED, BLUE)).convert("CMYK").save(d / "cmyk.jpg", quality=95)
    f["cmyk"] = (d / "cmyk.jpg", _halves(24 * k, 24 * k, RED, BLUE), 6)
    ex = Image.Exif(); ex[0x0112] = 6                                    # stored sideways: rotate 90° clockwise to view
    Image.fromarray(_halves(24 * k, 48 * k, RED, BLUE)).save(d / "phone.jpg", quality=95, exif=ex.tobytes())
    f["exif_rotated"] = (d / "phone.jpg", _halves(48 * k, 24 * k, RED, BLUE, axis=0), 6)   # viewed: 24k wide, red on top
    return f

def assert_pixels(got, want, tol: int, what: str = ""):
    """Lossless inputs (tol <= 2): every pixel within tol. JPEGs (tol > 2): mean error within tol (edges blur; a wrong rotation
    or colour conversion costs ~100)."""
    err = (torch.as_tensor(np.asarray(got)).int() - torch.as_tensor(np.asarray(want)).int()).abs().float()
    assert (err.max() if tol <= 2 else err.mean()) <= tol, f"{what}: max error {err.max():.0f}, mean {err.mean():.1f}"

UNREADABLE = ["corrupt", "empty", "not_an_image", "huge"]
ODD = ["1x1", "rgba", "16bit", "grey", "cmyk", "exif_rotated"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    f = write_inputs(d)
    Image.new("1", (10_000, 10_000), 1).save(d / "huge.png")            # 10,000×10,000: 100 Mpx, ~30 kB on disk
    f["huge"] = (d / "huge.png", None, 0)
    return f


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory):
    "The odd images 3× larger (48 to 144 px; the 1×1 one stays 1×1): large enough for the demo's 32-pixel face minimum."
    return write_inputs(tmp_path_factory.mktemp("big_inputs"), k=3)


N_FACES = 18   # in synth_dir


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    "18 SynthFace faces, 32 px (3 identities × 6 expressions: training holds out one for validation and one for test)."
    out = tmp_path_factory.mktemp("synth") / "faces"
    assert_ok(cli("synth", "--out", out, "--n-identities", 3, "--frames", 1, "--size", 32))
    return out


def folder_with(synth_dir: Path, dest: Path, *files: Path) -> Path:
    "A copy of the SynthFace folder (without meta.csv) with `files` added to happiness/ as zz_<name>."
    shutil.copytree(synth_dir, dest, ignore=shutil.ignore_patterns("meta.csv", "preview.png"))
    for f in files: shutil.copy(f, dest / "happiness" / f"zz_{f.name}")
    return dest


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, tiny_ckpts):
    "Copies of the tiny untrained checkpoints (wiring, not accuracy) and broken ones made from them."
    from dataclasses import replace
    from deocc.models import create_deoccluder, DEOCC_PRESETS
    root = tmp_path_factory.mktemp("ckpt"); torch.manual_seed(0)
    shutil.copytree(tiny_ckpts / "fer", root / "fer"); shutil.copytree(tiny_ckpts / "full", root / "deocc")
    bad = {}
    def copy(src, name): shutil.copytree(root / src, root / name); return root / name
    w = copy("deocc", "truncated") / "model.safetensors"; w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    bad["truncated"] = (root / "truncated", "corrupt or truncated weights")
    copy("deocc", "zero_weights"); (root / "zero_weights" / "model.safetensors").write_bytes(b"")
    bad["zero_weights"] = (root / "zero_weights", "corrupt or truncated weights")
    other = root / "other_arch"                                          # the fill net on another timm encoder
    create_deoccluder("tiny", fill=replace(DEOCC_PRESETS["tiny"].fill, encoder="resnet10t", decoder_channels=(64, 48, 32, 24))).save_pretrained(other)
    (other / "config.json").write_text((root / "deocc" / "config.json").read_text())   # the weights of another architecture
    bad["other_arch"] = (other, "weights do not match the config")
    copy("deocc", "bad_json"); (root / "bad_json" / "config.json").write_text('{"type": "deoccluder", "config": ')
    bad["bad_json"] = (root / "bad_json", "corrupt JSON")
    (root / "not_a_checkpoint").mkdir(); (root / "not_a_checkpoint" / "notes.txt").write_text("hi")
    bad["not_a_checkpoint"] = (root / "not_a_checkpoint", "no config.json")
    (root / "weights.safetensors").write_bytes((root / "deocc" / "model.safetensors").read_bytes())
    bad["a_file"] = (root / "weights.safetensors", "weights.safetensors")
    bad["missing"] = (root / "nope", "nope")
    return root, bad


# ----------------------------------------------------------------------------------------------------------------------
# images × loaders

@pytest.mark.parametrize("kind", ODD)
def test_load_image_odd_but_readable(inputs, kind):
    "RGBA composited on white, 16-bit scaled (not clipped), grey → RGB, CMYK → RGB, EXIF rotation applied, 1×1 kept."
    path, expected, tol = inputs[kind]
    got = load_image(path).permute(1, 2, 0).numpy()
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert_pixels(got, expected, tol, kind)


@pytest.mark.parametrize("kind", UNREADABLE)
def test_loaders_refuse_unreadable(inputs, synth_dir, tmp_path, kind):
    path = inputs[kind][0]
    hint = {"corrupt": "not a readable image", "empty": "empty file (0 bytes)", "not_an_image": "not a readable image",
            "huge": "10000x10000 is too large"}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                  # no PIL DecompressionBombWarning on the way
        with pytest.raises(DeoccError, match=re.escape(hint)): load_image(path)
    src = folder_with(synth_dir, tmp_path / "src", path)
    for load in (lambda: load_imagefolder(src), lambda: load_dataset(f"imagefolder:{src}", size=32),
                 lambda: load_dataset(str(src), size=32, split="train")):
        with pytest.raises(DeoccError) as e: load()
        assert f"zz_{path.name}" in str(e.value) and hint in str(e.value)
    with pytest.warns(UserWarning, match=f"skipped 1 unreadable image.*zz_{path.name}"):
        fs = load_dataset(f"imagefolder:{src}?skip_bad=true", size=32)
    assert len(fs) == N_FACES and fs.images.shape[1:] == (3, 32, 32)


def test_loaders_read_odd_images_correctly(inputs, synth_dir, tmp_path):
    "A folder of 32 px faces plus every odd image: each odd one is read with the right pixels, resized like the rest."
    src = folder_with(synth_dir, tmp_path / "src", *(inputs[k][0] for k in ODD))
    fs = load_imagefolder(src)
    assert fs.size == 32 and len(fs) == N_FACES + len(ODD)                  # the common size, not the 1×1 file's
    for k in ODD:
        path, expected, tol = inputs[k]
        i = fs.meta["files"].index(f"happiness/zz_{path.name}")
        want = resized(torch.from_numpy(expected).permute(2, 0, 1), 32).int()
        assert_pixels(fs.images[i], want, max(tol, 1), k)
    ds = load_dataset(f"imagefolder:{src}", size=48)
    assert ds.images.shape == (N_FACES + len(ODD), 3, 48, 48)


def test_missing_paths_in_loaders(tmp_path):
    for fn, hint in ((lambda: load_image(tmp_path / "no.png"), "no such file"),
                     (lambda: load_imagefolder(tmp_path / "nodir"), "no such folder"),
                     (lambda: load_dataset(f"imagefolder:{tmp_path / 'nodir'}"), "no such"),
                     (lambda: load_dataset(f"rafdb:{tmp_path / 'nodir'}"), "no such file or folder")):
        with pytest.raises(DeoccError, match=hint): fn()


def test_bad_meta_csv_is_named(synth_dir, tmp_path):
    src = tmp_path / "src"; shutil.copytree(synth_dir, src)
    with open(src / "meta.csv", newline="") as f: rows = list(csv.DictReader(f))
    rows[3]["identity"] = "zero"
    with open(src / "meta.csv", "w", newline="") as f: w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
    with pytest.raises(DeoccError, match="meta.csv: bad row"): load_imagefolder(src)
    (src / "meta.csv").write_text("name,label\nx,1\n")
    with pytest.raises(DeoccError, match="no 'file' column"): load_imagefolder(src)


# ----------------------------------------------------------------------------------------------------------------------
# images × commands that read image folders

def _image_commands(src: Path, out: Path, ck: Path) -> dict[str, list]:
    return {"occlude": ["occlude", "--src", src, "--out", out / "occ", "--variants", 1],
            "evaluate": ["evaluate", "--data", src, "--deoccluder", ck / "deocc", "--fer", ck / "fer", "--size", 32, "--json"],
            "train-fer": ["train-fer", "--data", src, "--out", out / "fer", "--size", 32, "--max-steps", 1, "--batch-size", 4, "--no-progress"],
            "data": ["data", "--data", src, "--out", out / "data", "--size", 32]}


@pytest.mark.parametrize("kind", UNREADABLE)
def test_commands_refuse_unreadable_image(inputs, synth_dir, ckpts, tmp_path, kind):
    path = inputs[kind][0]
    src = folder_with(synth_dir, tmp_path / "src", path)
    for name, args in _image_commands(src, tmp_path / "out", ckpts[0]).items():
        assert_error(cli(*args), f"zz_{path.name}")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))   # nothing half-written


def test_commands_handle_odd_images(inputs, synth_dir, ckpts, tmp_path):
    "All four commands accept the odd images, and what they write holds the correctly decoded pixels."
    src = folder_with(synth_dir, tmp_path / "src", *(inputs[k][0] for k in ODD))
    cmds = _image_commands(src, tmp_path / "out", ckpts[0])
    ref = load_imagefolder(src)
    for name, args in cmds.items():
        out = assert_ok(cli(*args))
        if name == "evaluate": assert json.loads(out)["n"] == len(ref)
        if name == "train-fer": assert "train-fer: 1 steps" in out
    for k in ODD:   # the clean copies `deocc occlude` writes are the decoded images (EXIF applied, 16-bit scaled, ...)
        name = inputs[k][0]
        i = ref.meta["files"].index(f"happiness/zz_{name.name}")
        clean = load_image(tmp_path / "out" / "occ_clean" / "happiness" / f"zz_{name.stem}_v0.png")
        assert torch.equal(clean, ref.images[i]), k
    written = load_imagefolder(tmp_path / "out" / "data")                # `deocc data` renames files but writes the same pixels
    assert sorted(x.numpy().tobytes() for x in written.images) == sorted(x.numpy().tobytes() for x in ref.images)


def test_commands_missing_paths(synth_dir, ckpts, tmp_path):
    ck, nope = ckpts[0], tmp_path / "nope"
    assert_error(cli("occlude", "--src", nope, "--out", tmp_path / "o"), nope)
    assert_error(cli("evaluate", "--data", nope, "--deoccluder", ck / "deocc", "--fer", ck / "fer"), nope)
    assert_error(cli("evaluate", "--data", synth_dir, "--clean", nope, "--deoccluder", ck / "deocc", "--fer", ck / "fer", "--size", 32), nope)
    assert_error(cli("train-fer", "--data", nope, "--out", tmp_path / "t", "--no-progress"), nope)
    assert_error(cli("train", "--fer", nope, "--out", tmp_path / "t", "--no-progress"), nope, "train-fer")
    assert_error(cli("data", "--data", nope, "--out", tmp_path / "d"), nope)
    assert_error(cli("data", "--data", f"rafdb:{nope}", "--out", tmp_path / "d"), nope)
    assert list(tmp_path.iterdir()) == []                               # no output folder was created


# ----------------------------------------------------------------------------------------------------------------------
# checkpoints × from_pretrained / load_model / pretrained / commands / demo

CKPT_KINDS = ["truncated", "zero_weights", "other_arch", "bad_json", "not_a_checkpoint", "a_file", "missing"]

@pytest.mark.parametrize("kind", CKPT_KINDS)
def test_bad_checkpoints_everywhere(ckpts, synth_dir, tmp_path, kind):
    from deocc.models import Deoccluder, create_model, load_model
    from deocc.app import load_demo_models
    root, bad = ckpts
    path, hint = bad[kind]
    for fn in (lambda: Deoccluder.from_pretrained(path), lambda: load_model(path), lambda: create_model(path, role="deoccluder"),
               lambda: load_demo_models(root / "fer", path, False, False)):
        with pytest.raises(DeoccError) as e: fn()
        assert str(path) in str(e.value) and ("neither a checkpoint folder" in str(e.value) or hint in str(e.value)), str(e.value)
    assert_error(cli("evaluate", "--data", synth_dir, "--deoccluder", path, "--fer", root / "fer", "--size", 32), path)
    assert_error(cli("evaluate", "--data", synth_dir, "--deoccluder", root / "deocc", "--fer", path, "--size", 32), path)
    assert_error(cli("train", "--fer", path, "--data", synth_dir, "--out", tmp_path / "run", "--size", 32, "--no-progress"), path)
    assert not (tmp_path / "run" / "last").exists()


def test_checkpoint_of_the_wrong_kind(ckpts, synth_dir, tmp_path):
    "A FER where a de-occluder is expected and vice versa: refused by name, in every entry point."
    from deocc.models import FER, Deoccluder
    from deocc.app import load_demo_models
    root, _ = ckpts
    fer, deocc = root / "fer", root / "deocc"
    demo_error(lambda: Deoccluder.from_pretrained(fer), "is a 'fer' checkpoint, not 'deoccluder'")
    demo_error(lambda: FER.from_pretrained(deocc), "is a 'deoccluder' checkpoint, not 'fer'")
    demo_error(lambda: load_demo_models(fer, fer, False, False), f"--deoccluder {fer}: is a FER, but needs a de-occluder")
    demo_error(lambda: load_demo_models(deocc, deocc, False, False), f"--fer {deocc}: is a Deoccluder, but needs an expression classifier")
    demo_error(lambda: load_demo_models(fer, deocc, fer, False), f"--baseline {fer}: is a FER, but needs a de-occluder")
    demo_error(lambda: load_demo_models(fer, deocc, False, [str(deocc)]), f"--teachers {deocc}: is a Deoccluder")
    assert_error(cli("evaluate", "--data", synth_dir, "--deoccluder", fer, "--fer", fer, "--size", 32), "--deoccluder", fer)
    assert_error(cli("evaluate", "--data", synth_dir, "--deoccluder", deocc, "--fer", deocc, "--size", 32), "--fer", "expression classifier")
    assert_error(cli("evaluate", "--data", synth_dir, "--deoccluder", deocc, "--fer", fer, "--judge", deocc, "--size", 32), "--judge")
    assert_error(cli("train", "--fer", deocc, "--data", synth_dir, "--out", tmp_path / "run", "--size", 32, "--no-progress"), "--fer", "needs an expression classifier")


# ----------------------------------------------------------------------------------------------------------------------
# the demo: uploads and restore

@pytest.fixture(scope="module")
def demo(ckpts):
    from deocc.app import load_demo_models, DemoHandlers
    root, _ = ckpts
    models = load_demo_models(root / "fer", root / "deocc", root / "deocc", False)
    return models, DemoHandlers(models)


@pytest.mark.parametrize("kind", UNREADABLE + ["missing"])
def test_demo_upload_refuses(inputs, demo, tmp_path, kind):
    from deocc.app import face_from_upload
    path = inputs[kind][0] if kind != "missing" else tmp_path / "gone.png"
    for aligned in (True, False):
        demo_error(lambda: face_from_upload(path, aligned=aligned), path.name)
        assert str(path.parent) not in str(pytest.raises(DeoccError, face_from_upload, path).value)   # no server paths shown
    with pytest.warns(UserWarning):                                     # gr.Warning outside a request: a Python warning
        out = demo[1].upload(str(path), True)
    assert out[-1].startswith("⚠ ") and path.name in out[-1] and "Traceback" not in out[-1] and "internal error" not in out[-1]


@pytest.mark.parametrize("kind", [k for k in ODD if k != "1x1"])
def test_demo_upload_odd_images(big_inputs, demo, kind):
    "Odd images with a face of 32 px or more across: the crop holds the correctly decoded pixels, the handler shows it."
    from deocc.app import face_from_upload, _area
    path, expected, tol = big_inputs[kind]
    face, msg = face_from_upload(path, size=96, aligned=True)
    h, w = expected.shape[:2]; s = min(h, w)
    assert s >= 32
    crop = torch.from_numpy(expected).permute(2, 0, 1)[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    want = (_area(crop.float() / 255, 96) * 255).round()
    assert face.shape == (3, 96, 96) and face.dtype == torch.uint8
    assert_pixels(face, want, max(tol, 1), msg)
    assert f"{w}x{h}" in msg                                             # the viewed size (EXIF applied)
    out = demo[1].upload(str(path), True)
    assert not out[-1].startswith("⚠") and out[-1].startswith(msg), out[-1]
    assert out[0]["background"].startswith("data:image/png;base64,") and torch.equal(out[1].face, face)   # painter value, session


@pytest.mark.parametrize("kind", ODD)
def test_demo_upload_refuses_tiny_faces(inputs, demo, kind):
    "The odd images at their own size (1 to 24 px): too few pixels to read an expression, refused by name with the size."
    from deocc.app import face_from_upload
    path, expected, _ = inputs[kind]
    s = min(expected.shape[:2])
    hint = f"{path.name}: the face is only {s}x{s} px; at least 32 px across is needed"
    demo_error(lambda: face_from_upload(path, size=96, aligned=True), hint)
    with pytest.warns(UserWarning):                                     # gr.Warning outside a request: a Python warning
        out = demo[1].upload(str(path), True)
    assert out[-1].startswith("⚠ ") and hint in out[-1] and "internal error" not in out[-1], out[-1]


def test_demo_upload_exif_rotated_photo_is_detected(tmp_path):
    "A real photo stored sideways with an EXIF rotation: the face is found only if the rotation is applied."
    import importlib.util
    from deocc.app import face_from_upload
    spec = importlib.util.find_spec("skimage")
    if spec is None: pytest.skip("scikit-image (test-only: ships the public-domain astronaut photo) is not installed")
    photo = Image.open(Path(spec.origin).parent / "data" / "astronaut.png").convert("RGB")
    photo.save(tmp_path / "upright.jpg", quality=95)
    ex = Image.Exif(); ex[0x0112] = 6
    photo.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.jpg", quality=95, exif=ex.tobytes())
    photo.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways_no_exif.jpg", quality=95)
    demo_error(lambda: face_from_upload(tmp_path / "sideways_no_exif.jpg", size=64), "no face found")   # the contrast
    a, msg_a = face_from_upload(tmp_path / "upright.jpg", size=64)
    b, msg_b = face_from_upload(tmp_path / "sideways.jpg", size=64)
    assert "aligned on the eyes" in msg_b and "512x512" in msg_b, msg_b
    assert (a.float() - b.float()).abs().mean() < 10                  # the same crop, up to JPEG and detector jitter


def test_demo_restore_odd_inputs(demo, inputs):
    from deocc.app import restore_face, paint_data_url, _area, MAX_PAINT_BYTES
    models, h = demo
    # restore_face (tensors): a 1×1 face is upscaled; non-RGB tensors and bad masks are refused by name
    r = restore_face(torch.full((3, 1, 1), 200, dtype=torch.uint8), models=models)
    assert r["full"].shape == (3, 96, 96) and r["occluded"].sub(200 / 255).abs().max() < 1e-6
    assert 0 <= r["full"].min() and r["full"].max() <= 1 and abs(sum(r["probs"]["full"].values()) - 1) < 1e-4
    r = restore_face(torch.rand(3, 500, 500), torch.ones(1, 500, 500), "guided", models)
    assert r["full"].shape == (3, 96, 96) and r["mask"].mean() == 1
    x = torch.rand(3, 96, 96)
    for kw, hint in ((dict(image=torch.rand(4, 96, 96)), "image must be (3, H, W)"), (dict(image=torch.rand(96, 96)), "image must be (3, H, W)"),
                     (dict(image=x, mask=torch.ones(3, 96, 96)), "mask must be (1, H, W)"),
                     (dict(image=x, mode="guided"), "needs the painted mask"), (dict(image=x, mode="sideways"), "unknown mode")):
        demo_error(lambda: restore_face(**kw, models=models), hint)
    # the Restore handler as the page calls it: the face is the session's (here gallery examples: grey, RGBA, 16-bit, 1×1
    # files), the paint a PNG data URL of the canvas (4× the face); the occluded face keeps the decoded pixels outside the paint
    band = torch.zeros(4, 96, 96); band[:, 30:50, 10:80] = torch.tensor([0.1, 0.1, 0.1, 1.0]).view(4, 1, 1)
    for kind in ("grey", "rgba", "16bit", "1x1"):
        path, expected, tol = inputs[kind]
        start = h.example(str(path), None)
        assert start[-1].startswith(f"example {path.name}"), start[-1]
        want = _area(torch.from_numpy(expected).permute(2, 0, 1).float() / 255, 96) * 255
        assert (start[1].face.float() - want).abs().max() <= tol + 0.51, kind    # 16-bit scaled, not clipped; RGBA on white
        out = h.restore(paint_data_url(band), "grey", "blind", "auto", start[1])
        assert out[-1].startswith("restored in ") and "15% painted" in out[-1], out[-1]
        occluded = load_image(out[0][0])                                     # lossless WebP
        assert torch.equal(occluded[:, band[3] == 0], start[1].face[:, band[3] == 0]), kind
        assert (occluded[:, band[3] == 1].float() - 127.5).abs().max() <= 1   # the "grey" fill
        assert Image.open(out[1]).size == (96, 96) and torch.equal(load_image(out[-2]["value"])[0] > 127, band[3] > 0)
    # ... odd paint layers (scripts may send arrays): 1×1, 16-bit, grey + alpha, a palette with a transparent colour
    session = h.new_face("happiness", 0)[1]
    a = (band.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    pal = Image.fromarray((a[..., 3] > 0).astype(np.uint8), "P"); pal.putpalette([0, 0, 0, 26, 26, 26])
    for paint, painted in ((np.full((1, 1, 4), 255, np.uint8), 1.0), (a.astype(np.uint16) * 257, float(band[3].mean())),
                           (_png_url(Image.fromarray(a[..., [0, 3]], "LA")), float(band[3].mean())),
                           (_png_url(pal, transparency=0), float(band[3].mean()))):
        out = h.restore(paint, "brush colour", "guided", "auto", session)
        assert out[-1].startswith("restored in ") and f"{painted:.0%} painted" in out[-1], out[-1]
        assert torch.equal(load_image(out[-2]["value"])[0] > 127, torch.full((96, 96), True) if painted == 1 else band[3] > 0)
    # ... and what is not a face or not a painting gives a status line, not a traceback
    for paint, sess, hint in ((_png_url(Image.new("RGB", (384, 384))), session, "must be an RGBA image"),
                              ("data:text/plain;base64,aGk=", session, "must be an image data URL"),
                              ("data:image/png;base64,aGk=", session, "not a readable image"),
                              ("data:image/png;base64," + "A" * (MAX_PAINT_BYTES * 2), session, f"over {MAX_PAINT_BYTES // 1_000_000} MB"),
                              ("error: this page has no painter canvas; reload the page", session, "no painter canvas"),
                              (np.zeros((0, 0, 4), np.uint8), session, "empty image"),
                              (np.zeros((8, 8, 2), np.uint8), session, "expected an (H, W, 3|4) image"),
                              (paint_data_url(band), None, "no face yet")):
        with pytest.warns(UserWarning): out = h.restore(paint, "grey", "blind", "auto", sess)
        assert out[-1].startswith("⚠ ") and hint in out[-1] and "internal error" not in out[-1], out[-1]
    for args, hint in ((("sideways", "auto"), "unknown mode"), (("blind", "judge"), "unknown FER")):
        with pytest.warns(UserWarning): out = h.restore(paint_data_url(band), "grey", *args, session)
        assert out[-1].startswith("⚠ ") and hint in out[-1], out[-1]


def _png_url(im: Image.Image, **kw) -> str:
    "A PIL image as a PNG data URL, as the browser's canvas sends it."
    import base64
    buf = io.BytesIO(); im.save(buf, format="PNG", **kw)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# ----------------------------------------------------------------------------------------------------------------------
# output folders that cannot be written, and nothing written before is damaged

def test_unwritable_output_fails_first(synth_dir, ckpts, tmp_path):
    "Every command with --out refuses an unwritable folder at once (before rendering, loading or training)."
    ck = ckpts[0]
    afile = tmp_path / "a_file"; afile.write_text("x")
    commands = [["synth", "--n-identities", 80, "--size", 96], ["occlude", "--src", synth_dir], ["data", "--data", synth_dir],
                ["train-fer", "--data", synth_dir, "--size", 32, "--no-progress"],
                ["train", "--fer", ck / "fer", "--data", synth_dir, "--size", 32, "--no-progress"], ["reproduce", "--no-progress"]]
    for args in commands:
        for out, hint in ((NO_WRITE, "cannot write there"), (afile / "out", "a_file is a file"), (afile, "exists and is not a folder")):
            t0 = time.perf_counter()
            assert_error(cli(*args, "--out", out), out, hint)
            assert time.perf_counter() - t0 < 5, f"{args[0]}: failed only after doing the work"
    assert afile.read_text() == "x"


def test_failed_commands_leave_earlier_results_intact(synth_dir, inputs, tmp_path):
    # a finished `deocc occlude` run, then a forced rerun whose source has a corrupt image: all three folders untouched
    occ = tmp_path / "occ"
    assert_ok(cli("occlude", "--src", synth_dir, "--out", occ, "--variants", 1))
    folders = [occ, tmp_path / "occ_mask", tmp_path / "occ_clean"]
    before = tree_hashes(*folders)
    bad_src = folder_with(synth_dir, tmp_path / "bad_src", inputs["corrupt"][0])
    assert_error(cli("occlude", "--src", bad_src, "--out", occ, "--variants", 1, "--force"), "zz_corrupt.png")
    assert_error(cli("occlude", "--src", synth_dir, "--out", occ, "--variants", 1), "not empty", "--force")
    assert tree_hashes(*folders) == before
    # `deocc synth` / `deocc data` into a used folder: refused (before rendering) and unchanged
    before = tree_hashes(synth_dir)
    assert_error(cli("synth", "--out", synth_dir, "--n-identities", 2, "--frames", 1, "--size", 32), "not empty")
    assert_error(cli("data", "--data", bad_src, "--out", synth_dir, "--force", "--size", 32), "zz_corrupt.png")
    assert tree_hashes(synth_dir) == before
    # a training run: rerun without --resume, resume with bad data / a changed config / a truncated checkpoint
    run = tmp_path / "run"
    base = ["train-fer", "--out", run, "--size", 32, "--batch-size", 4, "--no-progress"]
    assert_ok(cli(*base, "--data", synth_dir, "--max-steps", 2))
    before = tree_hashes(run)
    assert_error(cli(*base, "--data", synth_dir, "--max-steps", 2), "already holds a training run", "--resume")
    assert_error(cli(*base, "--data", bad_src, "--max-steps", 3, "--resume"), "zz_corrupt.png")
    assert_error(cli(*base, "--data", synth_dir, "--max-steps", 3, "--resume", "--batch-size", 2), "config differs")
    assert tree_hashes(run) == before
    w = run / "last" / "model.safetensors"; w.write_bytes(w.read_bytes()[:5000]); before = tree_hashes(run)
    assert_error(cli(*base, "--data", synth_dir, "--max-steps", 3, "--resume"), "corrupt or truncated weights", w)
    assert tree_hashes(run) == before
    # `reproduce` into a results folder of another configuration: refused, unchanged
    res = tmp_path / "results"; res.mkdir(); (res / "config.json").write_text(json.dumps({"seeds": [7]}))
    (res / "results.md").write_text("# earlier results\n"); before = tree_hashes(res)
    assert_error(cli("reproduce", "--quick", "--out", res, "--no-progress"), "another configuration")
    assert tree_hashes(res) == before


# ----------------------------------------------------------------------------------------------------------------------
# the real console script (the in-process runs above cannot see interpreter-level output)

def test_console_script_one_line_errors(inputs, synth_dir, tmp_path):
    src = folder_with(synth_dir, tmp_path / "src", inputs["huge"][0])
    for args, needle in ((["occlude", "--src", src, "--out", tmp_path / "o"], "10000x10000 is too large"),
                         (["train-fer", "--out", NO_WRITE, "--no-progress"], "cannot write there")):
        r = subprocess.run([str(BIN / "deocc"), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT, env=ENV)
        assert_error((r.returncode, r.stdout, r.stderr), needle)


def console(*args, timeout: float = 120) -> tuple[int, str, str]:
    "Run the `deocc` console script in its own process group; one that has not finished after `timeout` s is killed, group and all."
    p = subprocess.Popen([str(BIN / "deocc"), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=ROOT, env=ENV, start_new_session=True)
    try: out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL); p.communicate()
        pytest.fail(f"deocc {' '.join(map(str, args))}: still running after {timeout:.0f} s, so the bad value was accepted")
    return p.returncode, out, err


def assert_refused(r: tuple[int, str, str], *needles: str):
    "Exit 2 and exactly one line on stderr (argparse's or deocc's) naming every needle, without a traceback."
    rc, _, err = r
    lines = err.strip().splitlines()
    assert rc == 2 and "Traceback" not in err and len(lines) == 1 and "error: " in lines[0], f"exit {rc}\nstderr: {err}"
    for n in needles: assert str(n) in lines[0], f"{n!r} not in {lines[0]!r}"


def test_out_of_range_values_refused_before_work(synth_dir, ckpts, tmp_path):
    "Negative coverages, sizes, epochs and step counts: one line and exit 2, and nothing written."
    ck = ckpts[0]
    assert_refused(console("occlude", "--src", synth_dir, "--out", tmp_path / "o", "--coverage", "-0.2,0.4"), "--coverage")
    assert_refused(console("evaluate", "--data", synth_dir, "--deoccluder", ck / "deocc", "--fer", ck / "fer", "--size", -1), "size", "-1")
    assert_refused(console("train-fer", "--epochs", -1, "--out", tmp_path / "t", "--no-progress"), "epochs", "-1")
    assert_refused(console("reproduce", "--set", "fer_steps=-1", "--out", tmp_path / "r", "--no-progress"), "fer_steps", "-1")
    assert not any(p.is_file() for p in tmp_path.rglob("*")), sorted(tmp_path.rglob("*"))


# ----------------------------------------------------------------------------------------------------------------------
# resume after SIGKILL

def _popen(args: list) -> subprocess.Popen:
    return subprocess.Popen([str(a) for a in args], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_when(p: subprocess.Popen, ready, timeout: float = 240):
    "SIGKILL `p` as soon as `ready()` is true; fail if it exits first."
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and p.poll() is None:
            if ready(): p.send_signal(signal.SIGKILL); break
            time.sleep(0.01)
    finally:
        if p.poll() is None and not ready(): p.kill()
        p.wait(60)
    assert p.returncode == -signal.SIGKILL, f"not killed (exit {p.returncode}): {p.stderr.read()[-2000:]}"


def _steps(run: Path) -> list[int]:
    with open(run / "steps.csv", newline="") as f: return [int(r["step"]) for r in csv.DictReader(f)]


def test_train_fer_killed_mid_epoch_resumes_exactly(tmp_path):
    from deocc.models import FER
    from deocc.models import read_weights
    total = 30                                                         # 48 training faces / batch 4 = 12 steps per epoch
    args = [BIN / "deocc", "train-fer", "--data", "synth:n_identities=10,frames=1", "--size", 32, "--batch-size", 4,
            "--max-steps", total, "--save-every", 1, "--no-progress"]
    run = tmp_path / "run"
    def saved_step() -> int:
        try: return json.loads((run / "last" / "trainer.json").read_text())["step"]
        except (OSError, ValueError, KeyError): return 0
    _kill_when(_popen(args + ["--out", run]), lambda: saved_step() >= 5)
    step = saved_step()
    assert 5 <= step < total
    # the last checkpoint is whole: exactly its files, every one loadable (written atomically, killed or not)
    assert sorted(p.name for p in (run / "last").iterdir()) == ["config.json", "model.safetensors", "train_config.json",
                                                                 "trainer.json", "trainer.safetensors"]
    FER.from_pretrained(run / "last"); read_weights(run / "last", "trainer.safetensors")
    r = subprocess.run([str(a) for a in args + ["--out", run, "--resume"]], capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"train-fer: {total} steps" in r.stdout
    assert _steps(run) == list(range(1, total + 1)) and saved_step() == total
    # and the resumed run ends where an uninterrupted one does
    ref = tmp_path / "ref"
    r = subprocess.run([str(a) for a in args + ["--out", ref]], capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = read_weights(run / "last"), read_weights(ref / "last")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# the README's main job, `deocc reproduce --quick`, shrunk to seconds with --set (the same flags a user has)
TINY_SETS = ["n_identities=6", "extra_identities=2", "frames=1", "size=32", "fer_steps=6", "judge_steps=2", "dstar_steps=2", "deocc_pretrain_steps=2",
             "deocc_steps=2", "test_fraction=0.34", "val_fraction=0.25", "batch_size=8"]
REPRODUCE = [BIN / "deocc", "reproduce", "--quick", *[a for s in TINY_SETS for a in ("--set", s)], "--no-progress", "--out"]
STAGES = ("seed0/fer", "shared/judge", "shared/dstar", "seed0/fer_occ", "seed0/pretrain", "seed0/no_expr", "seed0/full")   # the trained ones


def test_reproduce_killed_resumes_without_redoing_stages(tmp_path):
    out = tmp_path / "results"
    done = lambda: {s: (out / s / "done.json").stat().st_mtime_ns for s in STAGES if (out / s / "done.json").exists()}
    _kill_when(_popen([*REPRODUCE, out]), lambda: "seed0/fer" in done())
    before = done()
    assert "seed0/fer" in before and not (out / "results.json").exists()  # killed mid-way
    finals = {s: tree_hashes(out / s / "final") for s in before}
    r = subprocess.run([str(a) for a in (*REPRODUCE, out)], capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    after = done()
    assert set(after) == set(STAGES)
    assert {s: after[s] for s in before} == before                       # finished stages were not recomputed ...
    assert {s: tree_hashes(out / s / "final") for s in before} == finals   # ... nor rewritten
    res = json.loads((out / "results.json").read_text())
    assert set(res["stages"]) == {*STAGES, "seed0/eval", "seed0/eval_heldout"}   # the run has exactly these stages
    for clf in ("fer", "judge"):                                         # the training FER's column and the judge's
        assert set(res["aggregate"][clf]["accuracy"]) >= {"clean", "A", "B", "C", "D", "Dstar"}, clf
    assert res["config"]["size"] == 32 and res["config"]["seeds"] == [0]            # --quick with the --set overrides
    assert "Command: `deocc reproduce --quick --set" in (out / "results.md").read_text()   # the report names its command


def test_reproduce_stage_error_in_a_worker_is_one_line(tmp_path):
    "A bad setting found inside a worker process (`--jobs 2`) ends as the same one-line error as with `--jobs 1`, workers ended."
    import multiprocessing as mp
    for jobs in (1, 2):
        r = cli("reproduce", "--quick", "--set", "n_identities=0", "--jobs", jobs, "--out", tmp_path / f"j{jobs}", "--no-progress")
        assert_error(r, "need n_identities >= 1")
    deadline = time.monotonic() + 30
    while mp.active_children() and time.monotonic() < deadline: time.sleep(0.1)
    assert not mp.active_children(), "worker processes left running"
