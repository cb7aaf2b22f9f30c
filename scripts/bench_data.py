"""Memory and throughput of deocc's streamed datasets (a benchmark, not a test; the table goes into BENCHMARKS.md).

A folder of >= 100,000 SynthFace faces is rendered once, in chunks, as small JPEGs in an ImageFolder with a meta.csv of
subjects, and cached outside the repository (default ~/.cache/deocc/bench100k, plus bench10k: hard links to its first
10,000 faces). Every measurement then runs in a fresh subprocess with one thread, so that its peak RSS
(`getrusage(RUSAGE_SELF).ru_maxrss`) is its own; the peak PSS of the subprocess and its DataLoader workers together is
sampled every 0.2 s from /proc (a forked worker's own ru_maxrss counts the pages it shares with its parent, PSS does not):

  - cold: `load_dataset(..., stream=True)` into an empty record cache: index, decode (+ align), resize, write; faces/s
    with 0, 1 and 2 DataLoader workers (10k faces; 100k with 2 workers, which also builds the cache training reads);
  - warm: reopen the cache and read every face once in random order through `face_loader` (0, 1, 2 workers);
  - train: `deocc train-fer`'s own data path (`deocc.train.load_train_val`, training split, 15 % of its subjects for
    validation) and `train_fer` for --steps steps of the tiny FER (batch 32, 96 px), validation included; peak RSS on
    the streamed set at 10k and 100k faces, and on the in-memory path at 10k for comparison.

Usage: OMP_NUM_THREADS=1 python scripts/bench_data.py [--root DIR] [--out DIR] [--steps 200] [--faces 100000] [--small 10000] [--align-faces 2000]
Prints the markdown table at the end and writes it (and the raw JSON) to --out.
"""
import argparse, csv, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

IDS_PER_CHUNK, FRAMES = 100, 3          # one rendering chunk: 100 identities x 6 expressions x 3 frames = 1,800 faces
SIZE, JPEG_QUALITY = 96, 90


def render(root: str, n: int) -> dict:
    "Render at least `n` SynthFace faces into `root/<expression>/c<chunk>_<i>.jpg` + meta.csv; chunks already there are kept."
    import torch
    from PIL import Image
    from deocc.synth import synthface
    torch.set_num_threads(1); root = Path(root)
    per = IDS_PER_CHUNK * 6 * FRAMES; chunks = -(-n // per)
    (root / ".chunks").mkdir(parents=True, exist_ok=True)
    for k in range(chunks):
        done = root / ".chunks" / f"c{k:03d}.csv"
        if done.exists(): continue
        t = time.time(); fs = synthface(IDS_PER_CHUNK, FRAMES, SIZE, seed=1000 + k)
        rows = []
        for i, (img, l, d) in enumerate(zip(fs.images, fs.labels.tolist(), fs.identities.tolist())):
            rel = f"{fs.classes[l]}/c{k:03d}_{i:04d}.jpg"
            (root / rel).parent.mkdir(exist_ok=True)
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / rel, quality=JPEG_QUALITY)
            rows.append([rel, l, fs.classes[l], k * IDS_PER_CHUNK + d])
        write_csv(done, rows)
        print(f"chunk {k + 1}/{chunks}: {len(fs)} faces in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    rows = [r for k in range(chunks) for r in csv.reader(open(root / ".chunks" / f"c{k:03d}.csv"))]
    write_csv(root / "meta.csv", rows, header=True)
    return dict(n=len(rows), **peak_mb())


def write_csv(path: Path, rows, header: bool = False):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        if header: w.writerow(["file", "label", "expression", "identity"])
        w.writerows(rows)
    os.replace(tmp, path)


def first_faces(src: Path, dest: Path, n: int) -> Path:
    "`dest`: hard links to the first `n` faces of `src` (by chunk, then index) and their meta.csv rows."
    if (dest / "meta.csv").exists(): return dest
    rows = sorted(csv.DictReader(open(src / "meta.csv")), key=lambda r: Path(r["file"]).name)[:n]
    for r in rows:
        (dest / r["file"]).parent.mkdir(parents=True, exist_ok=True)
        if not (dest / r["file"]).exists(): os.link(src / r["file"], dest / r["file"])
    write_csv(dest / "meta.csv", [[r["file"], r["label"], r["expression"], r["identity"]] for r in rows], header=True)
    return dest


def peak_mb() -> dict:
    "Peak RSS of this process (getrusage, and the kernel's VmHWM of its own image) and of its largest child (the workers)."
    self_kb, kids_kb = (resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return dict(rss_mb=round(self_kb / 1024), hwm_mb=round(hwm / 1024), workers_rss_mb=round(kids_kb / 1024))


def measure_cold(folder: str, cache: str, workers: int, align: bool = False, split: str = "train") -> dict:
    from deocc.data import load_dataset
    t = time.time()
    fs = load_dataset(f"imagefolder:{folder}", split=split, size=SIZE, align=align, stream=True, cache_dir=cache, workers=workers)
    dt = time.time() - t
    return dict(n=len(fs), seconds=round(dt, 1), faces_per_s=round(len(fs) / dt), **peak_mb())


def measure_warm(folder: str, cache: str, workers: int, split: str = "train") -> dict:
    from deocc.data import load_dataset, face_loader
    t = time.time(); fs = load_dataset(f"imagefolder:{folder}", split=split, size=SIZE, stream=True, cache_dir=cache); reopen = time.time() - t
    t = time.time(); n = sum(len(y) for _, y in face_loader(fs, batch_size=256, workers=workers, drop_last=False)); dt = time.time() - t
    return dict(n=n, reopen_s=round(reopen, 1), seconds=round(dt, 1), faces_per_s=round(n / dt), **peak_mb())


def measure_train(folder: str, cache: str, steps: int, stream: bool) -> dict:
    from deocc.train import load_train_val, fer_train_config, train_fer
    spec = f"imagefolder:{folder}?stream={str(stream).lower()},cache_dir={cache}"
    t = time.time(); train, val = load_train_val(spec, SIZE, 0); load = time.time() - t
    cfg = fer_train_config("tiny", max_steps=steps, batch_size=32)
    t = time.time(); _, hist = train_fer(train, val, cfg, progress=False); dt = time.time() - t
    return dict(n_train=len(train), n_val=len(val), load_s=round(load, 1), train_s=round(dt, 1), steps=hist.steps[-1]["step"],
                val_acc=round(hist[-1].get("val_acc", float("nan")), 3), streamed=type(train).__name__, **peak_mb())


MEASURES = dict(render=render, cold=measure_cold, warm=measure_warm, train=measure_train)


def _tree(pid: int) -> list[int]:
    "`pid` and its descendants."
    out, todo = [], [pid]
    while todo:
        p = todo.pop(); out.append(p)
        for t in Path(f"/proc/{p}/task").glob("*/children"):
            try: todo += [int(c) for c in t.read_text().split()]
            except OSError: pass
    return out

def _pss_kb(pid: int) -> int:
    try: return next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
    except (OSError, StopIteration): return 0

def run(kind: str, log: Path, **kw) -> dict:
    """One measurement in a fresh one-thread subprocess; its JSON result (also appended to `log`). Linux carries the peak
    RSS of the parent over exec into the child's ru_maxrss, so this (parent) process never imports torch and stays small."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t, peak = time.time(), 0
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen([sys.executable, __file__, "--measure", kind, json.dumps(kw)], stdout=out, text=True, env=env)
        while p.poll() is None:      # the whole tree's proportional set size: shared pages counted once, split fairly
            peak = max(peak, sum(_pss_kb(q) for q in _tree(p.pid))); time.sleep(0.2)
        if p.returncode: raise SystemExit(f"{kind} {kw} failed (exit {p.returncode}); its stderr is above")
        out.seek(0); last = out.read().strip().splitlines()[-1]
    res = dict(kind=kind, **kw); res.update(json.loads(last), tree_pss_mb=round(peak / 1024), wall_s=round(time.time() - t, 1))
    with open(log, "a") as f: f.write(json.dumps(res) + "\n")
    print(json.dumps(res), flush=True)
    return res


def table(results: list[dict], faces: dict[str, int]) -> str:
    "The markdown table for BENCHMARKS.md."
    size = {v: k for k, v in faces.items()}
    lines = ["| set | measurement | workers | faces | faces/s | peak RSS, main process (MB) | peak PSS, main + workers (MB) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        what = {"cold": "cold: index, decode" + (", align" if r.get("align") else "") + ", resize, write cache",
                "warm": "warm: read every face from the cache (random order)",
                "train": f"train-fer, {r.get('steps')} steps + validation, " + ("streamed" if r.get("stream") else "in memory")}[r["kind"]]
        n = r.get("n") or f"{r['n_train']} + {r['n_val']} val"
        speed = r.get("faces_per_s", "-")
        lines.append(f"| {size[r['folder']]} | {what} | {r.get('workers', '-')} | {n} | {speed} | {r['rss_mb']} | {r['tree_pss_mb']} |")
    return "\n".join(lines)


def bench(root: Path, out: Path, steps: int, n_big: int, n_small: int, n_align: int) -> str:
    out.mkdir(parents=True, exist_ok=True); log = out / "bench_data.jsonl"; log.write_text("")
    name = lambda n: f"{n // 1000}k" if n % 1000 == 0 else str(n)
    big = root / f"bench{name(n_big)}"
    if not (big / "meta.csv").exists(): run("render", log, root=str(big), n=n_big)
    small = first_faces(big, root / f"bench{name(n_small)}", n_small)
    few = first_faces(big, root / f"bench{name(n_align)}", n_align)     # alignment is slow: measured on fewer faces
    faces = {name(n_align): str(few), name(n_small): str(small), name(n_big): str(big)}
    a, s, b = faces
    cache = out / "records"; res = []
    shutil.rmtree(cache, ignore_errors=True)      # every cold run starts from an empty cache
    for align, key in ((False, s), (True, a)):
        for w in (0, 1, 2):
            tmp = tempfile.mkdtemp(dir=out, prefix="cold-")
            res.append(run("cold", log, folder=faces[key], cache=tmp, workers=w, align=align)); shutil.rmtree(tmp)
    res.append(run("cold", log, folder=faces[s], cache=str(cache), workers=2))            # the caches training reads
    res.append(run("cold", log, folder=faces[b], cache=str(cache), workers=2))
    for key in (s, b):
        for w in (0, 1, 2): res.append(run("warm", log, folder=faces[key], cache=str(cache), workers=w))
    for key in (s, b): res.append(run("train", log, folder=faces[key], cache=str(cache), steps=steps, stream=True))
    res.append(run("train", log, folder=faces[s], cache=str(cache), steps=steps, stream=False))
    md = table(res, faces)
    (out / "bench_data.md").write_text(md + "\n")
    return md


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="~/.cache/deocc", help="where the rendered face folders are kept")
    p.add_argument("--out", default="/tmp/deocc_h5", help="record caches, raw results (bench_data.jsonl) and the table")
    p.add_argument("--steps", type=int, default=200, help="FER training steps per memory measurement")
    p.add_argument("--faces", type=int, default=100_000, help="size of the large set (at least this many faces)")
    p.add_argument("--small", type=int, default=10_000, help="size of the small set (the large set's first faces)")
    p.add_argument("--align-faces", type=int, default=2_000, help="faces of the aligned cold runs (the large set's first)")
    p.add_argument("--measure", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)   # internal: one measurement
    a = p.parse_args()
    if a.measure:
        import torch; torch.set_num_threads(1)
        print(json.dumps(MEASURES[a.measure[0]](**json.loads(a.measure[1])))); return
    print(bench(Path(a.root).expanduser(), Path(a.out), a.steps, a.faces, a.small, a.align_faces))


if __name__ == "__main__": main()
