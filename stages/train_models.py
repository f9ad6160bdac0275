"""The model kinds an ensemble member can be. Each takes (B, C, H, W) float images of any size.

torch is imported where it is used: a run whose members never start (a short budget, too few groups) needs none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch itself is imported where it runs
    import torch
    from torch import nn


def build_model(kind: str, channels: int, height: int, width: int, n_classes: int) -> nn.Module:
    from torch import nn

    pixels = channels * height * width
    if kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(pixels, n_classes))
    if kind == "mlp":  # the classic homework net: two hidden layers of 128 and 64
        return nn.Sequential(
            nn.Flatten(), nn.Linear(pixels, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, n_classes)
        )
    if kind == "cnn":  # small enough to train a member in a couple of seconds on one core; any image size
        return nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d((7, 7)),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(32 * 7 * 7, 64),
            nn.ReLU(),
            nn.Linear(64, n_classes),
        )
    if kind == "conv4":  # four 3x3 conv layers of 16/32/64/128, as in the label-noise literature

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        return nn.Sequential(
            *block(channels, 16),
            nn.MaxPool2d(2),
            *block(16, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            *block(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, n_classes),
        )
    raise ValueError(f"unknown model kind {kind!r} (known: linear, mlp, cnn, conv4)")


def standardize(images) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W), each image to zero mean and unit spread.

    Per-image standardisation makes the models blind to brightness and contrast, which is exactly the
    perturbation a near-identical twin may carry."""
    import torch

    x = torch.as_tensor(images).permute(0, 3, 1, 2).float()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / std.clamp_min(1.0)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift every image of the batch by its own random offset of up to max_shift pixels (edges replicated)."""
    import torch
    from torch import nn

    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4, mode="replicate").permute(0, 2, 3, 1)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = dy[:, None, None] + torch.arange(h)[None, :, None]
    cols = dx[:, None, None] + torch.arange(w)[None, None, :]
    return padded[torch.arange(b)[:, None, None], rows, cols].permute(0, 3, 1, 2)


def random_affine(
    x: torch.Tensor, max_shift: int, generator: torch.Generator, max_rotation: float = 20.0, max_scale: float = 0.15
) -> torch.Tensor:
    """Shift by up to max_shift pixels, rotate by up to max_rotation degrees, scale by up to +-max_scale:
    the ways two honest writings of one digit differ, so tiny training sets generalise further."""
    import torch
    from torch import nn

    b, _, h, w = x.shape
    u = torch.rand(b, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * max_rotation * torch.pi / 180
    scale = 1 + u[:, 1] * max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, u[:, 2] * 2 * max_shift / w], 1),
            torch.stack([sin, cos, u[:, 3] * 2 * max_shift / h], 1),
        ],
        1,
    )
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, padding_mode="border", align_corners=False)
