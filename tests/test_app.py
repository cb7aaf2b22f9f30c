"""The web demo served on loopback: its HTTP API through gradio_client, robustness to bad uploads, 20 concurrent users,
the `deocc demo` command, and a real headless-Chromium session that paints, restores and screenshots."""
import importlib.util, os, urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deocc.core import EXPRESSIONS

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("DEOCC_ARTIFACTS", ROOT / "artifacts"))

@pytest.fixture(scope="module")
def server(tiny_ckpts):
    "The demo served on loopback for this module, on a free port."
    from deocc.app import launch, _free_port
    app, url = launch(tiny_ckpts / "fer", tiny_ckpts / "full", tiny_ckpts / "no_expr", guided=False, port=_free_port(),
                      block=False, quiet=True, examples=ROOT / "demo" / "examples" if (ROOT / "demo" / "examples").is_dir() else None)
    assert url.startswith("http://127.0.0.1:")
    yield url
    app.close()

@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server, verbose=False, analytics_enabled=False)

def _face_and_band():
    from deocc.app import synth_face
    face = synth_face("surprise", 5)
    layer = torch.zeros(4, 96, 96); layer[:3] = 0.1; layer[3, 32:46, 18:78] = 1      # a dark band over the eyes
    return face, layer

def _confidences(label: dict) -> dict:
    return {c["label"]: c["confidence"] for c in label["confidences"]}

def _check_restore(out, painted: float):
    "The 12 outputs of /restore: 4 RGB 96×96 images, 4 distributions over the 6 expressions, summary, 2 PNGs, status."
    assert len(out) == 12
    for path in out[:4]:
        a = np.asarray(Image.open(path)); assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    for label in out[4:8]:
        p = _confidences(label)
        assert sorted(p) == sorted(EXPRESSIONS)
        assert abs(sum(p.values()) - 1) < 2e-3 and min(p.values()) >= 0
    assert "| C: full model |" in out[8] and "| B: no L_expr |" in out[8]
    res, mask = Image.open(out[9]), Image.open(out[10])
    assert res.format == "PNG" and res.size == (96, 96) and res.mode == "RGB"
    m = np.asarray(mask); assert mask.format == "PNG" and m.shape == (96, 96) and set(np.unique(m)) <= {0, 255}
    assert abs((m > 0).mean() - painted) < 0.02
    assert out[11].startswith("restored in ") and "Traceback" not in out[11]
    return m

def test_api_restore_round_trip(client, tmp_path):
    from deocc.app import editor_payload
    face, layer = _face_and_band()
    out = client.predict(editor_payload(face, layer, tmp_path), "brush colour", "blind", api_name="/restore")
    m = _check_restore(out, painted=float(layer[3].mean()))
    occluded = np.asarray(Image.open(out[0]))
    assert np.abs(occluded[m > 0].astype(int) - 26).max() <= 1                      # painted pixels are the brush colour
    clean = face.permute(1, 2, 0).numpy()
    assert np.array_equal(occluded[m == 0], clean[m == 0])                            # the rest is the face
    overlay = np.asarray(Image.open(out[3])).astype(int)
    assert (overlay[m > 0, 0] > overlay[m > 0, 2]).all()                              # the mask is drawn in red
    # guided mode without a guided checkpoint: B and C are composited inside the mask and the status says so
    g = client.predict(editor_payload(face, layer, tmp_path), "noise", "guided", api_name="/restore")
    _check_restore(g, painted=float(layer[3].mean()))
    assert "composited inside the painted mask" in g[11]
    full = np.asarray(Image.open(g[1]))
    assert np.array_equal(full[m == 0], clean[m == 0])

def test_api_new_face_and_nothing_painted(client, tmp_path):
    ed, status = client.predict("fear", 7, api_name="/new_face")
    assert status.startswith("SynthFace face: fear, seed 7")
    assert np.asarray(Image.open(ed["background"])).shape[:2] == (384, 384)
    from deocc.app import editor_payload, synth_face
    out = client.predict(editor_payload(synth_face("fear", 7), None, tmp_path), "brush colour", "blind", api_name="/restore")
    _check_restore(out, painted=0.0)
    assert "nothing painted" in out[11]

def test_api_auto_occlude(client, tmp_path):
    pytest.importorskip("deocc.occlude", reason="deocc.occlude (occluder generator) is not in this checkout yet")
    from deocc.app import editor_payload, synth_face
    ed, status = client.predict(editor_payload(synth_face("anger", 2), None, tmp_path), "sunglasses", 0.3, 4, api_name="/auto_occlude")
    assert status.startswith("auto-occluded: sunglasses"), status
    assert len(ed["layers"]) == 1
    alpha = np.asarray(Image.open(ed["layers"][0]).convert("RGBA"))[..., 3]
    assert 0.05 < (alpha > 127).mean() < 0.6

def _photo(face_side=220, frame=(420, 360)):
    "A SynthFace face inside a larger grey frame, like a photo with a face in it: (3, H, W) uint8."
    from deocc.app import synth_face
    face = torch.nn.functional.interpolate(synth_face("happiness", 2)[None].float(), size=(face_side, face_side), mode="bilinear")[0]
    img = torch.full((3, *frame), 190.0); y, x = (frame[0] - face_side) // 2, (frame[1] - face_side) // 2
    img[:, y:y + face_side, x:x + face_side] = face
    return img.round().clamp(0, 255).to(torch.uint8)

def _uploads(d: Path) -> dict:
    "Awkward uploads: name → (path, expected status start)."
    photo = _photo(); pil = Image.fromarray(photo.permute(1, 2, 0).numpy())
    pil.save(d / "photo.png")
    pil.convert("L").save(d / "grey.png")
    rgba = pil.convert("RGBA"); rgba.putalpha(Image.new("L", pil.size, 255)); rgba.save(d / "rgba.png")
    exif = Image.Exif(); exif[0x0112] = 6                                        # "rotate 90° CW to display"
    pil.rotate(90, expand=True).save(d / "exif.jpg", quality=95, exif=exif.tobytes())
    pil.resize((12, 14)).save(d / "tiny.png")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    (d / "empty.png").write_bytes(b"")
    (d / "notes.png").write_text("not an image at all")
    Image.new("L", (9000, 8000)).save(d / "huge.png")                             # 72 Mpx: over the pixel limit
    return {"photo.png": "photo.png: 360x420, face", "grey.png": "grey.png: 360x420, face", "rgba.png": "rgba.png: 360x420, face",
            "exif.jpg": "exif.jpg: 360x420, face", "tiny.png": "⚠ no face found in tiny.png",
            "corrupt.jpg": "⚠ corrupt.jpg: not a readable image", "empty.png": "⚠ empty.png: empty file",
            "notes.png": "⚠ notes.png: not a readable image", "huge.png": "⚠ huge.png: 9000x8000 is too large"}

def test_api_uploads_give_friendly_messages(client, tmp_path):
    from gradio_client import handle_file
    for name, expected in _uploads(tmp_path).items():
        ed, status = client.predict(handle_file(str(tmp_path / name)), False, api_name="/upload")
        assert status.startswith(expected), f"{name}: {status!r}"
        assert "Traceback" not in status and "/tmp" not in status
        if not expected.startswith("⚠"):
            assert np.asarray(Image.open(ed["background"])).shape == (384, 384, 3), name
    ed, status = client.predict(handle_file(str(tmp_path / "tiny.png")), True, api_name="/upload")   # "already aligned"
    assert status.startswith("tiny.png: 12x14, used as an aligned face")

def test_twenty_concurrent_restores(client, server, tmp_path):
    "20 users at once through the queue: all answered, identical to a lone request, and the server stays up."
    from deocc.app import editor_payload
    face, layer = _face_and_band()
    arg = editor_payload(face, layer, tmp_path)
    ref = client.predict(arg, "brush colour", "blind", api_name="/restore")
    jobs = [client.submit(arg, "brush colour", "blind", api_name="/restore") for _ in range(20)]
    outs = [j.result(timeout=300) for j in jobs]
    assert len(outs) == 20
    for out in outs:
        _check_restore(out, painted=float(layer[3].mean()))
        for a, b in zip(out[4:8], ref[4:8]):
            pa, pb = _confidences(a), _confidences(b)
            assert all(abs(pa[k] - pb[k]) < 2e-3 for k in EXPRESSIONS)
    assert len({o[9] for o in outs}) == 20                                        # every user gets their own result file
    with urllib.request.urlopen(server, timeout=30) as r: assert r.status == 200
    assert client.predict("anger", 1, api_name="/new_face")[1].startswith("SynthFace face: anger")

def test_demo_command_errors_and_help(run_deocc, tiny_ckpts, tmp_path):
    r = run_deocc("demo", "--help", check=0)
    assert "--deoccluder" in r.stdout and "--port" in r.stdout and "127.0.0.1" in r.stdout
    r = run_deocc("demo", "--fer", tmp_path / "missing", "--deoccluder", tiny_ckpts / "full", check=2)
    assert "no such checkpoint folder" in r.stderr and "Traceback" not in r.stderr
    r = run_deocc("demo", "--fer", tiny_ckpts / "full", "--deoccluder", tiny_ckpts / "full", check=2)
    assert "--fer needs a FER checkpoint" in r.stderr
    r = run_deocc("demo", "--fer", tiny_ckpts / "fer", "--deoccluder", tiny_ckpts / "full", "--port", 70000, check=2)
    assert "--port 70000 out of range" in r.stderr

def _driver_module():
    spec = importlib.util.spec_from_file_location("deocc_demo_screenshot", ROOT / "demo" / "screenshot.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium chromium-driver)")
def test_browser_paint_and_restore(server):
    "A real browser: paint a band with the mouse, press Restore, see both restorations and the bar charts."
    shot = _driver_module()
    d = shot.browser()
    try:
        r = shot.paint_and_restore(d, server, example=0)                         # the "anger" example of the gallery
        d.execute_script("window.scrollTo(0, 0)")
        ARTIFACTS.mkdir(parents=True, exist_ok=True); d.save_screenshot(str(ARTIFACTS / "demo_browser.png"))
    finally:
        d.quit()
    assert r["status"].startswith("restored in "), r["status"]
    painted = float(r["status"].split(", ")[1].split("%")[0])
    assert 1 <= painted <= 40                                                     # the mouse stroke reached the server as a mask
    assert all(w == 96 for w in r["widths"].values()), r["widths"]
    for elem, text in r["labels"].items():
        assert sum(e in text for e in EXPRESSIONS) == 6 and "%" in text, (elem, text)
    assert "Ground truth: anger" in r["summary"]
    assert (ARTIFACTS / "demo_browser.png").stat().st_size > 10_000
