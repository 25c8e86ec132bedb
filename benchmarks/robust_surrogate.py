"""A transfer lever screened and not kept: a slightly robust copy of a surrogate recognizer.

Perturbations made on a robust model carry over to other models better (Springer, Mitchell
and Kenyon, "A Little Robustness Goes a Long Way: Leveraging Robust Features for Targeted
Transfer Attacks", NeurIPS 2021). The copy is made by robust self-distillation: it starts
from the published weights, and its embedding of ``x + delta`` is pulled to the published
model's embedding of ``x``, ``delta`` the L-inf PGD (2 steps, radius ``--eps``/255) that
pushes them apart most, plus the same pull on ``x`` itself, so it keeps the identity space
while its gradients smooth.

Three steps, each its own command:

- ``train MODEL OUT``: the robust copy of MODEL (mobileface or faceres) on celeb24's 20
  training people (the purifier's split: Barack_Obama, James_Spader, Leonardo_DiCaprio and
  Miley_Cyrus held out), saved to OUT (every buffer: a file outside the repository, as the
  copy is derived from third-party weights). Prints verification on celeb24 and how far
  PGD (5 steps, 4/255) moves the held-out faces' embeddings, for both models.
- ``crops MODEL [OUT ...]``: PGD (10 steps) away from each held-out face's own embedding on
  MODEL as published and on each robust copy; how far every installed recognizer moves,
  in units of its threshold (a fixed-L-inf transfer check, no visibility floor), written to
  ``results/robust-surrogate-crops-MODEL.json``.
- ``album --robust MODEL=OUT@THRESHOLD ... [album_distances.py's arguments]``: the album
  screen of ``album_distances.py`` with the robust copies' weights (and thresholds) in the
  cloak's own recognizers; the judges keep the published weights.

Usage: .venv/bin/python benchmarks/robust_surrogate.py train mobileface /tmp/mf.pt
       .venv/bin/python benchmarks/robust_surrogate.py crops mobileface /tmp/mf.pt
       .venv/bin/python benchmarks/robust_surrogate.py album --robust mobileface=/tmp/mf.pt@0.659
           --out album-distances-robust
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, write_results  # noqa: E402

from faceguard.models.base import Recognizer  # noqa: E402
from faceguard.models.human import load_face_folder, verification_metrics  # noqa: E402
from faceguard.models.registry import load_recognizer  # noqa: E402

HELD_OUT = {"Barack_Obama", "James_Spader", "Leonardo_DiCaprio", "Miley_Cyrus"}


def celeb24() -> tuple[torch.Tensor, list[str]]:
    """celeb24's aligned 112 px crops as (N, 3, 112, 112) in [0, 1], and their people."""
    images, labels = load_face_folder(data_dir("celeb24"))
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, labels


def sized(recognizer: Recognizer):
    """(B, 3, 112, 112) crops -> the recognizer's own input size (faceres: 224)."""
    size = recognizer.input_size
    return lambda x: x if x.shape[-1] == size else F.interpolate(
        x, size=size, mode="bilinear", align_corners=False)


def cosine_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1 - F.cosine_similarity(a, b, dim=1)


def pgd_away(net: Recognizer, x: torch.Tensor, target: torch.Tensor, eps: float, steps: int,
             step: float, start_random: bool) -> torch.Tensor:
    """``x`` moved within L-inf ``eps`` to push ``net``'s embedding from ``target``."""
    size = sized(net)
    delta = (torch.rand_like(x) * 2 - 1) * eps if start_random else torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = cosine_gap(net(size((x + delta).clamp(0, 1))), target).sum()
        grad, = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1).detach()


def trainable(net: Recognizer) -> list[torch.Tensor]:
    """The converted graph's weights: its float tensors (kept as buffers), not its scalars."""
    return [b for n, b in net.named_buffers()
            if b.dtype == torch.float32 and b.numel() > 1 and n != "bgr_mean"]


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    faces, labels = celeb24()
    training = torch.tensor([name not in HELD_OUT for name in labels])
    published, robust = load_recognizer(args.model, "cpu"), load_recognizer(args.model, "cpu")
    size, eps = sized(published), args.eps / 255
    weights = trainable(robust)
    for w in weights:
        w.requires_grad_(True)
    optimiser = torch.optim.Adam(weights, lr=args.lr)
    x_all = faces[training]
    started = time.perf_counter()
    for epoch in range(args.epochs):
        total = 0.0
        for batch in torch.randperm(len(x_all)).split(32):
            x = x_all[batch].flip(-1) if rng.random() < 0.5 else x_all[batch]
            with torch.no_grad():
                target = published(size(x))
            moved = pgd_away(robust, x, target, eps, steps=2, step=eps, start_random=True)
            loss = cosine_gap(robust(size(moved)), target).mean() + \
                cosine_gap(robust(size(x)), target).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        print(f"epoch {epoch + 1}: loss {total / len(x_all):.4f}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    for w in weights:
        w.requires_grad_(False)
    held = faces[~training]
    for name, net in (("published", published), ("robust", robust)):
        with torch.no_grad():
            every = F.normalize(net(size(faces)), dim=1)
            own = net(size(held))
        found = verification_metrics(every, labels)
        moved = pgd_away(net, held, own, 4 / 255, steps=5, step=4 / 255, start_random=True)
        with torch.no_grad():
            gap = float(cosine_gap(net(size(moved)), own).mean())
        print(f"{name}: celeb24 AUC {found['auc']:.3f}, TAR {found['tar']:.3f} at FAR 1% "
              f"(threshold {found['threshold']:.3f}); PGD 4/255 moves the held-out faces "
              f"by {gap:.3f} cosine", flush=True)
    torch.save({n: b.clone() for n, b in robust.named_buffers()}, args.out)


def with_weights(net: Recognizer, path: str) -> Recognizer:
    """``net`` with the buffers saved by ``train`` (the same model's copy)."""
    state = torch.load(path)
    for name, buffer in net.named_buffers():
        buffer.copy_(state[name])
    return net


def crops(args: argparse.Namespace) -> None:
    from protection_data import embed_given

    from faceguard.models.catalogue import one_per_family
    from faceguard.models.ensemble import Ensemble

    torch.manual_seed(0)
    faces, labels = celeb24()
    held = faces[torch.tensor([name in HELD_OUT for name in labels])][::3]
    judges = Ensemble.load(one_per_family())
    with torch.no_grad():
        clean = embed_given(judges, held)
    eps, rows, started = args.eps / 255, {}, time.perf_counter()
    for path in ["published", *args.copies]:
        net = load_recognizer(args.model, "cpu")
        if path != "published":
            with_weights(net, path)
        with torch.no_grad():
            own = net(sized(net)(held))
        moved = pgd_away(net, held, own, eps, steps=10, step=eps / 4, start_random=False)
        with torch.no_grad():
            seen = embed_given(judges, moved)
        units = {m: round(float(judges[m].compare(seen[m], clean[m]).mean()
                                / judges[m].threshold), 3) for m in judges.names}
        print(f"{args.model} {path}, L-inf {args.eps:g}/255, {len(held)} crops: {units}",
              flush=True)
        rows[Path(path).name] = units
    write_results(f"robust-surrogate-crops-{args.model}",
                  {"model": args.model, "eps_255": args.eps, "steps": 10, "crops": len(held),
                   "note": "mean distance moved from each crop's clean embedding, in units of "
                           "each recognizer's threshold; made on the first (published) or a "
                           "robust copy from `train`"},
                  rows, started=started)


def album(robust: list[str], rest: list[str]) -> None:
    import album_distances
    from protection_album import ensemble_loader

    swaps = {}
    for item in robust:
        model, _, where = item.partition("=")
        path, _, threshold = where.partition("@")
        swaps[model] = (path, float(threshold) if threshold else None)

    def robust_loader(judges):
        load, done = ensemble_loader(judges), set()

        def loaded(names):
            ensemble = load(names)
            if ensemble is not judges and id(ensemble) not in done:
                for model, (path, threshold) in swaps.items():
                    if model in ensemble.names:
                        with_weights(ensemble[model], path)
                        if threshold is not None:  # the copy's own FAR 1% on celeb24
                            ensemble[model].threshold = threshold
                done.add(id(ensemble))
            return ensemble

        return loaded

    album_distances.ensemble_loader = robust_loader
    sys.argv = [sys.argv[0], *rest]
    album_distances.main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("train")
    one.add_argument("model", choices=["mobileface", "faceres"])
    one.add_argument("out")
    one.add_argument("--eps", type=float, default=4.0, help="PGD radius, in 1/255")
    one.add_argument("--epochs", type=int, default=30)
    one.add_argument("--lr", type=float, default=1e-4)
    two = commands.add_parser("crops")
    two.add_argument("model", choices=["mobileface", "faceres"])
    two.add_argument("copies", nargs="*")
    two.add_argument("--eps", type=float, default=8.0, help="PGD radius, in 1/255")
    three = commands.add_parser("album")
    three.add_argument("--robust", action="append", default=[],
                       metavar="MODEL=PATH@THRESHOLD")
    args, rest = parser.parse_known_args()
    torch.set_num_threads(args.threads)
    if args.command == "album":
        album(args.robust, rest)
    elif rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    else:
        {"train": train, "crops": crops}[args.command](args)


if __name__ == "__main__":
    main()
