"""S6's networks: a compact MNIST CNN at four parameter budgets, each under its class's `budget`.

Model code only, and pure helpers on it (parameters, receptive fields): nothing here imports or knows about training.
Every model maps (N, 1, 28, 28) images to (N, 10) logits (unnormalised class scores; softmax gives probabilities).
Comments give each block's output size (channels x height x width) and receptive field (RF).
"""

import traceback
from pathlib import Path

import torch
from torch import nn


def conv_bn(in_channels, out_channels, kernel_size=3, padding=1, dropout=0.0, batchnorm=True):
    """Conv -> BatchNorm -> ReLU -> Dropout (left out when dropout is 0), the unit the small models are built from.
    Without `batchnorm` (the ablation's), Conv -> ReLU, the convolution with a bias of its own."""
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=not batchnorm),  # BN has the bias
        *([nn.BatchNorm2d(out_channels)] if batchnorm else []),
        nn.ReLU(),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def separable_bn(in_channels, out_channels, dropout=0.0):
    """Depthwise 3x3 -> pointwise 1x1 -> BatchNorm -> ReLU (-> Dropout): a 3x3 convolution's reach for
    9*in + in*out weights instead of 9*in*out, how the smaller models stay wide on a small budget."""
    layers = [
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class GapNet(nn.Module):
    """features -> global average pooling -> 1x1 conv to the 10 classes: no large fully connected head."""

    def __init__(self, features, channels):
        super().__init__()
        self.features = features
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, 10, 1), nn.Flatten())  # 10

    def forward(self, x):
        return self.head(self.features(x))


class Net(GapNet):
    """The S6 model: 19,506 parameters; 8-20 channels in all but the last two convolutions, so that
    depth buys a 32-pixel RF; 20 at 14x14, where the width helped most (doc/experiments.md).

    Dropout follows the first 7x7 block only. Dropout draws one random number per activation, which a CPU
    does slowly: at 28x28 and 14x14 it would make most of those draws and cost most of their time, and
    validation accuracy without it there is within the spread between seeds (doc/experiments.md,
    doc/performance.md).
    """

    key = "net"
    budget = 20_000  # parameters: the assignment's

    def __init__(self, dropout=0.05):
        super().__init__(net_features(dropout), channels=32)


def net_features(dropout, last=32, batchnorm=True):
    """Net's six blocks and two pools; `last`: the channels of the last block."""
    return nn.Sequential(
        conv_bn(1, 8, batchnorm=batchnorm),  # 8x28x28, RF 3
        conv_bn(8, 16, batchnorm=batchnorm),  # 16x28x28, RF 5: no dropout at 28x28 (see Net's docstring)
        nn.MaxPool2d(2),  # 16x14x14, RF 6
        conv_bn(16, 20, batchnorm=batchnorm),  # 20x14x14, RF 10: no dropout at 14x14 either
        conv_bn(20, 20, batchnorm=batchnorm),  # 20x14x14, RF 14
        nn.MaxPool2d(2),  # 20x7x7, RF 16
        conv_bn(20, 24, dropout=dropout, batchnorm=batchnorm),  # 24x7x7, RF 24
        conv_bn(24, last, batchnorm=batchnorm),  # last x 7x7, RF 32: no dropout right before the average
    )


def separable_features(widths, dropout):
    """The smaller models' features: Net's layout of six blocks and two pools, with full convolutions at
    28x28 only and separable ones after, where full ones would cost most. `widths`: each block's channels."""
    c1, c2, c3, c4, c5, c6 = widths
    return nn.Sequential(
        conv_bn(1, c1),  # c1 x 28x28, RF 3
        conv_bn(c1, c2),  # c2 x 28x28, RF 5
        nn.MaxPool2d(2),  # c2 x 14x14, RF 6
        separable_bn(c2, c3),  # c3 x 14x14, RF 10
        separable_bn(c3, c4),  # c4 x 14x14, RF 14
        nn.MaxPool2d(2),  # c4 x 7x7, RF 16
        separable_bn(c4, c5, dropout=dropout),  # c5 x 7x7, RF 24
        separable_bn(c5, c6),  # c6 x 7x7, RF 32
    )


class SmallNet(GapNet):
    """Under 8,000 parameters (7,670), RF 32: TinyNet's layout, wider after 28x28.

    Separable convolutions after 28x28 let the 14x14 and 7x7 blocks be 32-48 channels wide. Trained with
    lighter augmentation and a higher peak learning rate than Net (MODEL_RECIPES in s6/config.py): a network this
    small underfits rather than overfits.
    """

    key = "small"
    budget = 8_000  # parameters
    widths = (8, 12, 32, 32, 48, 40)  # 40 channels last keep the total under 8,000

    def __init__(self, dropout=0.05):
        super().__init__(separable_features(self.widths, dropout), channels=self.widths[-1])


class TinyNet(GapNet):
    """Under 5,000 parameters (4,838), RF 32: full convolutions at 28x28 only, separable ones after.

    Separable convolutions let the 14x14 and 7x7 blocks be 24-32 channels wide on this budget, where
    full convolutions could afford about 12.
    """

    key = "tiny"
    budget = 5_000  # parameters
    widths = (8, 12, 24, 24, 32, 28)  # 28 channels last keep the total under 5,000

    def __init__(self, dropout=0.05):
        super().__init__(separable_features(self.widths, dropout), channels=self.widths[-1])


class MicroNet(GapNet):
    """Under 2,000 parameters (1,750), RF 32: 4 and 8 channels at 28x28, separable convolutions after."""

    key = "micro"
    budget = 2_000  # parameters
    widths = (4, 8, 12, 12, 16, 16)

    def __init__(self, dropout=0.05):
        super().__init__(separable_features(self.widths, dropout), channels=self.widths[-1])


# S6's networks by their keys, the names that TrainConfig.model and --model take: one per budget, each with its
# committed weights (results/<key>-seed1/model.pt). The designs and variants that led to Net are the lab's
# (tools/networks.py).
MODELS = {cls.key: cls for cls in (Net, SmallNet, TinyNet, MicroNet)}


def count_parameters(model):
    """Number of trainable parameters (of a lazy layer, once a forward has given it its weights)."""
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad and not isinstance(p, nn.parameter.UninitializedParameter))


def keeps_state(layer):
    """Whether a layer has parameters or buffers of its own: weights to train and save, or statistics to keep."""
    return any(True for _ in layer.parameters()) or any(True for _ in layer.buffers())


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


class ReceptiveFieldError(ValueError):
    """A layer whose effect on the receptive field `receptive_field` cannot follow; the message names it."""


# Layers that leave every pixel where it was: they change no receptive field.
PIXELWISE = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.modules.dropout._DropoutNd, nn.Identity,
             nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
             nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Softplus)
WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)  # a kernel, a stride, padding and, for some, dilation
GLOBAL = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # pooled to 1x1: a kernel over the whole map


def layers_called(model, images):
    """(name, layer, input, output) of each layer without sublayers that one forward pass of `model`, in eval mode,
    runs on `images`, in the order it runs them. The name is the layer's in model.named_modules(), or None for a
    layer the forward runs that is not a submodule (kept in a plain Python list or dict: neither trained nor saved
    with the model). Found with a global forward hook, removed on leaving; the model is left in its mode."""
    names = {layer: name for name, layer in model.named_modules()}
    calls = []

    def record(layer, inputs, output):
        if not list(layer.children()):
            calls.append((names.get(layer), layer, inputs[0] if inputs else None, output))

    hook = nn.modules.module.register_module_forward_hook(record)
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(images)
    finally:
        model.train(training)
        hook.remove()
    return calls


def blank_forward(model, input_size=(1, 28, 28)):
    """`layers_called` on one blank image of `input_size`: the layers a forward runs, with the sizes it gives them."""
    return layers_called(model, torch.zeros(1, *input_size, device=device_of(model)))


def device_of(model):
    """The device of a model's first parameter or buffer; the CPU for a model without either."""
    return next((tensor.device for tensor in (*model.parameters(), *model.buffers())), torch.device("cpu"))


def in_a_library(filename):
    """Whether a source file is S6's, torch's or an installed package's: not the code of a user of S6."""
    libraries = (str(Path(torch.__file__).parent), str(Path(__file__).parent / "s6"), __file__)
    return filename.startswith(libraries) or "site-packages" in filename or "dist-packages" in filename


def failure(error):
    """An exception in a few words: its type, its message's first line, and the user's line it was raised at
    (file:line), the innermost outside S6, torch and the installed packages, where there is one."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not in_a_library(frame.filename)]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}{where}"


def receptive_field(model, input_size=(1, 28, 28)):
    """One row per layer that moves the receptive field (convolutions, pools, a global pool), in the order the
    model's forward runs them, up to where its features are flattened.

    Each row: name, type, kernel, stride, padding, output size, jump (input pixels between neighbouring outputs)
    and receptive field. Global average (or max) pooling counts as a kernel over the whole map. The layers are
    found by running the forward once on a blank image, so a model of ordinary layers (Conv2d, pools, BatchNorm,
    activations, Dropout, Sequential, a global pool) is followed whatever its class. Raises ReceptiveFieldError
    for a layer it cannot follow: one that changes the map's size in another way (an Upsample, a transposed
    convolution), any layer it does not know, a module with weights of its own beside its layers, a layer that is
    not a submodule (kept in a plain list), and where the size changes between layers (a pool as a function call).
    Assumes square kernels and one chain of layers, as every model above.
    """
    if not isinstance(model, nn.Module):
        name = getattr(model, "__name__", repr(model))
        raise ReceptiveFieldError(f"{name} is a class: give a network of it, {name}()" if isinstance(model, type)
                                  else f"{name} is not a network (an nn.Module)")
    owners = [name for name, module in model.named_modules()
              if list(module.children()) and list(module.parameters(recurse=False))]
    if owners:  # its own weights are used by its forward, where no hook sees them
        raise ReceptiveFieldError(f"receptive_field cannot follow {type(model).__name__} at {owners[0] or 'its top'}: "
                                  f"a module with layers of its own also has weights of its own")
    size, jump, rf = input_size[-1], 1, 1
    rows = []
    try:
        calls = blank_forward(model, input_size)
    except Exception as error:  # whatever the forward raises, it cannot be followed
        raise ReceptiveFieldError(f"receptive_field cannot run {type(model).__name__} on a {(1, *input_size)} "
                                  f"image: {failure(error)}") from None
    for name, layer, x, y in calls:
        if name is None and keeps_state(layer):
            raise ReceptiveFieldError(f"receptive_field cannot follow {type(model).__name__} at a "
                                      f"{type(layer).__name__} that is not its submodule (held in a plain Python list "
                                      f"or dict, it is neither trained nor saved): hold its layers in nn.ModuleList "
                                      f"or nn.Sequential")
        name = name if name is not None else f"({type(layer).__name__} made in forward)"
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or x.dim() != 4 or y.dim() != 4:
            break  # flattened: the features have ended
        if x.shape[-1] != size:
            raise ReceptiveFieldError(f"receptive_field cannot follow {type(model).__name__} at {name}: its input is "
                                      f"{x.shape[-1]} pixels wide where the layer before gave {size} (an operation "
                                      f"outside a layer, such as F.max_pool2d, changed it)")
        if isinstance(layer, PIXELWISE):
            continue
        if isinstance(layer, GLOBAL) and y.shape[-1] == 1:
            kernel, stride, padding, dilation = size, 1, 0, 1
        elif isinstance(layer, WINDOWED):
            kernel, stride, padding = (_pair(getattr(layer, key))[0] for key in ("kernel_size", "stride", "padding"))
            dilation = _pair(getattr(layer, "dilation", 1))[0]
        else:
            raise ReceptiveFieldError(f"receptive_field cannot follow {type(model).__name__} at {name} "
                                      f"({type(layer).__name__}): it knows convolutions, pools and layers that "
                                      f"keep each pixel where it is")
        size = y.shape[-1]
        rf += (kernel - 1) * dilation * jump
        jump *= stride
        rows.append(dict(name=name, type=type(layer).__name__, kernel=kernel, stride=stride, padding=padding,
                         output_size=size, jump=jump, receptive_field=rf))
    return rows


def feature_receptive_field(model, input_size=(1, 28, 28)):
    """The receptive field of the last layer before global pooling: how much of the digit one feature sees."""
    rf = 1
    for row in receptive_field(model, input_size):
        if row["type"] in {cls.__name__ for cls in GLOBAL}:
            break
        rf = row["receptive_field"]
    return rf


def describe(model, input_size=(1, 28, 28)):
    """One line: the model's class, parameters and the receptive field of its features, or why that cannot be
    followed."""
    try:
        rf = feature_receptive_field(model, input_size)
        seen = f"a receptive field of {rf} pixel{'s' if rf != 1 else ''} before the head"
    except ReceptiveFieldError as error:
        if not isinstance(model, nn.Module):
            return str(error)
        seen = str(error)
    return f"{type(model).__name__}: {count_parameters(model):,} parameters, {seen}"


def layer_costs(model, input_size=(1, 28, 28)):
    """What each convolution of `model` costs, in the order its forward runs them: one row each with its name, its
    input and output channels, its output size (pixels a side), its parameters (weights and bias) and the
    multiply-adds it takes per image. A convolution's parameters do not depend on the size of its map; its
    multiply-adds grow with it."""
    rows = []
    calls = blank_forward(model, input_size)
    for name, layer, _, output in calls:
        if isinstance(layer, nn.Conv2d):
            weights = layer.weight.numel()
            rows.append(dict(name=name, in_channels=layer.in_channels, out_channels=layer.out_channels,
                             output_size=output.shape[-1], parameters=sum(p.numel() for p in layer.parameters()),
                             multiply_adds=weights * output.shape[-2] * output.shape[-1]))
    return rows


def ingredients(model, input_size=(1, 28, 28)):
    """Which of the assignment's ingredients `model`'s forward uses: BatchNorm, Dropout (at a rate above 0), and
    global average pooling (an average that leaves one value per channel); with its parameter count. Layers are
    found, not operations: a forward that calls F.dropout or takes x.mean((2, 3)) is said to have neither."""
    layers = [(layer, output) for _, layer, _, output in blank_forward(model, input_size)]
    return {"parameters": count_parameters(model),
            "BatchNorm": any(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer, _ in layers),
            "Dropout": any(isinstance(layer, nn.modules.dropout._DropoutNd) and layer.p > 0 for layer, _ in layers),
            "global average pooling": any(isinstance(layer, nn.AdaptiveAvgPool2d | nn.AvgPool2d)
                                          and tuple(output.shape[-2:]) == (1, 1) for layer, output in layers)}
