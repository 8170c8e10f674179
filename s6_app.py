"""Draw a digit, or upload a photo of one, and watch a trained S6 model read it: a Gradio demo.

    python s6_app.py                                    # http://127.0.0.1:7860, the README's model
    python s6_app.py --model tiny --port 7861             # TinyNet, the weights of results/tiny-seed1

For each picture it shows the ten class probabilities, the 28x28 image the network actually
receives (made MNIST-like exactly as s6_predict.py does it), and says "not sure" where the network
is unsure, by the same rule as s6_predict.py. It listens on this computer only unless --host says
otherwise (--host 0.0.0.0 serves every network the computer is on).
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from s6.cli import add_model_flags, load_model, parser_for, run_main
from s6.data import MNIST_MEAN, MNIST_STD
from s6.predictor import mnist_like, open_image, read_digit

PREVIEW_SCALE = 8  # the 28x28 image, shown 224 pixels wide


def verdict(reading):
    """One line for the page: the digit, or that the network is not sure and between which two."""
    first, second, probabilities = reading.digit, reading.runner_up, reading.probabilities
    if reading.unsure:
        return f"Not sure: {first} ({probabilities[first]:.0%}) or {second} ({probabilities[second]:.0%})"
    return f"It reads {first} ({probabilities[first]:.0%})"


def as_preview(digit):
    """The normalised (1, 28, 28) input as a light-on-dark picture, enlarged without smoothing."""
    pixels = (digit[0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    image = Image.fromarray(np.uint8(pixels * 255))
    return image.resize((28 * PREVIEW_SCALE, 28 * PREVIEW_SCALE), Image.Resampling.NEAREST)


def read_picture(model, picture):
    """(verdict, {digit: probability}, preview) for a PIL picture; a message and no outputs for a bad one."""
    try:
        digit = mnist_like(picture)
    except ValueError as error:
        return f"Nothing to read: {error}", None, None
    reading = read_digit(model, digit)
    return verdict(reading), {str(d): p for d, p in enumerate(reading.probabilities)}, as_preview(digit)


def read_drawing(model, drawing):
    """What the sketchpad holds (a dict with the flattened picture under 'composite'), read."""
    picture = (drawing or {}).get("composite")
    if picture is None or picture.convert("RGBA").getchannel("A").getbbox() is None:  # nothing drawn, or all erased
        return "Draw one digit, large, in the box.", None, None
    return read_picture(model, picture)


def read_upload(model, path):
    """An uploaded file, read; anything that is not a picture of a digit gets a message, not an error."""
    if not path:
        return "Upload a photo or scan of one digit.", None, None
    try:
        picture = open_image(path)
    except ValueError as error:
        return f"Cannot read {Path(path).name}: {error}", None, None
    return read_picture(model, picture)


def build_app(model):
    """The demo as a gr.Blocks for `model`: a sketchpad and an upload box beside what the network makes of them."""
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
        sketchpad.change(lambda drawing: read_drawing(model, drawing), sketchpad, outputs)
        upload.change(lambda path: read_upload(model, path), upload, outputs)
    return app


def main(argv=None):
    parser = parser_for(__doc__)
    add_model_flags(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    args = parser.parse_args(argv)
    model = load_model(args)
    try:
        app = build_app(model)
    except ImportError:
        raise ValueError("the app needs Gradio: pip install -r requirements-app.txt") from None
    try:
        app.launch(server_name=args.host, server_port=args.port)
    except OSError as error:
        raise ValueError(f"cannot serve on {args.host}:{args.port} ({error}); try another --port") from None
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
