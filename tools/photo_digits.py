"""Photo-like pictures of MNIST test digits, rendered the way users photograph a digit written on paper.

Each kind is one thing that goes wrong in real photos: uneven light, a dark desk around the paper, a
phone's EXIF rotation tag, a transparent PNG, a thin or a thick pen, a digit off in a corner, chalk on
a board, and a JPEG of all of that at once. The pen's stroke is the MNIST digit scaled up and cut at a
level of its grey, so every picture keeps its digit's label.

    python -m tools.photo_digits --overwrite   # how s6_predict.py reads them -> results/photo-digits.json
"""

import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from s6.checkpoints import load_weights
from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.data import mnist_dataset, normalize
from s6.files import save_json, writing
from s6.preparing import prepare
from s6.reading import features_beside, read_digit
from s6_model import Net

ROOT = Path(__file__).resolve().parent.parent

KINDS = ("plain", "uneven light", "dark desk", "exif rotation", "transparent png", "thin pen", "thick pen",
         "off centre", "chalk on a board", "all at once")
# EXIF orientation tag -> how the stored pixels are turned from upright (exif_transpose undoes it)
ROTATIONS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def stroke(digit, height, level, rng):
    """The digit's pen stroke as a float mask about `height` pixels tall, anti-aliased."""
    big = np.asarray(Image.fromarray(digit).resize((height * 2, height * 2), Image.Resampling.BICUBIC),
                     np.float32) / 255
    wobble = ndimage.gaussian_filter(rng.normal(0, 0.08, big.shape), 6)  # a pen's uneven pressure
    mask = (big + wobble) > level
    return np.asarray(Image.fromarray(np.uint8(mask * 255)).resize((height, height), Image.Resampling.BOX),
                      np.float32) / 255


def thicken(mask, pixels):
    return np.maximum(mask, ndimage.grey_dilation(mask, size=(pixels, pixels)))


def paper(shape, rng, brightness=(215, 245), gradient=0.0):
    """Light paper with grain, and (gradient > 0) light that falls off in a random direction."""
    h, w = shape
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    ramp = (np.cos(angle) * xs + np.sin(angle) * ys)
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-6)
    level = rng.uniform(*brightness) * (1 - gradient * ramp)
    grain = ndimage.gaussian_filter(rng.normal(0, 4, shape), 1)
    return level + grain


def place(ground, ink_mask, ink_level, top, left):
    out = ground.copy()
    h, w = ink_mask.shape
    region = out[top:top + h, left:left + w]
    out[top:top + h, left:left + w] = region * (1 - ink_mask) + ink_level * ink_mask
    return out


def tinted(gray, rng, tint=(1.0, 1.0, 1.0)):
    rgb = np.stack([gray * t for t in tint], -1) + rng.normal(0, 1.5, gray.shape + (3,))
    return Image.fromarray(np.uint8(np.clip(rgb, 0, 255)))


def as_jpeg(image, quality, exif=None):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return Image.open(io.BytesIO(buffer.getvalue()))


def render(kind, digit, rng):
    """(a PIL image, the file suffix to save it with) of one MNIST digit as `kind` of photo."""
    size = int(rng.integers(320, 900))
    height = int(size * rng.uniform(0.35, 0.6))
    level, pen, gradient, corner = 0.5, 0, 0.0, False
    if kind == "thin pen":
        level = 0.8
    elif kind == "thick pen":
        pen = max(3, height // 12)
    elif kind in ("uneven light", "all at once"):
        gradient = 0.25  # brightness 150 to 200 across the sheet, as under a desk lamp
    elif kind == "off centre":
        height, corner = int(size * rng.uniform(0.2, 0.3)), True
    mask = stroke(digit, height, level, rng)
    if pen:
        mask = thicken(mask, pen)
    if kind == "transparent png":
        alpha = np.zeros((size, size), np.float32)
        top, left = (size - height) // 2 + rng.integers(-20, 21, 2)
        alpha[top:top + height, left:left + height] = mask
        color = 0 if rng.random() < 0.8 else 255  # mostly black ink, sometimes white
        rgba = np.dstack([np.full((size, size, 3), color, np.float32), alpha * 255])
        return Image.fromarray(np.uint8(rgba), "RGBA"), ".png"
    if kind == "chalk on a board":
        board = rng.uniform(35, 70) + ndimage.gaussian_filter(rng.normal(0, 6, (size, size)), 2)
        top, left = (size - height) // 2 + rng.integers(-30, 31, 2)
        return tinted(place(board, mask, rng.uniform(200, 235), top, left), rng, (0.9, 1.0, 0.95)), ".jpg"
    sheet = paper((size, size), rng, brightness=(195, 205) if gradient else (215, 245), gradient=gradient)
    if corner:
        margin = rng.integers(5, size // 12, 2)
        top, left = np.where(rng.random(2) < 0.5, margin, size - height - margin)
    else:
        top, left = (size - height) // 2 + rng.integers(-size // 10, size // 10 + 1, 2)
    photo = place(sheet, mask, rng.uniform(25, 70), top, left)
    if kind in ("dark desk", "all at once"):
        desk = rng.uniform(20, 70) + ndimage.gaussian_filter(rng.normal(0, 8, (size * 3 // 2,) * 2), 3)
        inset = size // 4
        desk[inset:inset + size, inset:inset + size] = photo
        photo = desk
    image = tinted(photo, rng, (0.95, 0.97, 1.05) if rng.random() < 0.5 else (1.0, 0.98, 0.93))
    if kind in ("exif rotation", "all at once"):
        tag = int(rng.choice(list(ROTATIONS)))
        exif = Image.Exif()
        exif[0x0112] = tag  # Orientation
        return as_jpeg(image.transpose(ROTATIONS[tag]), 85, exif.tobytes()), ".jpg"
    return as_jpeg(image, int(rng.integers(70, 95))), ".jpg"


def photo_digits(digits, labels, per_kind, seed=0):
    """[(kind, label, image, suffix)]: `per_kind` pictures of each kind, from consecutive digits."""
    rng = np.random.default_rng(seed)
    pictures, i = [], 0
    for kind in KINDS:
        for _ in range(per_kind):
            pictures.append((kind, int(labels[i]), *render(kind, digits[i], rng)))
            i += 1
    return pictures


def outcome(reading, label):
    """'right', 'unsure', 'not a digit' or 'wrong' (confidently) for a Reading of a digit `label`."""
    if reading.not_a_digit:
        return "not a digit"
    if reading.unsure:
        return "unsure"
    return "right" if reading.digit == label else "wrong"


def committed_reader():
    """(Net with the weights of results/net-seed1 in eval mode, its DigitFeatures, the MNIST test set): what
    this script, small_digits.py and non_digits.py read."""
    weights = ROOT / "results" / "net-seed1" / "model.pt"
    return load_weights(Net(), weights).eval(), features_beside(weights), mnist_dataset(ROOT / "data", train=False)


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--out", default=ROOT / "results" / "photo-digits.json", type=Path,
                        help="where to write the counts (default: results/photo-digits.json)")
    add_overwrite_flag(parser, "--out")
    args = parser.parse_args(argv)
    with writing([args.out], args.overwrite) as (out,):
        model, features, test = committed_reader()
        with torch.inference_mode():  # source digits: those the network reads right as they are
            right = model(normalize(test.data.unsqueeze(1).float() / 255)).argmax(1) == test.targets
        digits, labels = test.data[right].numpy(), test.targets[right].numpy()
        outcomes = ("right", "unsure", "not a digit", "wrong")
        counts = {kind: dict.fromkeys(outcomes, 0) for kind in KINDS}
        for kind, label, image, _ in photo_digits(digits, labels, per_kind=30):
            prepared = prepare(image)
            counts[kind][outcome(read_digit(model, prepared.digit, features, prepared.small), label)] += 1
        total = {name: sum(c[name] for c in counts.values()) for name in outcomes}
        save_json(out, {"per_kind": counts, "total": total})
        for kind, c in dict(counts, all=total).items():
            print(f"{kind:18s} right {c['right']:3d}  unsure {c['unsure']:3d}  not a digit {c['not a digit']:3d}  "
                  f"wrong {c['wrong']:3d}")
        print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
