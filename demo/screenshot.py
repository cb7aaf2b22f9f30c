"""Drive the web demo in headless Chromium: paint a band over the eyes, press Restore, wait for the results.

`python demo/screenshot.py --out docs/demo.png` launches the demo on loopback (bundled checkpoints, or `--fer DIR
--deoccluder DIR --baseline DIR`) and saves the README screenshot. `tests/test_app.py` uses `browser` and
`paint_and_restore` for the end-to-end browser test.
"""
from __future__ import annotations
import argparse, os, sys, tempfile, time
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")

def browser(width: int = 1600, height: int = 1900):
    "A headless Chromium driven by the system chromedriver, with a fresh profile."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    for f in FLAGS: o.add_argument(f)
    o.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='deocc-chromium-')}")
    o.add_argument(f"--window-size={width},{height}")
    o.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)

def _value(driver, elem_id: str) -> str:
    return driver.execute_script(f"const t = document.querySelector('#{elem_id} textarea'); return t ? t.value : '';")

def _img_width(driver, elem_id: str) -> int:
    return driver.execute_script(f"const i = document.querySelector('#{elem_id} img'); return i && i.complete ? i.naturalWidth : 0;")

def paint_and_restore(driver, url: str, example: int | None = None, timeout: float = 90) -> dict:
    "Open the demo (optionally click gallery example `example`), paint a band over the eyes, press Restore; returns what shows."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait
    wait = WebDriverWait(driver, timeout, poll_frequency=0.25)
    driver.get(url)
    wait.until(lambda d: "SynthFace face" in _value(d, "deocc-status"))          # the app loaded a face into the editor
    if example is not None:
        driver.find_element(By.CSS_SELECTOR, f"#deocc-gallery button[aria-label='Thumbnail {example + 1} of 6']").click()
        wait.until(lambda d: _value(d, "deocc-status").startswith("example "))
    canvas = max(driver.find_elements(By.CSS_SELECTOR, "#deocc-editor canvas"), key=lambda c: c.size["width"])
    time.sleep(1.0)                                                                 # let the editor draw the background
    w, h = canvas.size["width"], canvas.size["height"]
    side = min(w, h)                                                                # the face is a centred square
    ac = ActionChains(driver).move_to_element_with_offset(canvas, -int(side * 0.3), -int(side * 0.1)).click_and_hold()
    for _ in range(12): ac.move_by_offset(int(side * 0.05), 0)
    ac.release().perform()
    time.sleep(0.5)
    driver.find_element(By.ID, "deocc-restore").click()
    wait.until(lambda d: _value(d, "deocc-status").startswith(("restored", "⚠")))
    wait.until(lambda d: all(_img_width(d, i) > 0 for i in ("deocc-occluded", "deocc-full", "deocc-baseline", "deocc-overlay")))
    return dict(status=_value(driver, "deocc-status"),
                widths={i: _img_width(driver, i) for i in ("deocc-occluded", "deocc-full", "deocc-baseline", "deocc-overlay")},
                labels={i: driver.find_element(By.ID, i).text for i in ("deocc-p-occluded", "deocc-p-full", "deocc-p-baseline", "deocc-p-clean")},
                summary=driver.find_element(By.ID, "deocc-summary").text)

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/demo.png", help="where to save the screenshot")
    for a in ("--fer", "--deoccluder", "--baseline"): p.add_argument(a, help="checkpoint folder (default: bundled)")
    p.add_argument("--url", help="screenshot an already running demo instead of launching one")
    ns = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from deocc.app import launch, _free_port
    app, url = (None, ns.url) if ns.url else launch(ns.fer, ns.deoccluder, ns.baseline, guided=None, port=_free_port(),
                                                    block=False, quiet=True, examples=Path(__file__).parent / "examples")
    d = browser()
    try:
        r = paint_and_restore(d, url)
        d.execute_script("window.scrollTo(0, 0)")
        Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(ns.out))
        print(f"{ns.out}: {r['status']}")
    finally:
        d.quit()
        if app is not None: app.close()
    return 0

if __name__ == "__main__":
    sys.exit(main())
