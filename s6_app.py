"""Draw a digit, or upload a photo of one, and watch a trained S6 model read it: a Gradio demo.

    python s6_app.py                                    # http://127.0.0.1:7860, the README's model
    python s6_app.py --model tiny --port 7861             # TinyNet, the weights of results/tiny-seed1

For each picture it shows the ten class probabilities, the 28x28 image the network actually
receives (made MNIST-like exactly as s6_predict.py does it), and the same verdict as s6_predict.py:
the digit, "unsure" where the network is, or "not a digit" where the picture is unlike every digit
the network was trained on (then with no probabilities). It listens on this computer only unless --host says
otherwise (--host 0.0.0.0 serves every network the computer is on); for that, an upload is limited to 20 MB and
deleted once an hour old, and a queue of requests to 32 (s6/app.py).
"""

import argparse
import sys

from s6.app import build_app, serve
from s6.cli import add_model_flags, load_features, load_model, parser_for, run_main, weights_path
from s6.config import UserError


def port(text):
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


def main(argv=None):
    parser = parser_for(__doc__)
    add_model_flags(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    parser.add_argument("--port", type=port, default=7860, help="port to listen on (default: 7860)")
    args = parser.parse_args(argv)
    model = load_model(args)
    features = load_features(weights_path(args))
    try:
        app = build_app(model, features)
    except ImportError:
        raise UserError("the app needs Gradio: pip install -r requirements-app.txt") from None
    try:
        serve(app, args.host, args.port)
    except OSError as error:
        raise UserError(f"cannot serve on {args.host}:{args.port} ({error}); try another --port") from None
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
