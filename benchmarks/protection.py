"""Protection benchmark on celeb24: does the cloak make recognizers pick the wrong person?

Setting (split by identity and by image):
- identities: 24. The *user side* holds the first 12 (sorted by name): each is in turn a
  protected person, and the others are the user's ``--gallery`` for classifier methods.
- images of every identity: 8 *references* (the user's own photos: the clean centroid
  of feature objectives, the classifier's training data, the universal mask's faces),
  12 *gallery* images (the attacker's clean database, all 24 identities), and the rest
  (up to 10) are *probes*, which get cloaked.
- the attacker aligns each probe with the crop's own ArcFace alignment and takes the
  nearest gallery centroid among the 24 identities, per recognizer. Protection rate =
  share of cloaked probes whose top-1 identity is wrong (clean top-1 error is reported
  as the baseline).
- the cloak aligns with our own MTCNN landmarks, as the product does.

Reports, per method / preset / ensemble: white-box protection (recognizers in the
ensemble), transfer (recognizers of other families), after JPEG q75 (real Pillow
encode), beyond-threshold protection (the cloaked probe's distance to the person's clean
gallery centroid exceeds the recognizer's own same-person threshold), and how visible
the cloak is (faceguard.visibility: face SSIMULACRA2, its JPEG equivalent, CIEDE2000;
grey SSIM and PSNR for continuity), seconds per probe.

Usage: .venv/bin/python benchmarks/protection.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, write_results  # noqa: E402

from faceguard.align import ARCFACE_112, face_transform, warp  # noqa: E402
from faceguard.audit.defenses import JPEG  # noqa: E402
from faceguard.cloak.budget import face_weight, keep_floor, lightness_weight  # noqa: E402
from faceguard.cloak.recipe import (  # noqa: E402
    budget,
    fit_universal,
    make_cloak,
    objective_factory,
)
from faceguard.detect import Face, FaceDetector  # noqa: E402
from faceguard.identity import FaceClassifier, Person  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.settings import PERCEPTUAL_PRESETS, PRESETS, CloakSettings  # noqa: E402
from faceguard.visibility import face_box, measure_face  # noqa: E402

MODELS = ("dlib", "mobileface", "faceres")
FAMILY = {"dlib": "dlib", "mobileface": "mobileface", "faceres": "faceres"}


@dataclass
class Data:
    images: torch.Tensor  # (N, 3, 112, 112)
    labels: list[str]
    faces: list[Face]  # MTCNN on each crop
    refs: list[int]
    gallery: list[int]
    probes: list[int]
    user_ids: list[str]


BORDER = 56


def _shift(face: Face, d: float) -> Face:
    x0, y0, x1, y1 = face.box
    return Face((x0 + d, y0 + d, x1 + d, y1 + d), face.landmarks + d, face.score)


def load_data(root: Path, probes_per_id: int, user_ids: int, seed: int = 0) -> Data:
    detector = FaceDetector()
    rng = random.Random(seed)
    images, labels, faces = [], [], []
    refs, gallery, probes = [], [], []
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    for name in names:
        files = sorted((root / name).glob("*.png"))
        rng.shuffle(files)
        for k, f in enumerate(files):
            pixels = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255
            # MTCNN needs context around a tight crop (on the bare crop its landmarks are
            # about 7 px off, 3.6 px with a border: benchmarks/results/recognition.json)
            border = np.pad(pixels, ((BORDER, BORDER), (BORDER, BORDER), (0, 0)), mode="edge")
            found = [_shift(f, -BORDER) for f in detector(border)]
            if not found:
                continue
            idx = len(images)
            images.append(torch.from_numpy(pixels).permute(2, 0, 1))
            labels.append(name)
            faces.append(found[0])
            (refs if k < 8 else gallery if k < 20 else probes).append(idx)
    probes = [i for i in probes if labels[i] in names[:user_ids]]
    by_id: dict[str, list[int]] = {}
    for i in probes:
        by_id.setdefault(labels[i], []).append(i)
    probes = [i for ids in by_id.values() for i in ids[:probes_per_id]]
    return Data(torch.stack(images), labels, faces, refs, gallery, probes, names[:user_ids])


def embed_given(ensemble: Ensemble, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Embeddings with the crops' own ArcFace alignment (the attacker's view)."""
    out = {}
    with torch.no_grad():
        for m in ensemble.names:
            r = ensemble[m]
            t = face_transform(ARCFACE_112, r.template)
            out[m] = torch.cat([r.embed(warp(images[i:i + 64], t, r.input_size))
                                for i in range(0, len(images), 64)])
    return out


def top1_wrong(ensemble: Ensemble, data: Data, probe_images: torch.Tensor,
               gallery_emb: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per recognizer: share of probes whose nearest gallery centroid is another person."""
    names = sorted(set(data.labels))
    glabels = np.array([data.labels[i] for i in data.gallery])
    truth = [data.labels[i] for i in data.probes]
    emb = embed_given(ensemble, probe_images)
    out = {}
    for m in ensemble.names:
        cents = torch.stack([gallery_emb[m][torch.from_numpy(glabels == n)].mean(0)
                             for n in names])
        d = ensemble[m].compare(emb[m][:, None], cents[None])
        pred = [names[k] for k in d.argmin(1).tolist()]
        out[m] = round(float(np.mean([p != t for p, t in zip(pred, truth, strict=True)])), 4)
    return out


def beyond_threshold(ensemble: Ensemble, data: Data, probe_images: torch.Tensor,
                     gallery_emb: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per recognizer: share of probes farther from their own person's clean gallery
    centroid than the recognizer's same-person threshold (verification fails)."""
    glabels = np.array([data.labels[i] for i in data.gallery])
    emb = embed_given(ensemble, probe_images)
    out = {}
    for m in ensemble.names:
        own = torch.stack([gallery_emb[m][torch.from_numpy(glabels == data.labels[i])].mean(0)
                           for i in data.probes])
        d = ensemble[m].compare(emb[m], own)
        out[m] = round(float((d > ensemble[m].threshold).float().mean()), 4)
    return out


def quantise(images: torch.Tensor) -> torch.Tensor:
    return (images * 255).round() / 255


def cloak_probes(config: dict, data: Data, ensembles: dict, seed: int = 0) -> torch.Tensor:
    """Cloak every probe with the configuration (batched: all crops are 112x112)."""
    s = CloakSettings(method=config["method"], preset=config.get("preset", "balanced"),
                      eps=config.get("eps"), steps=config.get("steps"),
                      robust=config.get("robust"), floor=config.get("floor"),
                      delta_e=config.get("delta_e"),
                      models=tuple(config["models"]),
                      objective=config.get("objective", "feature"),
                      **{k: config[k] for k in ("texture",) if k in config}).resolved()
    ens = ensembles[tuple(config["models"])]
    x = data.images[data.probes]
    landmarks = np.stack([data.faces[i].landmarks for i in data.probes])
    weight = torch.cat([face_weight(data.faces[i], (0, 0, 112, 112)) for i in data.probes])
    if s.texture > 0:
        from faceguard.cloak.budget import texture_weight

        weight = weight * texture_weight(x, s.texture)
    weight = weight * lightness_weight(x, budget(s), s.delta_e)  # as cloak_face does
    return _keep_floor(s, data, x, _cloak(s, config, data, ens, x, landmarks, weight, seed))


def _keep_floor(s: CloakSettings, data: Data, x: torch.Tensor,
                cloaked: torch.Tensor) -> torch.Tensor:
    """The pipeline's last step on every method: scale each change down to the floor."""
    return torch.cat([keep_floor(x[k:k + 1], cloaked[k:k + 1], s.floor,
                                 face_box(data.faces[i].box, 112, 112))
                      for k, i in enumerate(data.probes)])


def _cloak(s, config, data, ens, x, landmarks, weight, seed) -> torch.Tensor:
    # the user's references: per protected person, their clean centroid / class
    ref_emb = {}
    with torch.no_grad():
        for i in data.refs:
            e = ens.embed(data.images[i:i + 1], data.faces[i].landmarks)
            ref_emb.setdefault(data.labels[i], []).append({m: v[0] for m, v in e.items()})
    people = [Person(n, {m: torch.stack([e[m] for e in ref_emb[n]]) for m in ens.names})
              for n in data.user_ids]
    probe_labels = [data.labels[i] for i in data.probes]
    gen = torch.Generator().manual_seed(seed)
    if s.universal:
        return _universal(s, config, data, ens, people, x, landmarks, weight, gen)
    if s.objective == "classifier":
        clf = FaceClassifier(people).fit()
        labels = [data.user_ids.index(n) for n in probe_labels]
        decoys = random.Random(seed)
        make = objective_factory(s, ens, classifier=clf, seed=seed)  # as the pipeline does
        out = []
        for k in range(len(x)):  # per probe: each has its own label (and decoy)
            target = None
            if config.get("targeted"):
                target = (labels[k] + 1 + decoys.randrange(len(people) - 1)) % len(people)
            obj = make(landmarks[k], labels[k], target)
            out.append(make_cloak(s)(x[k:k + 1], obj, weight[k:k + 1], gen))
        return torch.cat(out)
    centroids = {m: torch.stack([people[data.user_ids.index(n)].centroid(m)
                                 for n in probe_labels]) for m in ens.names}
    return make_cloak(s)(x, objective_factory(s, ens, centroids, seed=seed)(landmarks), weight,
                         gen)


def _universal(s, config, data, ens, people, x, landmarks, weight, gen) -> torch.Tensor:
    """One mask per person from their references, applied to their probes."""
    from faceguard.cloak.universal import UniversalMask, canonical_faces

    out = x.clone()
    clf = FaceClassifier(people).fit() if s.method == "universal" else None
    for person in people:
        refs = [i for i in data.refs if data.labels[i] == person.name]
        faces = torch.cat([canonical_faces(data.images[i:i + 1], data.faces[i].landmarks)
                           for i in refs])
        v, _, _ = fit_universal(s, ens, faces, person.centroids(), gen, clf)
        mask = UniversalMask(v, person.name, ens.names)
        for j, i in enumerate(data.probes):
            if data.labels[i] == person.name:
                out[j:j + 1] = mask.apply(x[j:j + 1], landmarks[j], weight[j:j + 1])
    return out


def run_config(config: dict, data: Data, ensembles: dict, attack: Ensemble,
               gallery_emb: dict) -> dict:
    t0 = time.perf_counter()
    cloaked = quantise(cloak_probes(config, data, ensembles))
    seconds = (time.perf_counter() - t0) / len(data.probes)
    clean = data.images[data.probes]
    made_on = {FAMILY[m] for m in config["models"]}
    plain = top1_wrong(attack, data, cloaked, gallery_emb)
    after_jpeg = top1_wrong(attack, data, JPEG(75)(cloaked), gallery_emb)
    boxes = [data.faces[i].box for i in data.probes]
    q = [measure_face(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(), box)
         for a, b, box in zip(clean, cloaked, boxes, strict=True)]

    def stat(key: str, how=np.mean) -> float:
        return round(float(how([f[key] for f in q])), 3)

    return {
        **config,
        "probes": len(data.probes),
        "protection": plain,
        "protection_jpeg75": after_jpeg,
        "beyond_threshold": beyond_threshold(attack, data, cloaked, gallery_emb),
        "beyond_threshold_jpeg75": beyond_threshold(attack, data, JPEG(75)(cloaked),
                                                    gallery_emb),
        "white_box": [m for m in attack.names if FAMILY[m] in made_on],
        "held_out": [m for m in attack.names if FAMILY[m] not in made_on],
        "ssimulacra2": stat("ssimulacra2"),
        "ssimulacra2_min": stat("ssimulacra2", np.min),
        "jpeg_equivalent": stat("jpeg_equivalent", np.median),
        "ciede2000_mean": stat("ciede2000_mean"),
        "ciede2000_p95": stat("ciede2000_p95"),
        "ciede2000_p95_max": stat("ciede2000_p95", np.max),
        "ssim": stat("ssim"),
        "psnr": stat("psnr"),
        "seconds_per_probe": round(seconds, 3),
    }


def configs(quick: bool) -> list[dict]:
    """The configurations, most important first (a run cut short keeps the first ones)."""
    default = ["dlib", "mobileface"]
    out = [
        {"name": "perceptual-balanced-default", "method": "perceptual", "models": default},
        {"name": "pgd-balanced-default", "method": "pgd", "models": default},
    ]
    if quick:
        return out
    for preset in ("low", "high"):
        out.append({"name": f"perceptual-{preset}-default", "method": "perceptual",
                    "preset": preset, "models": default})
        out.append({"name": f"pgd-{preset}-default", "method": "pgd", "preset": preset,
                    "models": default})
    out += [
        {"name": "fgsm-balanced-classifier", "method": "fgsm", "objective": "classifier",
         "models": default},
        {"name": "mifgsm-balanced-default", "method": "mifgsm", "models": default},
        {"name": "pfgsm-balanced-default", "method": "pfgsm", "models": default},
        {"name": "bim-balanced-default", "method": "bim", "models": default},
        {"name": "universal-sgd-balanced-default", "method": "universal-sgd",
         "models": default},
        {"name": "universal-deepfool-balanced-default", "method": "universal",
         "models": default},
    ]
    return out


def curves() -> list[dict]:
    """Protection against visibility: the perceptual method from invisible to visible
    (its floor and lightness cap together), and PGD by eps with no visibility limit."""
    default = ["dlib", "mobileface"]
    out = [{"name": f"curve-perceptual-floor{floor:g}", "method": "perceptual",
            "floor": floor, "delta_e": delta_e, "robust": False, "models": default}
           for floor, delta_e in ((90, 1.5), (85, 2.0), (75, 2.8), (65, 4.0), (60, 5.0))]
    out += [{"name": f"curve-pgd-eps{eps:g}", "method": "pgd", "eps": eps, "floor": 1.0,
             "delta_e": 50.0, "robust": False, "models": default}
            for eps in (2, 4, 8, 16)]
    return out


def plot_curves(results: list[dict], path: Path) -> None:
    """Protection (beyond threshold, mean of the recognizers it was made on, and of the
    held-out one) against measured face SSIMULACRA2, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for prefix, colour in (("curve-perceptual", "tab:blue"), ("curve-pgd", "tab:red")):
        rows = sorted((r for r in results if r["name"].startswith(prefix)),
                      key=lambda r: r["ssimulacra2"])
        if not rows:
            continue
        x = [r["ssimulacra2"] for r in rows]
        for key, style, who in (("white_box", "-o", "made on"), ("held_out", "--s", "held out")):
            y = [100 * np.mean([r["beyond_threshold"][m] for m in r[key]]) for r in rows]
            ax.plot(x, y, style, color=colour, label=f"{prefix[6:]} ({who})")
    ax.axvline(75, color="grey", lw=0.8)
    ax.text(75.3, 2, "balanced floor", color="grey", fontsize=8)
    ax.set_xlabel("face SSIMULACRA2 (higher = less visible; JPEG q90 of a face is about 75)")
    ax.set_ylabel("protection beyond threshold (%)")
    ax.set_ylim(0, 102)
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 configurations, 3 probes per id")
    parser.add_argument("--only", nargs="*", help="run only these configuration names")
    parser.add_argument("--curves", action="store_true",
                        help="protection-vs-visibility curves instead (protection-curves.json "
                             "and .png)")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(0)
    data = load_data(data_dir("celeb24"), probes_per_id=3 if args.quick else 5, user_ids=12)
    attack = Ensemble.load(MODELS)
    gallery_emb = embed_given(attack, data.images[data.gallery])
    table = curves() if args.curves else configs(args.quick)
    chosen = [c for c in table if not args.only or c["name"] in args.only]
    name = ("protection-only" if args.only else
            "protection-curves" if args.curves else "protection")
    ensembles = {tuple(c["models"]): Ensemble([attack[m] for m in c["models"]]) for c in chosen}
    results = {"clean_top1_error": top1_wrong(attack, data, data.images[data.probes],
                                              gallery_emb),
               "clean_top1_error_jpeg75": top1_wrong(attack, data,
                                                     JPEG(75)(data.images[data.probes]),
                                                     gallery_emb),
               "configs": []}
    print("clean top-1 error", results["clean_top1_error"], flush=True)
    settings = {"presets": PRESETS, "perceptual_presets": PERCEPTUAL_PRESETS, "identities": 24,
                "user_identities": len(data.user_ids),
                "refs_per_id": 8, "gallery_per_id": 12, "probes": len(data.probes),
                "only": args.only, "configs_planned": len(chosen)}
    for config in chosen:
        r = run_config(config, data, ensembles, attack, gallery_emb)
        results["configs"].append(r)
        print(json.dumps(r), flush=True)
        # after every configuration, so a run cut short keeps its numbers; a partial run
        # (--only) goes to its own file, next to the full one
        path = write_results(name, settings, results, args.quick, started)
    if args.curves:
        plot_curves(results["configs"], path.with_suffix(".png"))
    print(path)


if __name__ == "__main__":
    main()
