"""The record's picture of the app, doc/app.png: its page after a 7 drawn on the sketchpad, in headless Chromium.

    python -m tools.app_screenshot --overwrite    # serves s6_app.py on a free port, draws a 7 -> doc/app.png

Needs Playwright (requirements-test.txt) and Chromium at /usr/bin/chromium (apt install chromium). The app's
browser tests drive the page with the functions here.
"""

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.config import UserError
from s6.files import write_atomically, writing

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1200, "height": 1000}
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]  # a stroke: points in [0, 1] of the drawing area


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving(url):
    try:
        urllib.request.urlopen(url, timeout=2)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def app_served(log, *flags, timeout=120):
    """s6_app.py with `flags`, serving on a free port on this computer until the block ends: yields its URL. Its
    output goes to the file `log` (a pipe nobody reads could fill up); a UserError, with that output, where it does
    not start serving within `timeout` seconds."""
    port = free_port()
    with Path(log).open("w") as output:
        server = subprocess.Popen([sys.executable, str(ROOT / "s6_app.py"), "--port", str(port), *flags], cwd=ROOT,
                                  stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while not serving(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise UserError(f"the app did not start serving {url}: {Path(log).read_text().strip()[-300:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless, driven by Playwright: yields the browser."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError("the app's pictures need Playwright: pip install -r requirements-test.txt") from None
    if not CHROMIUM.exists():
        raise UserError(f"the app's pictures need Chromium at {CHROMIUM}: apt install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url):
    """A new page of the app at `url`, once its sketchpad is there."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(url)
    page.wait_for_selector("#sketchpad canvas", timeout=60_000)
    return page


def draw(page, strokes, steps=12):
    """Draw strokes on a cleared sketchpad, each a list of (x, y) points in [0, 1] of the canvas, with the mouse
    (`steps` moves from one point to the next)."""
    page.click("#sketchpad button[aria-label='Clear canvas']")
    page.click("#sketchpad button[aria-label='Brush']")
    canvas = page.locator("#sketchpad canvas").last.bounding_box()
    side = min(canvas["width"], canvas["height"]) * 0.8  # the drawing area, centred in the canvas
    left, top = canvas["x"] + (canvas["width"] - side) / 2, canvas["y"] + (canvas["height"] - side) / 2
    for stroke in strokes:
        page.mouse.move(left + stroke[0][0] * side, top + stroke[0][1] * side)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(left + x * side, top + y * side, steps=steps)
        page.mouse.up()


def verdict_becomes(page, expected):
    """Wait until the verdict on the page starts with `expected`."""
    page.wait_for_function(f"document.querySelector('#verdict').innerText.trim().startsWith({expected!r})",
                           timeout=30_000)


def preview_shown(page):
    """Wait until the 28x28 preview has loaded (224 pixels wide) and no output is still updating."""
    page.wait_for_function("() => { const img = document.querySelector('#preview img');"
                           " return img && img.complete && img.naturalWidth === 224"
                           " && !document.querySelector('.pending'); }", timeout=30_000)


def drawn_seven(browser, url):
    """The page at `url` after a 7 drawn on its sketchpad and read, as PNG bytes."""
    page = open_page(browser, url)
    try:
        draw(page, SEVEN)
        verdict_becomes(page, "7 (")
        preview_shown(page)
        return page.screenshot()
    finally:
        page.close()


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--out", default=str(ROOT / "doc" / "app.png"), help="the picture (default: doc/app.png)")
    parser.add_argument("--url", help="an app already serving there (default: s6_app.py, started here)")
    add_overwrite_flag(parser, "the picture")
    args = parser.parse_args(argv)
    if Path(args.out).suffix.lower() != ".png":
        parser.error(f"--out {args.out}: the picture is a PNG; give a name ending in .png")
    with writing([], args.overwrite, figures=[args.out]) as (out,), tempfile.TemporaryDirectory() as scratch:
        served = contextlib.nullcontext(args.url) if args.url else app_served(Path(scratch) / "app.log")
        with served as url, chromium() as browser:
            write_atomically(out, drawn_seven(browser, url))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
