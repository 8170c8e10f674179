"""Draw a digit, or upload a photo of one, and watch a trained S6 model read it: a Gradio demo.

    python s6_app.py                                    # http://127.0.0.1:7860, the README's model
    python s6_app.py --model tiny --port 7861             # TinyNet, the weights of results/tiny-seed1

For each picture it shows the ten class probabilities, the 28x28 image the network actually
receives (made MNIST-like exactly as s6_predict.py does it), and says "not sure" where the network
is unsure and "not a digit" where the picture is unlike every digit the network was trained on (then
with no probabilities), by the same rules as s6_predict.py. It listens on this computer only unless --host says
otherwise (--host 0.0.0.0 serves every network the computer is on).
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from s6.cli import add_model_flags, load_features, load_model, parser_for, run_main, weights_path
from s6.data import MNIST_MEAN, MNIST_STD
from s6.predictor import open_image, prepare
from s6.reading import read_digit

PREVIEW_SCALE = 8  # the 28x28 image, shown 224 pixels wide


NOT_A_DIGIT = "Not a digit: this is unlike every digit the network learned from."


def verdict(reading):
    """One line for the page: the digit, that the network is not sure and between which two, or that the
    picture is not a digit."""
    first, second, probabilities = reading.digit, reading.runner_up, reading.probabilities
    if reading.not_a_digit:
        return NOT_A_DIGIT
    if reading.unsure:
        return f"Not sure: {first} ({probabilities[first]:.0%}) or {second} ({probabilities[second]:.0%})"
    return f"It reads {first} ({probabilities[first]:.0%})"


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
    except ValueError as error:
        return f"Nothing to read: {error}", None, None
    reading = read_digit(model, prepared.digit, features, prepared.digit_size)
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
    except ValueError as error:
        return f"Cannot read {Path(path).name}: {error}", None, None
    return read_picture(model, picture, features)


def build_app(model, features=None):
    """The demo as a gr.Blocks for `model`: a sketchpad and an upload box beside what the network makes of them.

    features: the model's DigitFeatures (s6.reading.features_beside its model.pt), without which nothing
    is called "not a digit"."""
    import gradio as gr

    with gr.Blocks(title="S6: a compact CNN reads your digit") as app:
        gr.Markdown("## S6 reads your digit\nPick the brush at the left of the box and draw a digit, or upload "
                    "a photo of one written on paper.")
        with gr.Row():
            with gr.Column():
                with gr.Tab("Draw"):
                    sketchpad = gr.Sketchpad(label="draw one digit", type="pil", image_mode="RGBA",
                                             canvas_size=(280, 280), fixed_canvas=True, layers=False,
                                             brush=gr.Brush(default_size=16, colors=["#000000"],
                                                            color_mode="fixed"),
                                             elem_id="sketchpad")
                with gr.Tab("Upload"):
                    upload = gr.File(label="a photo or scan of one digit", type="filepath", elem_id="upload")
            with gr.Column():
                answer = gr.Markdown(elem_id="verdict")
                probabilities = gr.Label(label="probabilities", num_top_classes=10, elem_id="probabilities")
                preview = gr.Image(label="what the network sees: 28x28, made MNIST-like", type="pil",
                                   interactive=False, height=300, elem_id="preview")
        outputs = [answer, probabilities, preview]
        sketchpad.change(lambda drawing: read_drawing(model, drawing, features), sketchpad, outputs)
        upload.change(lambda path: read_upload(model, path, features), upload, outputs)
    return app


def main(argv=None):
    parser = parser_for(__doc__)
    add_model_flags(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    args = parser.parse_args(argv)
    model = load_model(args)
    features = load_features(weights_path(args))
    try:
        app = build_app(model, features)
    except ImportError:
        raise ValueError("the app needs Gradio: pip install -r requirements-app.txt") from None
    try:
        app.launch(server_name=args.host, server_port=args.port)
    except OSError as error:
        raise ValueError(f"cannot serve on {args.host}:{args.port} ({error}); try another --port") from None
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
