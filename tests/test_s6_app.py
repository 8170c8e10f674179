"""s6_app.py: its functions give a message, never an error, for bad input; in a real browser it reads
digits drawn on its sketchpad and uploaded as files, and shows what the network sees.

The browser test drives Debian's Chromium (/usr/bin/chromium, package `chromium`) with Playwright. Where
Gradio, Playwright or Chromium is missing the tests that need it are skipped, unless S6_REQUIRE_BROWSER=1
(as in CI) makes that a failure. With
S6_SCREENSHOT=PATH it saves the page, after a drawn 7, to PATH: the README's picture of the app.
"""

import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, as_photo
from PIL import Image

from tools.letters import stroke_glyph
from tools.non_digits import on_sketchpad, smiley

REQUIRED = os.environ.get("S6_REQUIRE_BROWSER") == "1"
try:
    import gradio  # noqa: F401  (s6_app imports it only to build the page)
except ImportError:
    if REQUIRED:  # in CI a broken or missing Gradio fails here, instead of skipping every test below
        raise
    pytest.skip("gradio is not installed", allow_module_level=True)
import s6_app  # noqa: E402
from s6.app import read_drawing, read_upload  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def blank_canvas():
    return Image.new("RGBA", (280, 280), (0, 0, 0, 0))


@pytest.mark.parametrize("drawing", [None, {"composite": None}, {"composite": blank_canvas()}],
                         ids=["nothing yet", "no picture", "empty or erased canvas"])
def test_an_empty_sketchpad_asks_for_a_digit(model, drawing):
    assert read_drawing(model, drawing) == ("Draw one digit, large, in the box.", None, None)


@pytest.mark.parametrize("strokes", [[(0, 0, 280, 6)], [(20, 100, 260, 116), (130, 20, 146, 260)]],
                         ids=["a line along the top", "a plus sign"])
def test_a_scribble_that_is_no_digit_is_read_as_unsure(model, strokes):
    canvas = blank_canvas()
    for box in strokes:
        canvas.paste((0, 0, 0, 255), box)
    message, probabilities, preview = read_drawing(model, {"composite": canvas})
    assert message.startswith("unsure: ") and len(probabilities) == 10 and preview is not None


def test_a_drawn_smiley_is_not_a_digit_with_no_probabilities_and_the_network_input_shown(model, features):
    message, probabilities, preview = read_drawing(model, {"composite": smiley()}, features)
    assert message.startswith("not a digit") and probabilities is None and preview.size == (224, 224)


def test_an_uploaded_8x8_digit_is_read(model, features, test_digits, tmp_path):
    digits, labels = test_digits
    Image.fromarray(255 - digits[1]).resize((8, 8), Image.Resampling.BOX).save(tmp_path / "icon.png")
    message, probabilities, _ = read_upload(model, str(tmp_path / "icon.png"), features)
    assert max(probabilities, key=probabilities.get) == str(labels[1]) and str(labels[1]) in message


@pytest.mark.parametrize("case", ["not an image", "huge", "missing"])
def test_a_bad_upload_gets_a_message_and_no_outputs(model, tmp_path, case):
    path = tmp_path / "upload.png"
    if case == "not an image":
        path.write_text("%PDF-1.4, not a picture")
    elif case == "huge":
        Image.new("1", (15_000, 15_000)).save(path)
    message, probabilities, preview = read_upload(model, str(path))
    assert message.startswith("Cannot read upload.png: ") and probabilities is None and preview is None


def test_a_colour_photo_is_read_and_the_network_input_shown(model, test_digits, tmp_path):
    digits, labels = test_digits
    path = tmp_path / "photo.jpg"
    as_photo(digits[0]).save(path)
    message, probabilities, preview = read_upload(model, str(path))
    assert message.startswith(f"{labels[0]} (")
    assert max(probabilities, key=probabilities.get) == str(labels[0])
    assert preview.size == (224, 224) and preview.getpixel((0, 0)) == 0  # light on dark, as MNIST


def test_at_most_one_in_fifty_digits_drawn_on_the_sketchpad_is_refused(model, features):
    """The ten digits of five stroke fonts, drawn with the app's brushes and slants and handed over as the
    sketchpad hands a drawing over (black on transparent): refused means called not a digit."""
    rng = np.random.default_rng(0)
    verdicts = [read_drawing(model, {"composite": on_sketchpad(stroke_glyph(digit, font, rng))}, features)[0]
                for font in ("futural", "cursive", "scripts", "rowmans", "timesr") for digit in "0123456789"]
    assert sum(verdict.startswith("not a digit") for verdict in verdicts) <= 1, verdicts
    assert sum(verdict.startswith(digit) for verdict, digit in zip(verdicts, "0123456789" * 5, strict=True)) >= 45


def test_without_gradio_the_app_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(ValueError, match="pip install -r requirements-app.txt"):
        s6_app.main([])


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    required = REQUIRED
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed")
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "server.log"  # a file, not a pipe nobody reads, which could fill up
    with log.open("w") as output:
        server = subprocess.Popen([sys.executable, str(ROOT / "s6_app.py"), "--port", str(port)], cwd=ROOT,
                                  stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while not serving(url):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"the app did not start serving {url}:\n{log.read_text()}")
        time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


def serving(url):
    try:
        urllib.request.urlopen(url, timeout=2)
    except OSError:
        return False
    return True


def draw(page, strokes, steps=12):
    """Draw strokes, each a list of (x, y) points in [0, 1] of the canvas, with the mouse (`steps` moves
    from one point to the next)."""
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


DRAWN = {
    7: [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    1: [[(0.5, 0.15), (0.5, 0.85)]],
}
# a face, two eyes and a smile; few points, as each mouse move the page sends is read by the app
SMILEY = [[(0.5 + 0.4 * math.cos(a * math.pi / 5), 0.5 + 0.4 * math.sin(a * math.pi / 5)) for a in range(11)],
          [(0.35, 0.35), (0.36, 0.36)], [(0.65, 0.35), (0.66, 0.36)],
          [(0.5 + 0.22 * math.cos(a * math.pi / 4), 0.55 + 0.15 * math.sin(a * math.pi / 4)) for a in range(1, 4)]]


def test_in_a_browser_drawn_and_uploaded_digits_are_read_and_the_network_input_shown(browser, app_url, tmp_path,
                                                                                    test_digits):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(app_url)
    page.wait_for_selector("#sketchpad canvas", timeout=60_000)
    for digit, strokes in DRAWN.items():
        page.click("#sketchpad button[aria-label='Clear canvas']")
        page.click("#sketchpad button[aria-label='Brush']")
        draw(page, strokes)
        verdict_becomes(page, f"{digit} (")
        preview_shown(page)
        assert "%" in page.inner_text("#probabilities")  # the bars, each with its percentage
        if digit == 7 and os.environ.get("S6_SCREENSHOT"):
            page.screenshot(path=os.environ["S6_SCREENSHOT"])
    page.click("#sketchpad button[aria-label='Clear canvas']")
    page.click("#sketchpad button[aria-label='Brush']")
    draw(page, SMILEY, steps=1)
    verdict_becomes(page, "not a digit")
    preview_shown(page)
    assert "%" not in page.inner_text("#probabilities")  # no bars: the ten probabilities mean nothing here
    page.get_by_role("tab", name="Upload").click()
    digits, labels = test_digits
    (tmp_path / "notes.txt").write_text("not a picture")
    for i in (1, 2):  # one white on black as MNIST has it, one black on white as paper has it
        digit = digits[i] if i == 1 else 255 - digits[i]
        Image.fromarray(digit).resize((112, 112)).save(tmp_path / f"digit{i}.png")
    upload = page.locator("#upload input[type=file]")
    upload.set_input_files(str(tmp_path / "notes.txt"))
    verdict_becomes(page, "Cannot read notes.txt: not an image")
    for i in (1, 2):
        page.locator("#upload button[aria-label='Clear']").first.click()
        upload.set_input_files(str(tmp_path / f"digit{i}.png"))
        verdict_becomes(page, f"{labels[i]} (")
        preview_shown(page)
    page.close()
