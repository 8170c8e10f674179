"""The lab's networks: the designs on the path from the 593,200-parameter baseline to Net (tools.experiments), and
Net with one ingredient taken away (tools.ablation). They are trained to measure, never shipped: no weights are
committed for them, and the commands that read digits do not offer them. Each has a `key`, the name its runs record
as their config's model; `fit(config, model=Arch3)` trains one.

Comments give each block's output size (channels x height x width) and receptive field (RF).
"""

from torch import nn

from s6_model import GapNet, conv_bn, net_features


class BaselineNet(nn.Module):
    """The starting point: 593,200 parameters, no BatchNorm, no Dropout, a 4096->50 dense head."""

    key = "baseline"

    def __init__(self, dropout=0.0):
        super().__init__()  # dropout is accepted for a uniform constructor and unused: the original network had none
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),  # 32x26x26, RF 3
            nn.Conv2d(32, 64, 3), nn.ReLU(),  # 64x24x24, RF 5
            nn.MaxPool2d(2),  # 64x12x12, RF 6
            nn.Conv2d(64, 128, 3), nn.ReLU(),  # 128x10x10, RF 10
            nn.Conv2d(128, 256, 3), nn.ReLU(),  # 256x8x8, RF 14
            nn.MaxPool2d(2),  # 256x4x4, RF 16
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # 4096
            nn.Linear(4096, 50), nn.ReLU(),
            nn.Linear(50, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class Arch1(GapNet):
    """Experiment 1: small and shallow; three convs leave the RF at 10 pixels of a 28-pixel digit."""

    key = "arch1"

    def __init__(self, dropout=0.05):
        super().__init__(nn.Sequential(
            conv_bn(1, 16, padding=0, dropout=dropout),  # 16x26x26, RF 3
            conv_bn(16, 16, padding=0, dropout=dropout),  # 16x24x24, RF 5
            nn.MaxPool2d(2),  # 16x12x12, RF 6
            conv_bn(16, 20, padding=0),  # 20x10x10, RF 10
        ), channels=20)


class Arch2(GapNet):
    """Experiment 2: 32 channels early spend the budget on width; the RF stops at 8."""

    key = "arch2"

    def __init__(self, dropout=0.05):
        super().__init__(nn.Sequential(
            conv_bn(1, 16, padding=0, dropout=dropout),  # 16x26x26, RF 3
            conv_bn(16, 32, padding=0, dropout=dropout),  # 32x24x24, RF 5
            conv_bn(32, 32, padding=0),  # 32x22x22, RF 7
            nn.MaxPool2d(2),  # 32x11x11, RF 8
        ), channels=32)


class Arch3(GapNet):
    """Experiment 3: 32 channels throughout reach 19K parameters with only three convs: RF 10."""

    key = "arch3"

    def __init__(self, dropout=0.05):
        super().__init__(nn.Sequential(
            conv_bn(1, 32, padding=0, dropout=dropout),  # 32x26x26, RF 3
            conv_bn(32, 32, padding=0, dropout=dropout),  # 32x24x24, RF 5
            nn.MaxPool2d(2),  # 32x12x12, RF 6
            conv_bn(32, 32, padding=0),  # 32x10x10, RF 10
        ), channels=32)


class NetWithoutBatchNorm(GapNet):
    """The ablation's Net without BatchNorm: each convolution has its own bias instead (19,386 parameters)."""

    key = "net-no-bn"

    def __init__(self, dropout=0.05):
        super().__init__(net_features(dropout, batchnorm=False), channels=32)


class NetWithDenseHead(nn.Module):
    """The ablation's Net without global average pooling: a dense layer reads the whole 7x7 map instead. The
    last block is narrowed to 10 channels, so that the network stays near Net's size (19,290 parameters):
    a dense layer over Net's 32x7x7 map would take 15,690 parameters on its own."""

    key = "net-dense-head"

    def __init__(self, dropout=0.05):
        super().__init__()
        self.features = net_features(dropout, last=10)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(10 * 7 * 7, 10))  # 10

    def forward(self, x):
        return self.head(self.features(x))


# The lab's networks by key: the experiments' designs, then the ablation's variants of Net.
NETWORKS = {cls.key: cls for cls in (BaselineNet, Arch1, Arch2, Arch3, NetWithoutBatchNorm, NetWithDenseHead)}
