"""The drawing demo's page: a sketchpad and an upload box beside what a trained S6 model makes of them.

`build_app` returns the gr.Blocks that s6_app.py serves and the notebook's last cell opens; the functions
behind it give the page a message, never an error, for anything that is not a picture of a digit. The
verdicts are the reader's (s6.reading.verdict), worded as s6_predict.py prints them.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from s6.config import UserError
from s6.data import MNIST_MEAN, MNIST_STD
from s6.preparing import open_image, prepare
from s6.reading import read_digit, verdict

PREVIEW_SCALE = 8  # the 28x28 image, shown 224 pixels wide
# What a page that others may reach should set (s6_app.py --host, the notebook in Colab): uploads bounded in size (a
# phone's photo fits; a larger file is refused before it is stored, with HTTP 413) and deleted once an hour old
# (looked for every five minutes), a bounded queue (a flood of requests is turned away instead of filling memory),
# and no usage statistics sent out.
MAX_UPLOAD_MB = 20
UPLOADS_KEPT_SECONDS, UPLOADS_LOOKED_FOR_SECONDS = 3600, 300
QUEUE_SIZE = 32


def as_preview(digit):
    """The normalised (1, 28, 28) input as a light-on-dark picture, enlarged without smoothing."""
    pixels = (digit[0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    image = Image.fromarray(np.uint8(pixels * 255))
    return image.resize((28 * PREVIEW_SCALE, 28 * PREVIEW_SCALE), Image.Resampling.NEAREST)


def read_picture(model, picture, features=None):
    """(verdict, {digit: probability}, preview) for a PIL picture; a message and no outputs for a bad one,
    and no probabilities for one that is not a digit (features: the model's DigitFeatures, or None)."""
    try:
        prepared = prepare(picture)
    except UserError as error:
        return f"Nothing to read: {error}", None, None
    reading = read_digit(model, prepared.digit, features, prepared.small)
    probabilities = None if reading.not_a_digit else {str(d): p for d, p in enumerate(reading.probabilities)}
    return verdict(reading), probabilities, as_preview(prepared.digit)


def read_drawing(model, drawing, features=None):
    """What the sketchpad holds (a dict with the flattened picture under 'composite'), read."""
    picture = (drawing or {}).get("composite")
    if picture is None or picture.convert("RGBA").getchannel("A").getbbox() is None:  # nothing drawn, or all erased
        return "Draw one digit, large, in the box.", None, None
    return read_picture(model, picture, features)


def read_upload(model, path, features=None):
    """An uploaded file, read; anything that is not a picture of a digit gets a message, not an error."""
    if not path:
        return "Upload a photo or scan of one digit.", None, None
    try:
        picture = open_image(path)
    except UserError as error:
        return f"Cannot read {Path(path).name}: {error}", None, None
    return read_picture(model, picture, features)


def build_app(model, features=None):
    """The demo as a gr.Blocks for `model`: a sketchpad and an upload box beside what the network makes of them.

    features: the model's DigitFeatures (s6.reading.features_beside its model.pt), without which nothing
    is called "not a digit"."""
    import gradio as gr

    with gr.Blocks(title="S6: a compact CNN reads your digit", analytics_enabled=False,
                   delete_cache=(UPLOADS_LOOKED_FOR_SECONDS, UPLOADS_KEPT_SECONDS)) as app:
        gr.Markdown(f"## S6 reads your digit\nPick the brush at the left of the box and draw a digit, or upload "
                    f"a photo of one written on paper (up to {MAX_UPLOAD_MB} MB).")
        with gr.Row():
            with gr.Column():
                with gr.Tab("Draw"):
                    sketchpad = gr.Sketchpad(label="draw one digit", type="pil", image_mode="RGBA",
                                             canvas_size=(280, 280), fixed_canvas=True, layers=False,
                                             brush=gr.Brush(default_size=16, colors=["#000000"],
                                                            color_mode="fixed"),
                                             elem_id="sketchpad")
                with gr.Tab("Upload"):
                    upload = gr.File(label=f"a photo or scan of one digit, up to {MAX_UPLOAD_MB} MB", type="filepath",
                                     elem_id="upload")
            with gr.Column():
                answer = gr.Markdown(elem_id="verdict")
                probabilities = gr.Label(label="probabilities", num_top_classes=10, elem_id="probabilities")
                preview = gr.Image(label="what the network sees: 28x28, made MNIST-like", type="pil",
                                   interactive=False, height=300, elem_id="preview")
        outputs = [answer, probabilities, preview]
        sketchpad.change(lambda drawing: read_drawing(model, drawing, features), sketchpad, outputs)
        upload.change(lambda path: read_upload(model, path, features), upload, outputs)
    return app


def serve(app, host="127.0.0.1", port=None, **launch):
    """Serve the page of `build_app` on `host`:`port` (None: the first free port from 7860) with the limits a page
    others may reach needs (see MAX_UPLOAD_MB); `launch`: more of gr.Blocks.launch's options. Blocks until the
    server stops, but in a notebook."""
    app.queue(max_size=QUEUE_SIZE).launch(server_name=host, server_port=port,
                                          max_file_size=MAX_UPLOAD_MB * 1024 * 1024, **launch)
