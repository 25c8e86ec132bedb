"""Protection against visibility on real photos: the album protocol at several floors.

``benchmarks/protection.py --curves`` draws this curve on celeb24's 112-px crops, where
the face's SSIMULACRA2 floor never binds. On real photos it does (the album's faces end
at the floor), so this curve is drawn from album protocol runs
(``benchmarks/protection_album.py --floor F``, white-box and faceres held out), one per
floor; SFace and FaceNet, which the default cloak is never made on, wherever a run judged
them. It reruns nothing: it gathers their figures into one JSON and a plot. Runs since 7
Dec also match each face against other photos of the person than the cloak's references
(``other_photos``), as a platform would; the older figures, against those references,
flatter the cloak.

Usage: .venv/bin/python benchmarks/album_curve.py RESULT [RESULT ...] [--out NAME]
(each RESULT a ``benchmarks/results`` file name, without ``.json``; a run with no
``--floor`` is at its preset's floor, ``balanced``'s 75 by default)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_results  # noqa: E402

from faceguard.settings import DEFAULT_MODELS, LOOKS  # noqa: E402

FAR = "far_0.01"
#: of the faces the attacker matched uncloaked, those not matched cloaked (since 6 Dec;
#: a face missed even uncloaked is no protection). Older runs have only ``FAR``, of all
TURNED = f"turned_{FAR}"


def _shares(figures: dict) -> dict[str, float | None]:
    """family -> % not matched at FAR 1%, from one evasion or poisoning result (or an
    ``other_photos`` one): of the faces matched uncloaked where the run counted them
    (None where it matched none), else of all."""
    shares = {m: v[TURNED] if TURNED in v else v[FAR] for m, v in figures.items()}
    return {m: None if s is None else round(100 * s, 1) for m, s in shares.items()}


def point(name: str) -> dict:
    """One floor's figures from an album protocol result: how visible its faces are, and
    how many are not matched at FAR 1% where the cloak is made on every family and on
    the recognizer it never saw."""
    result = json.loads((RESULTS / f"{name}.json").read_text())
    settings = result["settings"]
    floor = settings.get("floor") or LOOKS[settings.get("preset") or "balanced"]["floor"]
    counted = next(iter(result["results"]["runs"][0]["evasion"]["none"].values()))
    out = {"floor": floor, "source": f"{name}.json", "command": result.get("command"),
           "of": "faces matched uncloaked" if TURNED in counted else "all faces",
           # the probes' clean originals: faces missed without any cloak
           "clean_evasion": _shares(result["results"]["clean"])}
    for run in result["results"]["runs"]:
        # which of the default's families the cloak was made without (a run also lists
        # the attacker's other families as held out since SFace and FaceNet judge)
        held = [m for m in DEFAULT_MODELS if m not in run["models"]]
        key = "made_on_all" if not held else f"{'_'.join(held)}_never_seen"
        out[key] = {"evasion": _shares(run["evasion"]["none"]),
                    # re-saved at JPEG q75 and, in runs that measure them, purified
                    "evasion_after": {view: _shares(v) for view, v in run["evasion"].items()
                                      if view != "none"},
                    "poisoning": _shares(run["poisoning"]),
                    "face_ssimulacra2_mean": round(run["ssimulacra2_mean"], 2),
                    "face_ssimulacra2_least": round(run["ssimulacra2_min"], 2),
                    "colour_p95_mean": round(run["colour_p95_mean"], 2),
                    "colour_p95_most": round(run["colour_p95_max"], 2),
                    "probes": run["probes"], "minutes": round(run["seconds"] / 60, 1)}
        if "other_photos" in run:  # the attacker's entry: other photos than the references
            other = run["other_photos"]
            out[key]["other_photos"] = {
                "evasion": _shares(other["evasion"]["none"]),
                "evasion_after": {view: _shares(v)
                                  for view, v in other["evasion"].items() if view != "none"},
                "poisoning": _shares(other["poisoning"]), "probes": other["probes"]}
    return out


#: the families the default cloak is made on, and their colour in the plot
MADE_ON = (("dlib", "tab:blue"), ("mobileface", "tab:orange"), ("faceres", "tab:green"))
#: the attacker's families the default cloak is never made on, judged in the runs made on
#: all three since they were installed
JUDGES = (("sface", "tab:red"), ("facenet", "tab:purple"))


def plot(points: list[dict], path: Path) -> None:
    """Verification protection at FAR 1% against the faces' mean SSIMULACRA2: each
    family where the cloak is made on all three, faceres where it never saw it, and the
    families the default cloak is never made on (SFace, FaceNet) where runs judged them;
    where runs measured it, the same matched against other photos of the person than the
    cloak's references (the other lines: against those references, which flatters it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 4.5))
    white = [p for p in points if "made_on_all" in p]
    for family, colour in MADE_ON:
        ax.plot([p["made_on_all"]["face_ssimulacra2_mean"] for p in white],
                [p["made_on_all"]["evasion"][family] for p in white], "-o", color=colour,
                label=f"{family}, made on all three (against its references)")
    other = [p for p in white if "other_photos" in p["made_on_all"]]
    if other:  # of the families never seen, FaceNet: SFace is hardly ever fooled either way
        for family, colour in (*MADE_ON, ("facenet", dict(JUDGES)["facenet"])):
            ax.plot([p["made_on_all"]["face_ssimulacra2_mean"] for p in other],
                    [p["made_on_all"]["other_photos"]["evasion"][family] for p in other],
                    "-.x", color=colour, lw=2,
                    label=f"{family}, against other photos of the person")
    for family, colour in JUDGES:
        judged = [p for p in white if family in p["made_on_all"]["evasion"]]
        if judged:
            ax.plot([p["made_on_all"]["face_ssimulacra2_mean"] for p in judged],
                    [p["made_on_all"]["evasion"][family] for p in judged], "--D",
                    color=colour, label=f"{family}, never seen")
    unseen = [p for p in points if "faceres_never_seen" in p]
    for threat, style in (("evasion", "--s"), ("poisoning", ":^")):
        ax.plot([p["faceres_never_seen"]["face_ssimulacra2_mean"] for p in unseen],
                [p["faceres_never_seen"][threat]["faceres"] for p in unseen], style,
                color="tab:green", label=f"faceres never seen: {threat}")
    for p in white:
        ax.annotate(f"floor {p['floor']:g}", (p["made_on_all"]["face_ssimulacra2_mean"], 2),
                    fontsize=7, color="grey", ha="center")
    ax.axvline(LOOKS["balanced"]["floor"], color="grey", lw=0.8)
    ax.invert_xaxis()
    ax.set_xlabel("album faces' SSIMULACRA2, mean (higher = less visible; "
                  "75 is about JPEG q65 of the face)", fontsize=9)
    ax.set_ylabel("of the faces matched uncloaked: not matched at FAR 1% (%)", fontsize=9)
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="album protocol results (several at one "
                        "floor are merged, a later one's runs first)")
    parser.add_argument("--out", default="protection-album-curve")
    args = parser.parse_args()
    started = time.perf_counter()
    by_floor: dict[float, dict] = {}  # runs at one floor merged, a later one's runs first
    for name in args.results:
        p = point(name)
        if p["floor"] in by_floor:
            p = by_floor[p["floor"]] | p | {
                "source": f"{by_floor[p['floor']]['source']}, {p['source']}"}
        by_floor[p["floor"]] = p
    points = sorted(by_floor.values(), key=lambda p: -p["floor"])
    path = write_results(args.out, {"sources": args.results, "far": 0.01},
                         {"points": points}, started=started)
    plot(points, path.with_suffix(".png"))
    print(path)


if __name__ == "__main__":
    main()
