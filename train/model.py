"""The builtin detector network: a small fully-convolutional net with a ~23-px receptive field.

It sees only a fixed high-pass residual of the pixels (image minus its 3x3 local mean), so colour and
content matter little; it emits a logit map at 1/4 resolution whose mean is the crop's logit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESIDUAL_GAIN = 8.0


class LocalNet(nn.Module):
    def __init__(self, width: int = 32, luma: bool = False) -> None:
        super().__init__()
        w = width
        self.luma = luma
        cin = 2 if luma else 3

        def cbr(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *cbr(cin, w // 2 + w // 4), *cbr(w // 2 + w // 4, w, 2), *cbr(w, w), *cbr(w, 2 * w, 2), *cbr(2 * w, 2 * w)
        )
        self.head = nn.Conv2d(2 * w, 1, 1)

    def logit_map(self, x: torch.Tensor) -> torch.Tensor:
        """x: N,3,H,W in [0,1] -> N,1,H/4,W/4 logits."""
        if self.luma:
            # luma only: JPEG's 4:2:0 chroma upsampling would otherwise mimic generator upsampling traces
            y = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
            hp = y - F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
            # NPR-style: residual against the 2x2 block mean (nearest-upsampling correlations)
            npr = y - F.interpolate(F.avg_pool2d(y, 2), scale_factor=2.0, mode="nearest")
            return self.head(self.body(torch.cat([hp, npr], dim=1) * RESIDUAL_GAIN))
        hp = x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return self.head(self.body(hp * RESIDUAL_GAIN))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit_map(x).mean(dim=(1, 2, 3))


class MapOnly(nn.Module):
    """Export wrapper: uint8-range float input N,3,H,W (0..255) -> logit map."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.logit_map(x / 255.0)


class StudentNet(nn.Module):
    """The distilled builtin detector: a plain conv net (three stride-2 stages) that sees 2x-reduced tiles
    and regresses the TAEF2 latent-cycle teacher's tile score (train/distill.py). It emits a score map at
    1/8 resolution whose mean is the tile's score; `logit_map` keeps LocalNet's interface for export and
    scoring."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width

        def cbr(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(*cbr(3, w), *cbr(w, w, 2), *cbr(w, w), *cbr(w, 2 * w, 2), *cbr(2 * w, 2 * w),
                                  *cbr(2 * w, 2 * w, 2))
        self.head = nn.Conv2d(2 * w, 1, 1)

    def logit_map(self, x: torch.Tensor) -> torch.Tensor:
        """x: N,3,H,W in [0,1] -> N,1,H/8,W/8 scores."""
        return self.head(self.body(x - 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit_map(x).mean(dim=(1, 2, 3))
