"""Protection benchmark: do recognizers still match a cloaked face? The honest protocol.

Runs :mod:`faceguard.audit.protection`'s protocol on celeb24 (who is protected and what
the attacker holds: ``protection_data.py``):

- **leave-one-family-out**: for each recognizer family F, the cloak is made with the
  other families and judged on F (transfer to a recognizer it never saw); the cloak
  made with every family is reported apart (white-box);
- **both threat models**: evasion (cloaked photos searched in a clean gallery) and
  poisoning (the person's gallery entry built from their cloaked photos, clean photos
  of them searched);
- **verification** at thresholds calibrated per recognizer at FAR 1% and 0.1% on clean
  impostor comparisons of the same data, and **top-1** identification among every
  identity of celeb24, att and the album (75 people: two album people are celeb24
  people too, ``CELEB24_NAMES``);
- **purification**: each defense is applied to the cloaked photos before the attacker
  looks (JPEG q75, bilateral, BL+SR, the learned purifier);
- **visibility** of the cloak on the same photos (face SSIMULACRA2, its JPEG
  equivalent, CIEDE2000).

A *recipe* is the cloak's settings without the models (a method, a preset, transfer
levers); the protocol runs it once per held-out family plus once with every family.

Usage: .venv/bin/python benchmarks/protection.py [--quick] [--only RECIPE ...] [--curves] [--grey]
                                                [--probes-per-person N]
  --quick: about 40 probes, faceres held out, JPEG q75 and bilateral only: a lever screen.
  --defenses D ...: the attacker's defenses instead (e.g. add bl+sr to a quick screen).
  --grey: the probes as grey photos (the person uploads black-and-white photos).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402
from protection_data import (  # noqa: E402
    CELEB24_NAMES,
    Data,
    attacker_models,
    embed_given,
    grey_probes,
    load_celeb24,
    load_distractors,
)

from faceguard.audit.defenses import make_defense  # noqa: E402
from faceguard.audit.protocol import FARS, calibrate, evasion, poisoning  # noqa: E402
from faceguard.cloak.base import cloak_grey  # noqa: E402
from faceguard.cloak.budget import eight_bit, face_weight, keep_visible, limit_lightness  # noqa: E402
from faceguard.cloak.recipe import (  # noqa: E402
    budget,
    fit_universal,
    make_cloak,
    objective_factory,
)
from faceguard.identity import FaceClassifier, Person  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.planning import decoy_for  # noqa: E402
from faceguard.settings import (  # noqa: E402
    PERCEPTUAL_PRESETS,
    PRESETS,
    TRANSFER_LEVERS,
    CloakSettings,
)
from faceguard.visibility import face_box, measure_face  # noqa: E402

#: the families a cloak is made on (one model each), held out in turn
FAMILIES = ("dlib", "faceres", "mobileface")
#: the attacker's recognizers: those and every other installed family (SFace, FaceNet), which no
#: cloak here is made on
JUDGES = tuple(attacker_models(FAMILIES))
DEFENSES = ("none", "jpeg75", "bilateral", "bl+sr", "purifier")
QUICK_DEFENSES = ("none", "jpeg75", "bilateral")
_SETTINGS = {f.name for f in fields(CloakSettings)}


def white_box(method: str = "perceptual") -> dict:
    """A configuration of ``method`` at ``balanced`` made on every family (the audit
    benchmarks' cloaks: the default, and P-FGSM)."""
    return {"recipe": f"{method}-balanced", "method": method, "models": list(FAMILIES)}


def settings_of(config: dict) -> CloakSettings:
    """A configuration's cloak settings (its other keys are the benchmark's)."""
    return CloakSettings.from_dict({k: v for k, v in config.items()
                                    if k in _SETTINGS}).resolved()


def cloak_probes(config: dict, data: Data, seed: int = 0, batch: int = 40) -> torch.Tensor:
    """Cloak every probe with the configuration, ``batch`` at a time (all crops are
    112x112; a batch of 120 through faceres needs about 8 GB)."""
    return torch.cat([_cloak_batch(config, replace(data, probes=data.probes[k:k + batch]),
                                   seed) for k in range(0, len(data.probes), batch)])


def _cloak_batch(config: dict, data: Data, seed: int) -> torch.Tensor:
    s = settings_of(config)
    ens = Ensemble.load(s.models)
    x = data.images[data.probes]
    landmarks = np.stack([data.faces[i].landmarks for i in data.probes])
    return _keep_visible(s, data, x, _cloak(s, config, data, ens, x, landmarks,
                                            _weight(s, data, x), seed))


def _weight(s: CloakSettings, data: Data, x: torch.Tensor) -> torch.Tensor:
    """The probes' budget weights (B, 1, 112, 112), as cloak_face makes them."""
    weight = torch.cat([face_weight(data.faces[i], (0, 0, 112, 112)) for i in data.probes])
    if s.texture > 0:
        from faceguard.cloak.budget import texture_weight

        weight = weight * texture_weight(x, s.texture)
    return limit_lightness(weight, x, budget(s), s.delta_e)


def _keep_visible(s: CloakSettings, data: Data, x: torch.Tensor,
                  cloaked: torch.Tensor) -> torch.Tensor:
    """The pipeline's last step on every method: scale each change down to the floor
    and the colour limit."""
    return torch.cat([keep_visible(x[k:k + 1], cloaked[k:k + 1], s.floor,
                                   face_box(data.faces[i].box, 112, 112), s.delta_e)[0]
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
    # per probe: its person's clean centroid (the feature objective's anchor)
    centroids = {m: torch.stack([people[data.user_ids.index(n)].centroid(m)
                                 for n in probe_labels]) for m in ens.names}
    # per probe: its person's reference embeddings (B, N, D), for the hull lever; a set
    # padded with repeats of its first face spans the same hull
    most = max(len(p) for p in people)
    references = {m: torch.stack([_padded(people[data.user_ids.index(n)].embeddings[m], most)
                                  for n in probe_labels]) for m in ens.names}
    gen = torch.Generator().manual_seed(seed)
    if config.get("grey") and (s.universal or s.objective == "classifier"):
        raise ValueError("--grey runs the per-photo methods only")
    if s.universal:
        masked = _universal(s, config, data, ens, people, x, landmarks, weight, gen)
        if not config.get("refine"):
            return masked
        # the album path of the speed issue: the person's mask, then a few steps of the
        # per-photo method started from it (its own eps, floor and objective)
        p = settings_of({**config, "method": "perceptual", "steps": config["refine"]})
        return make_cloak(p)(x, objective_factory(p, ens, centroids, seed=seed,
                                                  references=references)(landmarks),
                             _weight(p, data, x), gen, start=masked)
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
    decoy = None
    if s.targeted:  # per probe, the protected person least like them, as the pipeline picks
        chosen = {p.name: decoy_for(ens, p, [o for o in people if o is not p]).centroids()
                  for p in people}
        decoy = {m: torch.stack([chosen[n][m] for n in probe_labels]) for m in ens.names}
    make = objective_factory(s, ens, centroids, decoy, seed=seed, references=references)
    if config.get("grey"):  # as the pipeline cloaks a grey photo
        return cloak_grey(make_cloak(s), x, make(landmarks), weight, gen)
    return make_cloak(s)(x, make(landmarks), weight, gen)


def _padded(embeddings: torch.Tensor, n: int) -> torch.Tensor:
    """(n, D): ``embeddings`` (N <= n, D) followed by repeats of its first row."""
    return torch.cat([embeddings, embeddings[:1].expand(n - len(embeddings), -1)])


def _universal(s, config, data, ens, people, x, landmarks, weight, gen) -> torch.Tensor:
    """One mask per person, applied to their probes: fitted on their references and
    their probes, as the pipeline fits a mask on every face of the person it cloaks."""
    from faceguard.cloak.universal import UniversalMask, canonical_faces

    out = x.clone()
    clf = FaceClassifier(people).fit() if s.method == "universal" else None
    for person in people:
        theirs = [i for i in data.refs + list(data.probes) if data.labels[i] == person.name]
        faces = torch.cat([canonical_faces(data.images[i:i + 1], data.faces[i].landmarks)
                           for i in theirs])
        v, _, _ = fit_universal(s, ens, faces, person, gen, clf)
        mask = UniversalMask(v, person.name, ens.names)
        for j, i in enumerate(data.probes):
            if data.labels[i] == person.name:
                out[j:j + 1] = mask.apply(x[j:j + 1], landmarks[j], weight[j:j + 1])
    return out


class Attacker:
    """What the attacker holds: clean embeddings of everyone, calibrated thresholds."""

    def __init__(self, data: Data) -> None:
        self.ensemble = Ensemble.load(JUDGES)
        clean = embed_given(self.ensemble, data.images)
        others, other_labels, _ = load_distractors(self.ensemble)
        other_labels = [CELEB24_NAMES.get(p, p) for p in other_labels]
        known = data.refs + data.gallery  # never the probes
        # calibrated on celeb24's own impostor pairs: pooled with the distractors (att's
        # grey faces two thirds of the pairs) a threshold was not FAR 1% on these crops
        # (mobileface 0.02%, faceres 3.6%)
        self.thresholds = calibrate(self.ensemble, {m: clean[m][known] for m in JUDGES},
                                    [data.labels[i] for i in known])
        self.gallery = {m: torch.cat([clean[m][data.gallery], others[m]]) for m in JUDGES}
        self.gallery_labels = [data.labels[i] for i in data.gallery] + other_labels
        self.people = len(set(self.gallery_labels))
        # poisoning: clean photos of the protected people, other than the cloaked ones
        self.queries = [i for i in data.gallery if data.labels[i] in data.user_ids]
        self.query_emb = {m: clean[m][self.queries] for m in JUDGES}
        self.query_labels = [data.labels[i] for i in self.queries]
        self.truth = [data.labels[i] for i in data.probes]

    def embed(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """model -> (N, D): the attacker's embeddings of (N, 3, 112, 112) images."""
        return embed_given(self.ensemble, images)

    def judge(self, images: torch.Tensor, before: dict[str, torch.Tensor] | None = None
              ) -> dict[str, dict]:
        """Both threat models on the probes' (cloaked, purified) images; with ``before``,
        the :meth:`embed` of the probes' originals seen the same way, also of the faces
        matched uncloaked (``turned_far_0.01``: :func:`faceguard.audit.protocol.evasion`)."""
        emb = self.embed(images)
        return {
            "evasion": evasion(self.ensemble, emb, self.truth, self.gallery,
                               self.gallery_labels, self.thresholds, before),
            "poisoning": poisoning(self.ensemble, emb, self.truth, self.query_emb,
                                   self.query_labels,
                                   self.gallery, self.gallery_labels, self.thresholds,
                                   before),
        }


def visibility(data: Data, cloaked: torch.Tensor) -> dict:
    clean = data.images[data.probes]
    q = [measure_face(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(),
                      data.faces[i].box)
         for a, b, i in zip(clean, cloaked, data.probes, strict=True)]

    def stat(key: str, how=np.mean) -> float:
        return round(float(how([f[key] for f in q])), 3)

    return {"ssimulacra2": stat("ssimulacra2"), "ssimulacra2_min": stat("ssimulacra2", np.min),
            "jpeg_equivalent": stat("jpeg_equivalent", np.median),
            "ciede2000_mean": stat("ciede2000_mean"), "ciede2000_p95": stat("ciede2000_p95"),
            "ciede2000_p95_max": stat("ciede2000_p95", np.max),
            "ssim": stat("ssim"), "psnr": stat("psnr")}


def run_config(config: dict, data: Data, attacker: Attacker, clean: dict[str, dict]) -> dict:
    """One run: the probes cloaked by ``config``, judged after each defense against the
    probes' originals after the same (``clean``: defense -> their embeddings)."""
    t0 = time.perf_counter()
    cloaked = eight_bit(cloak_probes(config, data))
    seconds = (time.perf_counter() - t0) / len(data.probes)
    defenses = tuple(clean)
    judged = {d: attacker.judge(make_defense(d)(cloaked), clean[d]) for d in defenses}
    return {**config, "probes": len(data.probes),
            "held_out": [m for m in FAMILIES if m not in config["models"]],
            "never_made_on": [m for m in JUDGES if m not in FAMILIES],
            **{threat: {d: judged[d][threat] for d in defenses}
               for threat in ("evasion", "poisoning")},
            **visibility(data, cloaked), "seconds_per_probe": round(seconds, 3)}


def summarise(runs: list[dict], defenses: tuple[str, ...]) -> dict:
    """Per recipe: transfer (the held-out family's protection at FAR 1%, each, mean and
    minimum), white-box (every family's, from the cloak made on all of them) and, from
    that cloak too, the installed families no cloak here is made on (``never_made_on``);
    each as the share of all probes (``far_0.01``) and, under ``of_recognised``, of the
    probes the attacker matched uncloaked (``turned_far_0.01``: a face missed even
    uncloaked is not the cloak's doing)."""
    out: dict[str, dict] = {}
    for r in runs:
        recipe = out.setdefault(r["recipe"], {"transfer": {}, "white_box": {}})
        for part, key in (("", "far_0.01"), ("of_recognised", "turned_far_0.01")):
            entry = recipe.setdefault(part, {"transfer": {}, "white_box": {}}) if part else recipe
            for threat in ("evasion", "poisoning"):
                for d in defenses:
                    rates = r[threat][d]
                    if r["held_out"]:
                        (f,) = r["held_out"]
                        t = entry["transfer"].setdefault(f"{threat}/{d}", {})
                        t[f] = rates[f].get(key)
                        known = [v for k, v in t.items() if k in FAMILIES and v is not None]
                        t["mean"] = round(float(np.mean(known)), 4) if known else None
                        t["min"] = min(known, default=None)
                    else:
                        entry["white_box"][f"{threat}/{d}"] = {m: rates[m].get(key)
                                                             for m in FAMILIES}
                        # a family no cloak here is made on, against the one made on all
                        others = entry.setdefault("never_made_on", {})
                        for m in r.get("never_made_on", ()):
                            others.setdefault(f"{threat}/{d}", {})[m] = rates[m].get(key)
        recipe.setdefault("ssimulacra2", []).append(r["ssimulacra2"])
    return out

#: recipes: name -> cloak settings without the models; the first is the baseline
RECIPES = {
    "perceptual-balanced": {"method": "perceptual"},  # the default, with its default levers
    "perceptual-balanced-plain": {"method": "perceptual", "transfer": []},
    # Fawkes's target cloak: towards the protected person least like the probe's
    "perceptual-balanced-targeted": {"method": "perceptual", "targeted": True},
    # twice the optimisation: twice the steps, or twice the draws per step; or less
    "perceptual-balanced-steps120": {"method": "perceptual", "steps": 120},
    "perceptual-balanced-steps40": {"method": "perceptual", "steps": 40},
    "perceptual-balanced-steps30": {"method": "perceptual", "steps": 30},
    "perceptual-balanced-steps20": {"method": "perceptual", "steps": 20},
    "perceptual-balanced-draws4": {"method": "perceptual", "eot_samples": 4},
    # a larger colour limit (balanced: 3.0 CIEDE2000 units at the face's 95th percentile;
    # protection-de32.json and -de35-quick.json ran when it capped each pixel instead)
    "perceptual-balanced-de3.2": {"method": "perceptual", "delta_e": 3.2},
    "perceptual-balanced-de3.5": {"method": "perceptual", "delta_e": 3.5},
    # a quarter of the budget for colour, its tint taken out (``--colour-share 0.25``)
    "perceptual-balanced-colour": {"method": "perceptual", "chroma": 0.25},
    # texture shaping: 0.9 keeps nearly all the change off flat skin (the default is 0.6)
    "perceptual-balanced-texture0.9": {"method": "perceptual", "texture": 0.9},
    **{f"perceptual-balanced+{lever}": {"method": "perceptual", "transfer": [lever]}
       for lever in TRANSFER_LEVERS},
    "pgd-balanced": {"method": "pgd"},
    # momentum (Dong et al., CVPR 2018), which the app offers as the method that transfers
    "mifgsm-balanced": {"method": "mifgsm"},
    # a person's universal mask from their reference photos, alone (DeepFool, signed
    # SGD) and as the warm start of 10 steps of the default (the speed issue's album path)
    "universal-balanced": {"method": "universal"},
    "universal-sgd-balanced": {"method": "universal-sgd"},
    "universal-sgd-balanced+refine10": {"method": "universal-sgd", "refine": 10},
    "flm-balanced": {"method": "flm"},
    "hybrid-balanced": {"method": "hybrid"},
}


def plan(recipes: dict[str, dict], held_out: tuple[str, ...], white_box: bool) -> list[dict]:
    """Every run: each recipe with each family held out, then with every family."""
    out = []
    for name, recipe in recipes.items():
        for f in held_out:
            out.append({"recipe": name, **recipe, "models": [m for m in FAMILIES if m != f]})
        if white_box:
            out.append({"recipe": name, **recipe, "models": list(FAMILIES)})
    return out


def curves() -> dict[str, dict]:
    """Protection against visibility: the default (the perceptual method with its levers)
    from invisible to plainly visible, its floor and colour limit together (eps grows
    where 16 grey levels would bind first), through ``balanced`` (75, 3.0); and PGD by eps
    with no visibility limit."""
    out = {f"curve-perceptual-floor{floor:g}": {"method": "perceptual", "floor": floor,
                                                "delta_e": delta_e, "eps": eps}
           for floor, delta_e, eps in ((90, 1.5, 16), (85, 2.0, 16), (75, 3.0, 16),
                                       (65, 4.0, 24), (55, 6.0, 32), (45, 8.0, 48))}
    out |= {f"curve-pgd-eps{eps:g}": {"method": "pgd", "eps": eps, "floor": 1.0,
                                      "delta_e": 50.0, "robust": False}
            for eps in (2, 4, 8, 16)}
    return out


def plot_curves(runs: list[dict], path: Path) -> None:
    """Verification protection at FAR 1% (evasion, no defense) against the two measures
    of how visible the cloak is, side by side: face SSIMULACRA2 and the colour change's
    95th percentile (CIEDE2000; the default's binding limit at ``balanced``). Mean of the
    recognizers it was made on, and the held-out one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, measure, label, limit in (
            (axes[0], "ssimulacra2", "face SSIMULACRA2 (higher = less visible; JPEG q90 "
             "of a face is about 75)", (75, "balanced floor")),
            (axes[1], "ciede2000_p95", "face colour change, CIEDE2000 p95 (lower = less "
             "visible; 2.3 is just noticeable)", (3.0, "balanced colour limit"))):
        for prefix, colour in (("curve-perceptual", "tab:blue"), ("curve-pgd", "tab:red")):
            rows = sorted((r for r in runs if r["recipe"].startswith(prefix)),
                          key=lambda r: r[measure])
            if not rows:
                continue
            x = [r[measure] for r in rows]
            for key, style, who in (("models", "-o", "made on"), ("held_out", "--s", "held out")):
                y = [100 * np.mean([r["evasion"]["none"][m]["far_0.01"] for m in r[key]])
                     for r in rows]
                ax.plot(x, y, style, color=colour, label=f"{prefix[6:]} ({who})")
        ax.axvline(limit[0], color="grey", lw=0.8)
        ax.text(limit[0], 2, f" {limit[1]}", color="grey", fontsize=8)
        ax.set_xlabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].invert_xaxis()
    axes[0].set_ylabel("verification protection at FAR 1% (%)")
    axes[0].set_ylim(0, 102)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="about 40 probes, faceres held out, no white-box run")
    parser.add_argument("--only", nargs="*", help="run only these recipes; "
                        "perceptual-balanced+LEVER+LEVER... combines transfer levers")
    parser.add_argument("--curves", action="store_true",
                        help="protection-vs-visibility curves (protection-curves.json, .png)")
    parser.add_argument("--held-out", nargs="*", choices=FAMILIES,
                        help="hold out only these families (default: each in turn; with "
                             "--quick: faceres)")
    parser.add_argument("--no-white-box", action="store_true",
                        help="skip the run made on every family")
    parser.add_argument("--white-box", action="store_true",
                        help="with --quick: add the run made on every family")
    parser.add_argument("--defenses", nargs="+",
                        help="the attacker's defenses (default: "
                             f"{' '.join(DEFENSES)}; {' '.join(QUICK_DEFENSES)} with --quick)")
    parser.add_argument("--grey", action="store_true",
                        help="the probes as grey photos, cloaked as the pipeline cloaks "
                             "grey photos (the attacker's gallery stays in colour)")
    parser.add_argument("--probes-per-person", type=int, metavar="N",
                        help="cloaked photos per protected person (default 5, 2 with "
                             "--quick; 6 gives 140 probes, each figure within about 4 "
                             "points; celeb24 has 10 per person, one person 2)")
    parser.add_argument("--out", help="results file name in benchmarks/results (default: "
                                      "protection, protection-only with --only, "
                                      "protection-curves with --curves)")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(0)
    quick = args.quick or args.curves
    data = load_celeb24(probes_per_id=args.probes_per_person or (2 if quick else 5),
                        user_ids=20 if quick else 24)
    if args.grey:
        data = grey_probes(data)
    attacker = Attacker(data)
    recipes = curves() if args.curves else RECIPES
    # "perceptual-balanced+a+b": the perceptual method with levers a and b together
    combined = {k: {"method": "perceptual", "transfer": k.split("+")[1:]}
                for k in args.only or ()
                if k not in recipes and k.startswith("perceptual-balanced+")}
    recipes = {k: v for k, v in (recipes | combined).items() if not args.only or k in args.only}
    if args.grey:
        recipes = {k: {**v, "grey": True} for k, v in recipes.items()}
    defenses = tuple(args.defenses or (QUICK_DEFENSES if quick else DEFENSES))
    held_out = args.held_out if args.held_out is not None else (
        ("faceres",) if quick else FAMILIES)
    white_box = args.white_box or not (args.quick or args.no_white_box)
    runs = plan(recipes, tuple(held_out), white_box)
    name = args.out or ("protection-curves" if args.curves else
                        "protection-only" if args.only else "protection")
    # the same protocol on the clean probes, after each defense: the share "protected"
    # without a cloak (false rejections at each FAR, top-1 errors), the floor to read
    # every figure against (a defense that blurs every face "protects" clean ones too)
    seen = {d: make_defense(d)(data.images[data.probes]) for d in defenses}
    clean = {d: attacker.embed(images) for d, images in seen.items()}
    results = {"thresholds": attacker.thresholds,
               "clean": {d: attacker.judge(images) for d, images in seen.items()},
               "runs": []}
    print("clean", json.dumps(results["clean"]), flush=True)
    settings = {"presets": PRESETS, "perceptual_presets": PERCEPTUAL_PRESETS,
                "families": FAMILIES, "judges": JUDGES, "defenses": defenses, "fars": FARS,
                "protected_people": len(data.user_ids), "probes": len(data.probes),
                "gallery_people": attacker.people, "poisoning_queries": len(attacker.queries),
                "recipes": recipes, "runs_planned": len(runs)}
    path = write_results(name, settings, results, args.quick, started)
    for config in runs:
        r = run_config(config, data, attacker, clean)
        results["runs"].append(r)
        results["summary"] = summarise(results["runs"], defenses)
        print(json.dumps(r), flush=True)
        # after every run, so a run cut short keeps its numbers
        path = write_results(name, settings, results, args.quick, started)
    if args.curves and path:
        plot_curves(results["runs"], path.with_suffix(".png"))
    print(path)


if __name__ == "__main__":
    main()
