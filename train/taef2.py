"""Own implementation of the TAEF2 tiny autoencoder (FLUX.2-style latent space, 32 channels, 8x).

Architecture facts (layer order, the optional 1x1 / GroupNorm "midblock" branch in the latent-resolution
blocks, tanh clamp of latents at +-3, images in [0, 1]) come from madebyollin/taesd's README and taesd.py
(MIT); the layout below is written to match the state-dict keys of taef2_encoder.pth / taef2_decoder.pth.
Used only for training (the cycle export, the builtin student's teacher, the "aligned" recipe); never
imported by fakescope_cli.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

LATENT_CHANNELS = 32
WIDTH = 64


def _c3(cin: int, cout: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


class _TanhClamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3.0 * torch.tanh(x / 3.0)


class _ResBlock(nn.Module):
    """Three 3x3 convs with a residual add; `pool` is a per-pixel bottleneck with GroupNorm (TAEF2)."""

    def __init__(self, ch: int, midblock: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_c3(ch, ch), nn.ReLU(), _c3(ch, ch), nn.ReLU(), _c3(ch, ch))
        self.pool: nn.Module | None = None
        if midblock:
            wide = 4 * ch
            self.pool = nn.Sequential(
                nn.Conv2d(ch, wide, 1, bias=False), nn.GroupNorm(4, wide), nn.ReLU(), nn.Conv2d(wide, ch, 1, bias=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return torch.relu(self.conv(x) + x)


def build_encoder() -> nn.Sequential:
    layers: list[nn.Module] = [_c3(3, WIDTH), _ResBlock(WIDTH)]
    for stage in range(3):
        layers.append(_c3(WIDTH, WIDTH, stride=2, bias=False))
        layers.extend(_ResBlock(WIDTH, midblock=(stage == 2)) for _ in range(3))
    layers.append(_c3(WIDTH, LATENT_CHANNELS))
    return nn.Sequential(*layers)


def build_decoder() -> nn.Sequential:
    layers: list[nn.Module] = [_TanhClamp(), _c3(LATENT_CHANNELS, WIDTH), nn.ReLU()]
    for stage in range(3):
        layers.extend(_ResBlock(WIDTH, midblock=(stage == 0)) for _ in range(3))
        layers.append(nn.Upsample(scale_factor=2))
        layers.append(_c3(WIDTH, WIDTH, bias=False))
    layers.extend([_ResBlock(WIDTH), _c3(WIDTH, 3)])
    return nn.Sequential(*layers)


class TAEF2(nn.Module):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.encoder = build_encoder()
        self.decoder = build_decoder()
        self.encoder.load_state_dict(torch.load(folder / "taef2_encoder.pth", map_location="cpu", weights_only=True))
        self.decoder.load_state_dict(torch.load(folder / "taef2_decoder.pth", map_location="cpu", weights_only=True))
        self.eval()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, decoder: nn.Module | None = None) -> torch.Tensor:
        """x: N,3,H,W in [0,1], H and W multiples of 8 -> decoded image in [0,1]."""
        return (self.decoder if decoder is None else decoder)(self.encoder(x)).clamp(0.0, 1.0)

    def decoder_variants(self, seed: int = 1, jitter: float = 0.05) -> list[nn.Module]:
        """The decoder and three variants of it, to try whether traces of a family of decoders carry
        over better than those of one: bilinear instead of nearest upsampling; every conv weight
        scaled by N(1, jitter); both. (Tried: no clear gain; see the builtin model card.)"""
        import copy

        gen = torch.Generator().manual_seed(seed)
        variants: list[nn.Module] = [self.decoder]
        for bilinear, jittered in ((True, False), (False, True), (True, True)):
            dec = copy.deepcopy(self.decoder)
            for m in dec.modules():
                if bilinear and isinstance(m, nn.Upsample):
                    m.mode = "bilinear"
            if jittered:
                with torch.no_grad():
                    for p in dec.parameters():
                        if p.dim() == 4:
                            p.mul_(1.0 + jitter * torch.randn(p.shape, generator=gen))
            variants.append(dec)
        return variants


class CycleStats(nn.Module):
    """The latent-cycle statistics of tiles: 0..255 N,3,H,W -> N,2 [log latent cycle distance, log latent variance].

    Encode, decode, encode again; an image a latent generator decoded moves little on the way round. The
    `cycle` detector's ONNX graph and the builtin student's teacher are this module.
    """

    def __init__(self, ae: TAEF2) -> None:
        super().__init__()
        self.encoder, self.decoder = ae.encoder, ae.decoder

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        x = tiles / 255.0
        z1 = self.encoder(x)
        z2 = self.encoder(self.decoder(z1).clamp(0.0, 1.0))
        flat = z1.flatten(1)
        n = flat.shape[1]
        var = ((flat - flat.mean(1, keepdim=True)) ** 2).sum(1) / (n - 1)
        dist = ((z2 - z1) ** 2).flatten(1).mean(1)
        return torch.stack([torch.log(dist + 1e-9), torch.log(var + 1e-9)], 1)
