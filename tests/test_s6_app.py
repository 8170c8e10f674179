"""s6_app.py: its functions give a message, never an error, for bad input; in a real browser it reads
digits drawn on its sketchpad and uploaded as files, and shows what the network sees.

The browser test drives Debian's Chromium (/usr/bin/chromium, package `chromium`) with Playwright, through the
functions of tools/app_screenshot.py, which writes the README's picture of the app. Where Gradio, Playwright or
Chromium is missing the tests that need it are skipped, unless S6_REQUIRE_BROWSER=1 (as in CI) makes that a failure.
"""

import io
import math
import os
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import as_photo, assert_one_line_error
from PIL import Image

from tools.app_screenshot import (
    SEVEN,
    VIEWPORT,
    app_served,
    chromium,
    draw,
    drawn_seven,
    open_page,
    preview_shown,
    verdict_becomes,
)
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
from s6.app import MAX_UPLOAD_MB, read_drawing, read_upload  # noqa: E402

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


@pytest.fixture(scope="module")
def browser():
    try:
        with chromium() as browser:
            yield browser
    except ValueError as missing:  # Playwright or Chromium: tools.app_screenshot says which
        if REQUIRED:
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with app_served(tmp_path_factory.mktemp("app") / "server.log") as url:
        yield url


DRAWN = {7: SEVEN, 1: [[(0.5, 0.15), (0.5, 0.85)]]}
# a face, two eyes and a smile; few points, as each mouse move the page sends is read by the app
SMILEY = [[(0.5 + 0.4 * math.cos(a * math.pi / 5), 0.5 + 0.4 * math.sin(a * math.pi / 5)) for a in range(11)],
          [(0.35, 0.35), (0.36, 0.36)], [(0.65, 0.35), (0.66, 0.36)],
          [(0.5 + 0.22 * math.cos(a * math.pi / 4), 0.55 + 0.15 * math.sin(a * math.pi / 4)) for a in range(1, 4)]]


def test_in_a_browser_drawn_and_uploaded_digits_are_read_and_the_network_input_shown(browser, app_url, tmp_path,
                                                                                    test_digits):
    page = open_page(browser, app_url)
    assert f"up to {MAX_UPLOAD_MB} MB" in page.inner_text("body"), "the page says how large an upload may be"
    for digit, strokes in DRAWN.items():
        draw(page, strokes)
        verdict_becomes(page, f"{digit} (")
        preview_shown(page)
        assert "%" in page.inner_text("#probabilities")  # the bars, each with its percentage
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


def test_an_upload_over_the_limit_is_refused_before_it_is_stored_and_one_within_it_is_taken(app_url, tmp_path):
    def upload(size):
        boundary = "s6-test-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"photo.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff" * size + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(app_url + "gradio_api/upload", data=body, method="POST", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as refused:
            return refused.code

    assert upload(MAX_UPLOAD_MB * 1024 * 1024 + 1) == 413
    assert upload(5 * 1024 * 1024) == 200  # a phone's photo


def test_the_apps_picture_is_the_page_after_a_drawn_7_and_its_tool_replaces_none_without_overwrite(
        browser, app_url, tmp_path, run_in_process):
    picture = drawn_seven(browser, app_url)  # what python -m tools.app_screenshot writes to doc/app.png
    assert Image.open(io.BytesIO(picture)).size == (VIEWPORT["width"], VIEWPORT["height"])
    (tmp_path / "app.png").write_bytes(picture)
    again = run_in_process("tools/app_screenshot.py", "--url", app_url, "--out", tmp_path / "app.png")
    assert_one_line_error(again)
    assert "app.png exists already" in again.stderr
