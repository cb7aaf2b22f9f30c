"""Drive the web demo in headless Chromium as a user would: load a face, paint, erase, clear, auto-occlude, upload, Restore.

`python demo/screenshot.py --out docs/demo.png` launches the demo on loopback (bundled checkpoints, or `--fer DIR
--deoccluder DIR --baseline DIR`, folders or bundled names), auto-occludes an example face with sunglasses, restores
it and saves the README screenshot. `tests/test_app.py` uses the helpers below for the end-to-end browser test and
for timing the browser's round trip (`restore_round_trip`).
"""
from __future__ import annotations
import argparse, base64, io, os, sys, tempfile, time
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")
OUTPUT_IMAGES = ("#deocc-slider img", "#deocc-baseline img")   # what Restore fills with image files

def browser(width: int = 1600, height: int = 1900, downloads: str | Path | None = None):
    "A headless Chromium driven by the system chromedriver, with a fresh profile; files it downloads land in `downloads`."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    for f in FLAGS: o.add_argument(f)
    o.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='deocc-chromium-')}")
    o.add_argument(f"--window-size={width},{height}")
    o.binary_location = CHROMIUM
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    if downloads is not None:
        d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    d.set_script_timeout(120)
    return d

def status(driver) -> str:
    return driver.execute_script("const t = document.querySelector('#deocc-status textarea'); return t ? t.value : '';")

def wait_status(driver, prefixes: str | tuple[str, ...], timeout: float = 90, other_than: str | None = None) -> str:
    "Wait until the status line starts with one of `prefixes` (and differs from `other_than`); returns it."
    from selenium.webdriver.support.ui import WebDriverWait
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    ok = lambda d: (s := status(d)).startswith(prefixes) and s != other_than and s
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(ok)

def open_demo(driver, url: str, timeout: float = 120) -> str:
    "Open the demo and wait until it has loaded its first face; returns the status line."
    driver.get(url)
    s = wait_status(driver, "SynthFace face", timeout)
    wait_editor(driver)
    return s

def editor_id(driver) -> str:
    "The id of the face the painter shows ('' while it loads one)."
    return driver.execute_script("const c = document.querySelector('#deocc-editor canvas.face'); return c ? c.dataset.id || '' : '';")

def wait_editor(driver, other_than: str | None = None, timeout: float = 30) -> str:
    "Wait until the painter has drawn a face (one other than `other_than`); returns its id."
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: (i := editor_id(d)) and i != other_than and i)

def click(driver, elem_id: str) -> None:
    driver.execute_script(f"document.getElementById('{elem_id}').click()")

def upload(driver, elem_id: str, path: str | Path) -> None:
    "Give a file to an upload button, as the file dialog would (Gradio puts the hidden file input just before the button)."
    box = driver.execute_script(f"const b = document.getElementById('{elem_id}'); let e = b.previousElementSibling;"
                                "while (e && !(e.tagName === 'INPUT' && e.type === 'file')) e = e.previousElementSibling; return e;")
    if box is None: raise RuntimeError(f"#{elem_id}: no file input next to the button")
    box.send_keys(str(path))

def editor_images(driver) -> dict:
    "The painter's face canvas and paint layer as (H, W, 4) uint8 arrays, read from the page."
    import numpy as np
    from PIL import Image
    urls = driver.execute_script("return ['face', 'paint'].map((c) => document.querySelector('#deocc-editor canvas.' + c).toDataURL('image/png'));")
    dec = lambda u: np.array(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).convert("RGBA"))
    return dict(background=dec(urls[0]), layers=[dec(urls[1])])

def tool(driver, name: str) -> None:
    "Press a painter button by its label: Brush, Erase, Undo, Clear paint."
    driver.find_element("css selector", f"#deocc-editor button[aria-label='{name}']").click()
    time.sleep(0.3)

def stroke(driver, points: list[tuple[float, float]]) -> None:
    "Drag the mouse through `points`, given as (x, y) fractions of the face shown in the painter."
    from selenium.webdriver.common.action_chains import ActionChains
    canvas = driver.find_element("css selector", "#deocc-editor canvas.paint")
    side = min(canvas.size["width"], canvas.size["height"])
    at = lambda fx, fy: (int((fx - 0.5) * side), int((fy - 0.5) * side))   # offsets from the canvas centre
    x, y = at(*points[0])
    ac = ActionChains(driver).move_to_element_with_offset(canvas, x, y).click_and_hold()
    for p in points[1:]:
        nx, ny = at(*p)
        for k in range(1, 5): ac.move_by_offset(round((nx - x) * k / 4) - round((nx - x) * (k - 1) / 4), round((ny - y) * k / 4) - round((ny - y) * (k - 1) / 4))
        x, y = nx, ny
    ac.release().perform()
    time.sleep(0.5)

RESTORE_JS = """
const done = arguments[arguments.length - 1], sels = arguments[0];
const box = document.querySelector('#deocc-status textarea'), old = box.value;
const srcs = () => sels.map((s) => [...document.querySelectorAll(s)].map((i) => i.src).join('|'));
const before = srcs();
const t0 = performance.now();
document.getElementById('deocc-restore').click();
(function poll() {   // Gradio applies all outputs of a response at once: new image files (fresh names) mean all have arrived
  const s = srcs(), imgs = sels.flatMap((q) => [...document.querySelectorAll(q)]);
  const shown = s.every((x, k) => x !== before[k]) && imgs.length >= sels.length && imgs.every((i) => i.complete && i.naturalWidth > 0);
  if (shown || (box.value.startsWith('⚠') && box.value !== old)) done([performance.now() - t0, box.value]);
  else requestAnimationFrame(poll);
})();
"""

def restore_round_trip(driver) -> tuple[float, str]:
    "Click Restore and time, in the page, until every output is shown (the new images decoded): (seconds, status line)."
    ms, s = driver.execute_async_script(RESTORE_JS, list(OUTPUT_IMAGES))
    return ms / 1000, s

def output_image(driver, selector: str, index: int = 0):
    "An output image of the page as an (H, W, 3) uint8 array, fetched from its URL."
    import urllib.request
    import numpy as np
    from PIL import Image
    src = driver.execute_script(f"return [...document.querySelectorAll({selector!r})][{index}].src")
    with urllib.request.urlopen(src, timeout=30) as r: return np.array(Image.open(io.BytesIO(r.read())).convert("RGB"))

def download(driver, elem_id: str, folder: Path, timeout: float = 30) -> Path:
    "Click a download button and wait for its file in `folder` (the browser's download folder)."
    before = set(folder.iterdir())
    click(driver, elem_id)
    t0 = time.time()
    while time.time() - t0 < timeout:
        new = [p for p in set(folder.iterdir()) - before if not p.name.endswith(".crdownload")]
        if new: return new[0]
        time.sleep(0.2)
    raise TimeoutError(f"no file downloaded by #{elem_id} within {timeout} s")

def demo_screenshot(driver, url: str, out: Path, example: int = 3) -> str:
    "Open the demo, pick example `example`, auto-occlude it with sunglasses, Restore, and save a screenshot; returns the status."
    open_demo(driver, url)
    old = editor_id(driver)
    driver.find_element("css selector", f"#deocc-gallery button[aria-label='Thumbnail {example + 1} of 6']").click()
    wait_status(driver, "example "); old = wait_editor(driver, old)
    choose(driver, "deocc-kind", "sunglasses")
    click(driver, "deocc-auto"); wait_status(driver, "auto-occluded"); wait_editor(driver, old)
    _, s = restore_round_trip(driver)
    driver.execute_script("window.scrollTo(0, 0)")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    return s

def choose(driver, elem_id: str, option: str) -> None:
    "Pick `option` in a Gradio dropdown, as a user typing it and pressing Enter."
    from selenium.webdriver.common.keys import Keys
    box = driver.find_element("css selector", f"#{elem_id} input")
    box.click(); box.send_keys(Keys.CONTROL, "a"); box.send_keys(option); time.sleep(0.3); box.send_keys(Keys.ENTER); time.sleep(0.5)
    got = driver.execute_script(f"return document.querySelector('#{elem_id} input').value")
    if got != option: raise RuntimeError(f"#{elem_id}: chose {got!r}, not {option!r}")

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/demo.png", help="where to save the screenshot")
    for a in ("--fer", "--deoccluder", "--baseline"): p.add_argument(a, help="checkpoint folder or bundled name (default: bundled)")
    p.add_argument("--url", help="screenshot an already running demo instead of launching one")
    ns = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from deocc.app import launch, _free_port
    app, url = (None, ns.url) if ns.url else launch(ns.fer, ns.deoccluder, ns.baseline, port=_free_port(), block=False, quiet=True,
                                                    examples=Path(__file__).parent / "examples")
    d = browser()
    try: print(f"{ns.out}: {demo_screenshot(d, url, Path(ns.out))}")
    finally:
        d.quit()
        if app is not None: app.close()
    return 0

if __name__ == "__main__":
    sys.exit(main())
