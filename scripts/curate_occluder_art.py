#!/usr/bin/env python
"""Curate the object-art occluders in deocc/assets/occluders/ from the npm package emoji-datasource-google.

The art is Google's Noto Emoji (Apache-2.0), as 64 px RGBA PNGs in emoji-datasource-google (MIT). This script documents
and reproduces the curation; deocc itself never downloads anything:

    python scripts/curate_occluder_art.py                       # runs `npm pack emoji-datasource-google@16.0.0` in a temp dir
    python scripts/curate_occluder_art.py --tarball emoji-datasource-google-16.0.0.tgz

It writes, replacing the folder atomically:
- one PNG per sprite in CURATION (copied byte for byte, except `mask_1f637.png`, see `medical_mask`);
- manifest.json: per sprite its file, category, place on the face (eyes, mouth, lower_face, anywhere), source image,
  Unicode name and whether it may be mirrored;
- LICENSE-ART (Apache-2.0, the Noto Emoji art), LICENSE-PACKAGE (MIT, the npm package) and ATTRIBUTION.md.

Which categories training may see is not decided here: `deocc.occlude.OcclusionConfig.art_heldout` splits them.
"""
from __future__ import annotations
import argparse, hashlib, io, json, shutil, subprocess, sys, tarfile, tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from deocc.core import atomic_dir  # noqa: E402

PACKAGE, VERSION = "emoji-datasource-google", "16.0.0"
APACHE = Path("/usr/share/common-licenses/Apache-2.0")   # the verbatim licence text (Debian's base-files)
PLACES = ("eyes", "mouth", "lower_face", "anywhere")

# (image in img/google/64/ without .png, category, place): objects that really cover faces in photos
CURATION: list[tuple[str, str, str]] = [
    # hands, five skin tones, several gestures
    ("270b-1f3fb", "hand", "mouth"), ("270b-1f3fd", "hand", "mouth"), ("270b-1f3ff", "hand", "eyes"),
    ("1f91a-1f3fc", "hand", "anywhere"), ("1f91a-1f3fe", "hand", "mouth"), ("1f590-1f3fb", "hand", "anywhere"),
    ("1f590-1f3fe", "hand", "anywhere"), ("270c-1f3fc", "hand", "eyes"), ("1f91e-1f3fd", "hand", "anywhere"),
    ("1f44c-1f3fb", "hand", "eyes"), ("1f919-1f3fe", "hand", "lower_face"), ("1faf1-1f3fb", "hand", "mouth"),
    # drinks
    ("2615", "drink", "mouth"), ("1f375", "drink", "mouth"), ("1f964", "drink", "mouth"), ("1f9cb", "drink", "mouth"),
    ("1f37a", "drink", "mouth"), ("1f95b", "drink", "mouth"), ("1f377", "drink", "mouth"),
    ("1f4f1", "phone", "anywhere"), ("1f4de", "phone", "lower_face"),
    ("1f3a4", "microphone", "mouth"), ("1f399-fe0f", "microphone", "mouth"),
    ("1f453", "glasses", "eyes"), ("1f576-fe0f", "glasses", "eyes"),
    ("1f637", "mask", "lower_face"),                     # the mask only, cut from FACE WITH MEDICAL MASK
    ("1f9e3", "scarf", "lower_face"),
    ("1f37c", "bottle", "mouth"), ("1f9f4", "bottle", "mouth"), ("1f37e", "bottle", "mouth"), ("1f9c3", "bottle", "mouth"),
    # food
    ("1f354", "food", "mouth"), ("1f366", "food", "mouth"), ("1f32d", "food", "mouth"), ("1f355", "food", "mouth"),
    ("1f96a", "food", "mouth"), ("1f369", "food", "mouth"), ("1f34e", "food", "mouth"), ("1f34c", "food", "mouth"),
    ("1f4d6", "book", "anywhere"), ("1f4d5", "book", "lower_face"), ("1f4da", "book", "lower_face"), ("1f4f0", "book", "anywhere"),
    ("1f339", "flower", "anywhere"), ("1f337", "flower", "anywhere"), ("1f490", "flower", "anywhere"),
    ("1f33b", "flower", "anywhere"), ("1f33a", "flower", "anywhere"),
    ("1f97d", "goggles", "eyes"), ("1f93f", "goggles", "eyes"),
]
MASK_SATURATION, MASK_VALUE = (0.1, 0.6), 0.45   # 1f637's mask: grey-white (saturation ramps from opaque to
                                                # transparent between these two values, and bright), unlike the yellow face


def npm_pack(workdir: Path) -> Path:
    "`npm pack PACKAGE@VERSION` in `workdir`; returns the tarball."
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}"], cwd=workdir, check=True, capture_output=True)
    return workdir / f"{PACKAGE}-{VERSION}.tgz"


def medical_mask(png: bytes) -> bytes:
    """The mask of FACE WITH MEDICAL MASK: keep grey-white pixels (the mask and its ear loops), drop the face, re-centre.
    Opacity falls off with saturation, so the cut edge stays anti-aliased; edge pixels take the mask's own tint."""
    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.float32) / 255
    mx, mn = a[..., :3].max(-1), a[..., :3].min(-1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    lo, hi = MASK_SATURATION
    keep = np.clip((hi - sat) / (hi - lo), 0, 1) * (mx > MASK_VALUE)
    core = (keep == 1) & (a[..., 3] > 0.99)
    tint = a[..., :3][core].mean(0) / mx[core].mean()                   # the mask's colour per unit of brightness
    out = a.copy(); out[..., 3] *= keep
    edge = (keep > 0) & (keep < 1)
    out[..., :3][edge] = np.clip(mx[edge, None] * tint, 0, 1)
    ys = np.nonzero((out[..., 3] > 0).any(1))[0]
    out = np.roll(out, (out.shape[0] - 1 - ys[-1] - ys[0]) // 2, axis=0)   # centre the mask vertically on the canvas
    buf = io.BytesIO(); Image.fromarray((out * 255).round().astype(np.uint8), "RGBA").save(buf, "PNG", optimize=True)
    return buf.getvalue()


def unicode_names(emoji_json: dict) -> dict[str, str]:
    "Image stem → Unicode name (with the skin tone for modifier variants)."
    names = {}
    for e in emoji_json:
        names[Path(e["image"]).stem] = e["name"]
        for tone, v in (e.get("skin_variations") or {}).items():
            names[Path(v["image"]).stem] = f'{e["name"]}, skin tone {tone}'
    return names


def attribution(tar_sha: str, sprites: list[dict]) -> str:
    lines = [f"# Object-art occluders", "",
             f"The {len(sprites)} PNGs in this folder are images of Google's Noto Emoji (https://github.com/googlefonts/noto-emoji),",
             "licensed under the Apache License, Version 2.0 (LICENSE-ART).",
             f"They were taken from the npm package `{PACKAGE}` version {VERSION} (img/google/64/; its README names",
             "Noto Emoji v2.048 as the source), by Cal Henderson and contributors, MIT licence (LICENSE-PACKAGE).",
             f"Tarball sha256: {tar_sha}.", "",
             "Changes: every file is an unmodified copy, renamed `<category>_<original name>.png`, except",
             "`mask_1f637.png`, which keeps only the mask and ear loops of FACE WITH MEDICAL MASK (1f637.png): pixels of",
             f"value > {MASK_VALUE}, opaque below saturation {MASK_SATURATION[0]} and fading to transparent at {MASK_SATURATION[1]}",
             "(edge pixels recoloured with the mask's own tint), shifted to the vertical centre of the canvas.",
             "Reproduce with `python scripts/curate_occluder_art.py`.", "", "| file | source | Unicode name |", "|---|---|---|"]
    lines += [f'| {s["file"]} | img/google/64/{s["source"]} | {s["name"]} |' for s in sprites]
    return "\n".join(lines) + "\n"


def curate(tarball: Path, out: Path) -> list[dict]:
    "Write the curated sprites, manifest, licences and attribution from `tarball` to `out`."
    if not APACHE.is_file(): raise SystemExit(f"{APACHE} not found: install Debian's base-files or copy the Apache-2.0 text there")
    with tarfile.open(tarball) as tf:
        read = lambda name: tf.extractfile(f"package/{name}").read()
        names, sprites, files = unicode_names(json.loads(read("emoji.json"))), [], {}
        for stem, cat, place in CURATION:
            assert place in PLACES, place
            png = read(f"img/google/64/{stem}.png")
            name = f"{cat}_{stem}.png"
            files[name] = medical_mask(png) if cat == "mask" else png
            sprites.append(dict(file=name, category=cat, place=place, source=f"{stem}.png", name=names[stem], flip=True))
        mit = read("LICENSE")
    manifest = dict(source=dict(package=PACKAGE, version=VERSION, art="Noto Emoji (Google), Apache-2.0", size=64),
                    places=list(PLACES), sprites=sprites)
    with atomic_dir(out) as tmp:
        for name, data in files.items(): (tmp / name).write_bytes(data)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.copyfile(APACHE, tmp / "LICENSE-ART")
        (tmp / "LICENSE-PACKAGE").write_bytes(mit)
        (tmp / "ATTRIBUTION.md").write_text(attribution(hashlib.sha256(tarball.read_bytes()).hexdigest(), sprites))
        tmp.chmod(0o755)                                  # mkdtemp makes the folder private
    return sprites


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tarball", type=Path, help=f"{PACKAGE}-{VERSION}.tgz (default: npm pack it into a temp dir)")
    p.add_argument("--out", type=Path, default=ROOT / "deocc" / "assets" / "occluders")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = a.tarball or npm_pack(Path(tmp))
        sprites = curate(tarball, a.out)
    size = sum(f.stat().st_size for f in a.out.glob("*.png"))
    cats = sorted({s["category"] for s in sprites})
    print(f"wrote {len(sprites)} sprites ({size / 1024:.0f} KiB of PNG) in {len(cats)} categories {cats} to {a.out}")


if __name__ == "__main__":
    main()
