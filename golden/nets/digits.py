"""A small AlexNet-style network for scikit-learn's 8x8 digits (upsampled to 16x16), and its training.

The self-contained default workload: it needs no shared data. Architecture (input 1x16x16, see
:func:`golden.data.load_digits` for the preprocessing)::

    features.0  conv 1->16, 5x5, pad 2   + ReLU (features.1) + max-pool 2x2 (features.2)   -> 16x8x8
    features.3  conv 16->24, 3x3, pad 1  + ReLU (features.4) + max-pool 2x2 (features.5)   -> 24x4x4
    features.6  conv 24->40, 3x3, pad 1  + ReLU (features.7)                               -> 40x4x4
    features.8  conv 40->32, 3x3, pad 1  + ReLU (features.9) + max-pool 2x2 (features.10)  -> 32x2x2
    classifier.0 FC 128->64 + ReLU (classifier.1);  classifier.2 FC 64->10

Channel counts are deliberately not multiples of 12 so the engine's edge cases are exercised.

Training (:func:`train_digits`) is deterministic: fixed seed, CPU, one thread, plain SGD with momentum,
fixed batch order from a seeded generator; a few seconds. :func:`digits_state_dict` caches the result
under ``build/models/`` keyed by a hash of the recipe.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

TRAIN_SEED = 0
EPOCHS = 30
BATCH = 64
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
_RECIPE_VERSION = 1


class DigitsNet(nn.Module):
    """AlexNet-style digits classifier: 4 conv (ReLU, 3 max-pools) + 2 FC; input ``[N, 1, 16, 16]``."""

    net_name = "digits"

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(16, 24, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(24, 40, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(40, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def _recipe_key() -> str:
    recipe = (
        f"v{_RECIPE_VERSION}|{TRAIN_SEED}|{EPOCHS}|{BATCH}|{LR}|{MOMENTUM}|{WEIGHT_DECAY}|{DigitsNet()!r}"
    )
    return hashlib.sha1(recipe.encode()).hexdigest()[:10]


def train_digits(seed: int = TRAIN_SEED, epochs: int = EPOCHS) -> tuple[dict[str, torch.Tensor], float]:
    """Train :class:`DigitsNet` on the fixed digits training split; return (state_dict, test top-1).

    Deterministic for a given machine: ``torch.manual_seed(seed)``, one CPU thread during training,
    a seeded shuffling generator, SGD (lr 0.05, momentum 0.9, weight decay 5e-4, cosine decay).
    """
    from golden.data import load_digits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        net = DigitsNet()
        xtr, ytr = (torch.from_numpy(a) for a in load_digits("train"))
        xte, yte = (torch.from_numpy(a) for a in load_digits("test"))
        opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        steps = epochs * ((len(xtr) + BATCH - 1) // BATCH)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        g = torch.Generator().manual_seed(seed)
        net.train()
        for _ in range(epochs):
            perm = torch.randperm(len(xtr), generator=g)
            for i in range(0, len(xtr), BATCH):
                idx = perm[i : i + BATCH]
                loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        with torch.no_grad():
            acc = float((net(xte).argmax(1) == yte).float().mean())
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, acc


def digits_cache_path() -> Path:
    """Where the trained digits weights are cached: ``build/models/digits-<recipe hash>.pt``."""
    from golden.data import build_dir

    return build_dir("models") / f"digits-{_recipe_key()}.pt"


def digits_state_dict() -> dict[str, torch.Tensor]:
    """The trained digits weights: loaded from the cache, trained (and cached atomically) when absent."""
    path = digits_cache_path()
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        except Exception:  # a damaged cache file: retrain below
            pass
    state, acc = train_digits()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"state_dict": state, "test_top1": acc, "recipe": _recipe_key()}, tmp)
    os.replace(tmp, path)
    return state


def digits_test_top1_cached() -> float | None:
    """The test accuracy recorded with the cached weights (None when not trained yet)."""
    path = digits_cache_path()
    if not path.is_file():
        return None
    return float(torch.load(path, map_location="cpu", weights_only=True)["test_top1"])
