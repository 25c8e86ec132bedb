"""Train the learned purifier (faceguard/audit/purifier.py) on clean aligned faces.

MagNet's reformer recipe (Meng and Chen, CCS 2017): the input is a clean face plus mild
random noise, the target is the clean face, the loss is the mean squared error. Faces
come from ../shared/data/celeb24 (112 px aligned crops), split by identity so the
validation people are never seen in training. Augmentation: horizontal flip, random
rescale (0.75-1.5x) and random 64 px crops, so the fully convolutional network meets
faces at several scales. Noise: Gaussian with sigma ~ U(0, 0.04) plus a random-sign
+-eps pattern with eps ~ U(0, 8/255) (an L-inf budget like a cloak's).

Runs in a few minutes on one CPU core::

    .venv/bin/python scripts/train_purifier.py --out faceguard/resources/purifier.pt
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceguard.audit.purifier import PurifierNet, save_purifier  # noqa: E402

DATA = Path(os.environ.get("FACEGUARD_TEST_DATA", REPO.parent / "shared" / "data"))


def load_faces(folder: Path, people: list[str]) -> torch.Tensor:
    """All PNG faces of ``people`` as (N, 3, 112, 112) float in [0, 1]."""
    arrays = [
        np.asarray(Image.open(f).convert("RGB"), np.float32) / 255
        for p in people
        for f in sorted((folder / p).glob("*.png"))
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def add_noise(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mild noise per image: Gaussian sigma ~ U(0, 0.04) + sign noise eps ~ U(0, 8/255)."""
    b = x.shape[0]
    sigma = torch.rand(b, 1, 1, 1, generator=g) * 0.04
    eps = torch.rand(b, 1, 1, 1, generator=g) * (8 / 255)
    sign = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    noisy = x + sigma * torch.randn(x.shape, generator=g) + eps * sign
    return noisy.clamp(0, 1)


def augment(x: torch.Tensor, crop: int, rng: random.Random) -> torch.Tensor:
    """Random flip, rescale (0.75-1.5x) and crop of a batch (one draw per batch)."""
    if rng.random() < 0.5:
        x = x.flip(-1)
    size = max(crop, round(x.shape[-1] * rng.uniform(0.75, 1.5)))
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    top, left = rng.randint(0, size - crop), rng.randint(0, size - crop)
    return x[..., top : top + crop, left : left + crop].clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean PSNR in dB over the batch, images in [0, 1]."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "faceguard/resources/purifier.pt")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--bottleneck", type=int, default=32)
    parser.add_argument("--val-people", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    g = torch.Generator().manual_seed(args.seed)

    folder = DATA / "celeb24"
    people = sorted(p.name for p in folder.iterdir() if p.is_dir())
    rng.shuffle(people)
    val_people, train_people = sorted(people[: args.val_people]), sorted(people[args.val_people :])
    train, val = load_faces(folder, train_people), load_faces(folder, val_people)
    val_noisy = add_noise(val, torch.Generator().manual_seed(1))
    print(f"train {len(train)} faces of {len(train_people)} people; val {len(val)} of {val_people}")

    net = PurifierNet(args.width, args.bottleneck)
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps = args.epochs * math.ceil(len(train) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=steps, pct_start=0.2
    )
    print(f"{n_params} parameters, {steps} steps")

    start = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train), generator=g)
        losses = []
        for i in range(0, len(train), args.batch):
            clean = augment(train[order[i : i + args.batch]], args.crop, rng)
            loss = F.mse_loss(net(add_noise(clean, g)), clean)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        net.eval()
        with torch.no_grad():
            out_clean, out_noisy = net(val), net(val_noisy)
        print(
            f"epoch {epoch + 1:3d}  train mse {np.mean(losses):.5f}  "
            f"val PSNR clean->out {psnr(out_clean, val):.2f} dB, "
            f"noisy in {psnr(val_noisy, val):.2f} -> out {psnr(out_noisy, val):.2f} dB  "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    minutes = (time.perf_counter() - start) / 60
    info = {
        "data": f"celeb24 train people {train_people}; validation people {val_people}",
        "recipe": f"epochs={args.epochs} batch={args.batch} crop={args.crop} lr={args.lr} "
        f"seed={args.seed} loss=MSE noise=gauss U(0,0.04)+sign U(0,8/255)",
        "result": f"val PSNR clean {psnr(out_clean, val):.2f} dB, noisy "
        f"{psnr(val_noisy, val):.2f} -> {psnr(out_noisy, val):.2f} dB",
        "date": datetime.date.today().isoformat(),
        "train_minutes": f"{minutes:.1f}",
    }
    save_purifier(net, args.out, info)
    print(f"saved {args.out} ({args.out.stat().st_size} bytes) after {minutes:.1f} min")


if __name__ == "__main__":
    main()
