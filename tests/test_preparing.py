"""s6/preparing.py and s6/reading.py: a user's picture of a digit, of any size from 8x8 up, is made MNIST-like
and read right, or flagged as unsure; a picture that is no digit is called so."""

import numpy as np
import pytest
import torch
from conftest import DATA_DIR, as_photo
from PIL import Image

from s6.checkpoints import CheckpointError
from s6.data import mnist_dataset, normalize
from s6.preparing import load_digit, mnist_like, prepare
from s6.reading import FEATURES_FILE, DigitFeatures, read_digit
from tools import letters as letters_set
from tools import non_digits as non_digits_script
from tools import photo_digits as photo_digits_script
from tools import small_digits as small_digits_script
from tools.networks import BaselineNet
from tools.non_digits import mnist_test_distances, non_digits, verdicts
from tools.photo_digits import KINDS, outcome, photo_digits
from tools.small_digits import SETS, small_digit_figures

BACKGROUND = normalize(torch.tensor(0.0)).item()


@pytest.fixture(scope="module")
def digits_read_right(model, mnist_test):
    """MNIST test digits (uint8) and labels that the network reads right as they are."""
    images, labels = mnist_test
    with torch.inference_mode():
        right = model(normalize(images.unsqueeze(1).float() / 255)).argmax(1) == labels
    return images[right].numpy(), labels[right].numpy()


def test_preprocessing_turns_a_dark_on_light_photo_into_an_mnist_like_digit(test_digits):
    digits, _ = test_digits
    made = mnist_like(as_photo(digits[0]))
    original = normalize(torch.from_numpy(digits[0]).float() / 255)
    assert made.shape == (1, 28, 28)
    assert made[0, 0, 0].item() == pytest.approx(BACKGROUND)
    assert torch.corrcoef(torch.stack([made.flatten(), original.flatten()]))[0, 1] > 0.8


def test_preprocessing_centres_the_digit_by_mass(test_digits):
    digits, _ = test_digits
    image = mnist_like(Image.fromarray(digits[3]).resize((90, 90))) - BACKGROUND
    ys, xs = np.indices((28, 28))
    mass = image[0].numpy()
    assert (ys * mass).sum() / mass.sum() == pytest.approx(14, abs=1)
    assert (xs * mass).sum() / mass.sum() == pytest.approx(14, abs=1)


@pytest.mark.parametrize("image", [Image.new("L", (50, 50), 255), Image.new("RGB", (64, 64), (20, 30, 40)),
                                   Image.new("RGBA", (40, 40), (0, 0, 0, 0))])
def test_an_image_without_ink_is_refused_as_blank(image):
    with pytest.raises(ValueError, match="blank"):
        mnist_like(image)


def test_load_digit_reads_png_of_any_mode(tmp_path, test_digits):
    digit = test_digits[0][0]
    for mode in ["L", "RGB", "RGBA", "P", "1", "I;16"]:
        path = tmp_path / f"digit-{mode}.png"
        Image.fromarray(digit).convert(mode).save(path)
        assert load_digit(path).digit.shape == (1, 28, 28)


def test_a_16_bit_png_is_read_in_its_own_range(model, test_digits, tmp_path):
    digits, labels = test_digits
    path = tmp_path / "digit16.png"
    Image.fromarray(digits[0].astype(np.uint16) * 257).save(path)  # 0..65535
    assert Image.open(path).mode.startswith("I")
    assert read_digit(model, load_digit(path).digit).digit == labels[0]


def test_an_image_too_large_to_open_safely_is_a_one_line_error(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (15_000, 15_000)).save(path)
    with pytest.raises(ValueError, match="too large"):
        load_digit(path)


@pytest.mark.parametrize("polarity, scale", [("white on black", 1), ("black on white", 1),
                                             ("white on black", 8), ("black on white", 8)])
def test_mnist_test_digits_saved_as_png_are_read_as_the_network_reads_them(model, features, mnist_test, tmp_path,
                                                                         polarity, scale):
    images, labels = mnist_test
    images, labels = images[:50], labels[:50]
    wrong = refused = 0
    for i, (digit, label) in enumerate(zip(images.numpy(), labels.tolist(), strict=True)):
        picture = Image.fromarray(digit if polarity == "white on black" else 255 - digit)
        picture.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC).save(tmp_path / f"{i}.png")
        prepared = load_digit(tmp_path / f"{i}.png")  # 28x28 is a small picture, read four ways; 224x224 a photo
        reading = read_digit(model, prepared.digit, features, prepared.small)
        wrong += reading.digit != label
        refused += reading.not_a_digit
    with torch.inference_mode():
        wrong_as_is = (model(normalize(images.unsqueeze(1).float() / 255)).argmax(1) != labels).sum().item()
    assert wrong <= wrong_as_is
    if scale == 1:  # as MNIST has them: small pictures, none refused (doc/reader.md)
        assert refused == 0


def test_photo_like_digits_are_read_right_or_flagged_as_unsure(model, features, digits_read_right):
    pictures = photo_digits(*digits_read_right, per_kind=6, seed=3)
    outcomes = {kind: [] for kind in KINDS}
    for kind, label, image, _ in pictures:
        prepared = prepare(image)
        outcomes[kind].append(outcome(read_digit(model, prepared.digit, features, prepared.small), label))
    everything = sum(outcomes.values(), [])
    assert everything.count("wrong") == 0, {kind: o.count("wrong") for kind, o in outcomes.items()}
    assert everything.count("right") >= 0.95 * len(everything)


def test_a_confident_reading_is_not_flagged_and_a_split_one_is(model, mnist_test):
    images, _ = mnist_test
    assert not read_digit(model, normalize(images[0].unsqueeze(0).float() / 255)).unsure
    blend = (images[0].float() + images[1].float()) / 2 / 255  # a 7 laid over a 2
    assert read_digit(model, normalize(blend.unsqueeze(0))).unsure


SMALL_SETS = [(name, size) for name, (_, sizes) in SETS.items() for size in sizes]


@pytest.mark.parametrize("name, size", SMALL_SETS, ids=[f"{name} {w}x{h}" for name, (w, h) in SMALL_SETS])
def test_small_digits_are_read_as_well_as_plainly_upscaled_and_seldom_confidently_wrong(model, features, mnist_test,
                                                                                     name, size):
    images, labels = mnist_test
    figures = small_digit_figures(model, features, images[:200].numpy(), labels[:200].numpy(), SETS[name][0], size)
    assert figures["reader accuracy"] >= figures["yardstick accuracy"] - 0.02, figures
    assert figures["reader confidently wrong"] <= 0.01, figures


@pytest.mark.parametrize("size", [(8, 8), (12, 16), (40, 40)], ids=["8x8", "12x16", "40x40"])
def test_faint_strokes_on_a_small_picture_are_read_not_called_blank(model, test_digits, size):
    digits, labels = test_digits
    for digit, label in zip(digits[:5], labels[:5], strict=True):
        small = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.BOX), np.float32)
        faint = Image.fromarray(np.uint8(np.round(120 + small / small.max() * 16)))  # 16 grey levels on grey
        assert read_digit(model, mnist_like(faint)).digit == label


def test_nine_in_ten_letters_in_fonts_not_chosen_on_are_not_read_as_digits(model, features):
    pictures = letters_set.letters("reported")[::2]  # half of them, every font and character: seconds, not minutes
    said = [verdict for verdict, _, _ in verdicts(model, features, [picture for _, _, picture in pictures])]
    assert sum(verdict != "digit" for verdict in said) >= 0.9 * len(said)


@pytest.fixture(scope="module")
def non_digit_verdicts(model, features, mnist_test):
    images, _ = mnist_test
    return [verdict for verdict, _, _ in verdicts(model, features, [p for _, p in non_digits(images.numpy())])]


def test_nine_in_ten_pictures_that_are_no_digit_are_called_not_a_digit_or_unsure(non_digit_verdicts):
    caught = sum(verdict != "digit" for verdict in non_digit_verdicts)
    assert caught >= 0.9 * len(non_digit_verdicts)
    # small pictures, read both ways and at twice the distance threshold, are more often unsure than not a digit
    assert non_digit_verdicts.count("not a digit") >= 0.4 * len(non_digit_verdicts)


def test_at_most_one_percent_of_mnist_test_digits_read_right_are_called_not_a_digit(model, features, mnist_test):
    images, labels = mnist_test
    distances, right = mnist_test_distances(model, features, images, labels)  # all 10,000: the claim is on them
    assert ((distances > features.threshold) & right).sum() <= 0.01 * right.sum()


def test_without_digit_features_nothing_is_called_not_a_digit(model, mnist_test):
    images, _ = mnist_test
    pictures = [picture for _, picture in non_digits(images.numpy())[:20]]
    assert "not a digit" not in [verdict for verdict, _, _ in verdicts(model, None, pictures)]


@pytest.fixture(scope="module")
def training_digits():
    """1,500 MNIST training digits made MNIST-like as PNGs of them would be, and their labels."""
    train = mnist_dataset(DATA_DIR, train=True)
    return torch.stack([mnist_like(Image.fromarray(d)) for d in train.data[:1500].numpy()]), train.targets[:1500]


def test_committed_digit_features_are_those_of_the_committed_models_training_digits(model, features,
                                                                                  training_digits):
    digits, labels = training_digits
    refit = DigitFeatures.fit(model, digits[:1000], labels[:1000], digits[1000:], quantile=0.995)
    spread = features.means.std(0).mean()  # how far apart the classes lie
    assert (refit.means - features.means).abs().mean() < 0.1 * spread
    assert 0.5 * features.threshold < refit.threshold < 2 * features.threshold


def test_digit_features_are_saved_and_loaded_and_another_file_is_a_one_line_error(features, tmp_path):
    features.save(tmp_path / FEATURES_FILE)
    loaded = DigitFeatures.load(tmp_path / FEATURES_FILE)
    assert torch.equal(loaded.means, features.means) and loaded.threshold == features.threshold
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not hold digit features"):
        DigitFeatures.load(tmp_path / "other.pt")
    torch.save({"means": features.means[:5], "precision": features.precision, "threshold": torch.tensor(1.0)},
               tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="cut.pt is damaged"):
        DigitFeatures.load(tmp_path / "cut.pt")


@pytest.mark.parametrize("script", [photo_digits_script, small_digits_script, non_digits_script, letters_set],
                         ids=["photo_digits.py", "small_digits.py", "non_digits.py", "letters.py"])
def test_the_reader_set_scripts_refuse_to_replace_their_results_unless_told_to_overwrite(script, tmp_path):
    (tmp_path / "earlier.json").write_text("{}")
    with pytest.raises(ValueError, match=f"{tmp_path / 'earlier.json'}.* already.*--overwrite"):
        script.main(["--out", str(tmp_path / "earlier.json")])
    assert (tmp_path / "earlier.json").read_text() == "{}"


def test_a_model_without_a_pooled_head_gets_digit_features_from_its_own_forward(mnist_test):
    images, labels = mnist_test
    digits = normalize(images[:400].float().unsqueeze(1) / 255)
    model = BaselineNet().eval()
    features = DigitFeatures.fit(model, digits[:300], labels[:300], digits[300:], quantile=0.99)
    assert features.means.shape == (10, 2 * (32 + 64 + 128 + 256) + 50)  # every ReLU's channels, twice
    reading = read_digit(model, digits[0], features)
    assert reading.distance is not None and len(reading.probabilities) == 10


@pytest.mark.parametrize("size", [28, 112, 280])
@pytest.mark.parametrize("light", [False, True], ids=["dark ink", "light ink"])
@pytest.mark.parametrize("clear", [None, 0], ids=["cleared pixels keep their colour", "cleared pixels turned black"])
def test_a_digit_whose_ground_was_made_transparent_is_prepared_as_on_its_ground(test_digits, size, light, clear):
    """A digit on paper whose blank paper (its pure white, or pure black for light ink) was made transparent: its
    anti-aliased edges keep grey of ink and ground blended, so that the drawn pixels' mean grey is near half-way,
    where a test on it would guess the ground. It is prepared exactly as the picture before it was cleared."""
    ground = 0 if light else 255
    for digit in test_digits[0][:3]:
        on_paper = Image.fromarray(digit if light else 255 - digit).resize((size, size), Image.Resampling.BILINEAR)
        grey = np.asarray(on_paper)
        rgba = np.dstack([grey, grey, grey, np.where(grey == ground, 0, 255)]).astype(np.uint8)
        if clear is not None:
            rgba[grey == ground, :3] = clear
        transparent, plain = prepare(Image.fromarray(rgba, "RGBA")), prepare(on_paper)
        assert torch.allclose(transparent.digit, plain.digit, atol=1e-4)
