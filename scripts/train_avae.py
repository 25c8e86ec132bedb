"""Train the A-VAE purifier (faceguard/audit/avae.py) on clean aligned faces.

Zhou, Liang and Chen, ECCV 2020: loss = GAN + KL, no pixel loss; Adam with beta1 = 0,
beta2 = 0.99 (the paper's lr is 1e-3; ``--lr`` sets ours). Faces come from
../shared/data/celeb24 (112 px aligned crops, enlarged to the generator's 128 px), split
by identity: the purifier's 4 validation people are never seen in training.
Augmentation, one draw per face: horizontal flip, scale 0.95-1.05, shift up to 3 px,
brightness and contrast +-10%. The generator's weights are averaged over steps
(exponential moving average, decay 0.999) and that average is what is saved.

The discriminator uses the non-saturating logistic loss with an R1 penalty on real faces
(Mescheder et al. 2018) every 4 steps, for stability on a small data set.

On a GPU (``--device cuda``) a few minutes give a usable model; on 2 CPU cores train
for about an hour (``--minutes 60``)::

    .venv/bin/python scripts/train_avae.py --out faceguard/resources/avae.pt --minutes 60
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceguard.audit.avae import (  # noqa: E402
    OUTPUT_PX,
    Discriminator,
    Generator,
    kl_divergence,
    project,
    save_avae,
    shrink,
)

DATA = Path(os.environ.get("FACEGUARD_TEST_DATA", REPO.parent / "shared" / "data"))
VALIDATION = ["Barack_Obama", "James_Spader", "Leonardo_DiCaprio", "Miley_Cyrus"]


def load_faces(folder: Path, people: list[str]) -> torch.Tensor:
    """All PNG faces of ``people`` as (N, 3, 128, 128) float in [0, 1]."""
    arrays = [np.asarray(Image.open(f).convert("RGB"), np.float32) / 255
              for p in people for f in sorted((folder / p).glob("*.png"))]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return F.interpolate(x, size=(OUTPUT_PX, OUTPUT_PX), mode="bicubic",
                         align_corners=False).clamp(0, 1)


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per-face flip, scale 0.95-1.05, shift +-3 px, brightness and contrast +-10%."""
    b, dev = len(x), x.device
    u = torch.rand(b, 6, generator=g, device=dev)
    flip = torch.where(u[:, 0] < 0.5, -1.0, 1.0)
    scale = 0.95 + 0.1 * u[:, 1]
    shift = (u[:, 2:4] - 0.5) * 2 * (3 / OUTPUT_PX) * 2  # normalised coordinates
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1] = flip / scale, 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                      align_corners=False)
    bright = (u[:, 4] - 0.5) * 0.2
    contrast = 1 + (u[:, 5] - 0.5) * 0.2
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast[:, None, None, None] + mean
            + bright[:, None, None, None]).clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean PSNR in dB over the batch, images in [0, 1]."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def validate(g_ema: Generator, val: torch.Tensor, seed: int) -> dict:
    """PSNR of the projection (M = 32, tau = 0.03) to the face, for clean faces and for
    faces with +-8/255 random-sign noise (a cloak-sized L-inf budget)."""
    gen = torch.Generator(device=val.device).manual_seed(seed)
    sign = torch.randint(0, 2, val.shape, generator=gen, device=val.device) * 2 - 1
    noisy = (val + sign * (8 / 255)).clamp(0, 1)
    clean_out = torch.cat([project(g_ema, v, generator=gen) for v in val.split(16)])
    noisy_out = torch.cat([project(g_ema, v, generator=gen) for v in noisy.split(16)])
    return {"psnr_clean": round(psnr(clean_out, val), 2),
            "psnr_noisy_input": round(psnr(noisy, val), 2),
            "psnr_noisy_projected": round(psnr(noisy_out, val), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "faceguard/resources/avae.pt")
    parser.add_argument("--data", type=Path, default=DATA / "celeb24")
    parser.add_argument("--minutes", type=float, default=60.0, help="training time limit")
    parser.add_argument("--steps", type=int, default=140_000, help="step limit (the paper's)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--kl", type=float, default=1.0, help="weight of the KL term")
    parser.add_argument("--r1", type=float, default=1.0, help="R1 penalty weight")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, help="JSON log (default: next to --out)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    people = sorted(p.name for p in args.data.iterdir() if p.is_dir())
    train_people = [p for p in people if p not in VALIDATION]
    train = load_faces(args.data, train_people).to(dev)
    val = load_faces(args.data, VALIDATION).to(dev)
    print(f"{len(train)} training faces of {len(train_people)} people, {len(val)} validation "
          f"faces of {len(VALIDATION)} people, on {dev}", flush=True)

    g, d = Generator(width=args.width).to(dev), Discriminator(width=args.width).to(dev)
    g_ema = copy.deepcopy(g).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), lr=args.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=args.lr, betas=(0.0, 0.99))
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    log: list[dict] = []
    started, step = time.perf_counter(), 0
    limit = args.minutes * 60
    while step < args.steps and time.perf_counter() - started < limit:
        idx = torch.randint(0, len(train), (args.batch,), generator=gen, device=dev)
        real = augment(train[idx], gen)
        x32 = shrink(real)
        # discriminator
        fake, _, _ = g(x32, gen)
        loss_d = (F.softplus(-d(real, x32)) + F.softplus(d(fake.detach(), x32))).mean()
        if step % 4 == 0:  # lazy R1 on real faces
            real_r = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(d(real_r, x32).sum(), real_r, create_graph=True)
            loss_d = loss_d + args.r1 / 2 * 4 * grad.square().flatten(1).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # generator: fool the discriminator, keep q(z|x) near the prior
        fake, mean, logvar = g(x32, gen)
        adv = F.softplus(-d(fake, x32)).mean()
        kl = kl_divergence(mean, logvar).mean()
        loss_g = adv + args.kl * kl
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for pe, p in zip(g_ema.parameters(), g.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
        step += 1
        if step % 500 == 0 or step == 1:
            entry = {"step": step, "seconds": round(time.perf_counter() - started, 1),
                     "loss_d": round(loss_d.item(), 4), "loss_g_adv": round(adv.item(), 4),
                     "kl": round(kl.item(), 4)}
            if step % 5000 == 0:
                entry.update(validate(g_ema, val, args.seed))
            log.append(entry)
            print(json.dumps(entry), flush=True)
            if not all(math.isfinite(v) for v in entry.values()):
                sys.exit("training diverged (a loss is not finite)")
            if step % 2000 == 0:  # a time limit that kills the run keeps the last save
                save_avae(copy.deepcopy(g_ema).cpu(), args.out, {"steps": str(step)})
    seconds = time.perf_counter() - started
    final = validate(g_ema, val, args.seed)
    print(json.dumps({"final": final}), flush=True)
    info = {"made_by": "scripts/train_avae.py " + " ".join(sys.argv[1:]),
            "date": datetime.date.today().isoformat(), "steps": str(step),
            "seconds": f"{seconds:.0f}", "device": str(dev) + (
                f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
            "train_faces": str(len(train)), "validation_people": ", ".join(VALIDATION)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_avae(g_ema.cpu(), args.out, info)
    sha = hashlib.sha256(args.out.read_bytes()).hexdigest()
    n_params = sum(p.numel() for p in g_ema.parameters())
    summary = {"info": info, "parameters": n_params, "bytes": args.out.stat().st_size,
               "sha256": sha, "final": final, "log": log}
    (args.log or args.out.with_suffix(".json")).write_text(json.dumps(summary, indent=1))
    print(f"saved {args.out} ({args.out.stat().st_size} bytes, {n_params} parameters, "
          f"{step} steps in {seconds:.0f} s, sha256 {sha})", flush=True)


if __name__ == "__main__":
    main()
