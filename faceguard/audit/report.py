"""The audit report: ``report.json`` for machines, a self-contained ``report.html`` for people.

The HTML embeds its plots and example faces as PNG data, so it can be archived as one
file and opened offline. Both show the faces uncloaked (the examples, the originals'
names): they are written readable by their owner alone, and the HTML says to keep it so.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from faceguard import __version__
from faceguard.atomic import write_json, write_text
from faceguard.audit.cloak_detection import detector_label, has_auc, shown_auc
from faceguard.audit.defenses import defense_label
from faceguard.audit.people import shown_names
from faceguard.audit.run import AuditResult
from faceguard.audit.verdict import TOP1_PEOPLE, protected_share, recognised_clean
from faceguard.manifest import NOBODY
from faceguard.planning import named_by_faceguard
from faceguard.settings import METHODS
from faceguard.visibility import summary as visibility_summary
from faceguard.words import GIVE_GALLERY, figure_text, listed, plural


def check_report_folder(outdir: Path, cloaked: Path) -> None:
    """Raise :class:`~faceguard.album.AlbumError` when ``outdir`` cannot be a folder or is
    inside the folder of ``cloaked`` photos: the report shows the uncloaked faces, and
    that folder is what gets uploaded."""
    from faceguard.album import AlbumError
    from faceguard.io import resolved
    from faceguard.output_folder import check_kept_private, check_outdir

    check_outdir(outdir, [])  # a file on the way
    out, folder = resolved(outdir), resolved(cloaked)
    if out == folder or folder in out.parents:
        raise AlbumError(f"the report folder {outdir} must not be inside the cloaked photos' "
                         f"folder {cloaked}: the report shows the uncloaked faces, and that "
                         "folder is the one to upload")
    check_kept_private(outdir, "the report shows the uncloaked faces")  # another run's


#: the report's warning: it shows what the cloak hides
PRIVATE = ("Keep this report to yourself: it shows your faces without the cloak, and the "
           "names of your photos.")


def write_report(result: AuditResult, outdir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``outdir``; returns both paths."""
    from faceguard.output_folder import make_outdir

    make_outdir(outdir)
    data = {"format": "faceguard-audit/1", "faceguard": __version__,
            "verdict": result.verdict().to_json(), "summary": summary(result),
            "names": plain_names(result), **result.to_json()}
    # on too few faces the AUC says nothing: withheld here as in the HTML and the app
    data["detection"] = [d if has_auc(d.get("faces")) else d | {"roc_auc": None, "roc": None}
                         for d in data.get("detection", [])]
    # readable by their owner alone: they show the faces uncloaked
    json_path = write_json(outdir / "report.json", data)
    html_path = write_text(outdir / "report.html", _html(result, data["summary"]))
    return json_path, html_path


def plain_names(result: AuditResult) -> dict[str, dict[str, str]]:
    """Technical name -> plain name of the defenses and detectors the result shows."""
    return {"defenses": {r["defense"]: defense_label(r["defense"]) for r in result.protection},
            "detectors": {d["detector"]: detector_label(d["detector"])
                          for d in result.detection}}


def _metric(row: dict) -> tuple[float | None, str]:
    """The protection figure of a row (:func:`protected_share`) and how it was measured."""
    how = ("beyond threshold and nearest someone else" if row.get("among", 0) >= TOP1_PEOPLE
           else "beyond threshold")
    return protected_share(row), how


def summary(result: AuditResult) -> list[str]:
    """Plain-words findings, most important first."""
    lines = []
    rows = [r for r in result.protection if r["faces"]]
    if not rows:
        return ["No protected face could be measured: each person needs another photo to be "
                f"recognised by. {_gallery_hint(result)}"]
    measured = max(r["faces"] for r in rows)
    if measured < result.faces:
        lines.append(f"Measured on {measured} of {result.faces} cloaked faces: a face can only "
                     "be tested when its person has another photo to be recognised by. "
                     + _gallery_hint(result))
    for held_out, kind in ((False, "the recognizers the cloak was made on"),
                           (True, "recognizers the cloak was not made on"),
                           (None, "the recognizers (which of them the cloak was made on is "
                                  "not known)")):
        group = [r for r in rows if r["held_out"] is held_out]
        if not group:
            continue
        plain = [r for r in group if r["defense"] == "none"]
        counted = [r for r in plain if _metric(r)[0] is not None]
        if counted:
            _, how = _metric(counted[0])
            worst = min(counted, key=lambda r: _metric(r)[0])
            each = (f", on average over {len(counted)} recognizers; least: "
                    f"{worst['model']}, {_metric(worst)[0]:.0%}" if len(counted) > 1 else "")
            lines.append(f"Against {kind}: {np.mean([_metric(r)[0] for r in counted]):.0%} "
                         f"of the faces recognised without the cloak protected as "
                         f"published ({how}){each}.")
        # the weakest case is what a defense does: "none" is the as-published line above
        defended = [r for r in group if r["defense"] != "none" and _metric(r)[0] is not None]
        if defended:
            worst = min(defended, key=lambda r: _metric(r)[0])
            value, how = _metric(worst)
            lines.append(f"Weakest case for {kind}: {value:.0%} protected after "
                         f"{defense_label(worst['defense'])} on {worst['model']} ({how}).")
    checks = [r for r in result.held_out_check if r["faces"] and _metric(r)[0] is not None]
    for r in checks:
        value, how = _metric(r)
        lines.append(f"Held-out check: a cloak re-made without {r['model']}'s family left "
                     f"{value:.0%} of the faces {r['model']} recognised uncloaked "
                     f"unrecognised ({how}; {plural(r['faces'], 'face')} checked).")
    if all(r["held_out"] is False for r in rows) and not checks:
        lines.append("Every recognizer checked here was used to make the cloak, so none it "
                     "was not made on was tested: a platform's own recognizer may still "
                     "match these faces (README, \"What to expect\", gives how often one "
                     "left out still matches).")
    unable = [r for r in rows if r["defense"] == "none" and recognised_clean(r) is not None
              and recognised_clean(r) < 0.5]
    for r in unable:  # a recognizer that misses the person anyway is not fooled by the cloak
        lines.append(f"Note: {r['model']} recognised {recognised_clean(r):.0%} of the clean "
                     "faces, without a cloak: "
                     + ("the cloak cannot be said to fool it, and it is not counted in the "
                        "verdict." if not recognised_clean(r) else
                        "its figure says little about the cloak."))
    broken = [r for r in rows if r["defense"] != "none" and recognised_clean(r) is not None
              and recognised_clean(r) < 0.5]
    for r in broken[:3]:
        lines.append(f"Note: {defense_label(r['defense'])} also stops {r['model']} from "
                     "recognising clean "
                     f"faces ({recognised_clean(r):.0%} still recognised), so it is not a "
                     "practical attack on the cloak; the faces it still recognises count.")
    if result.visibility:  # the verdict's words, with their figures
        lines.append(f"How visible, the most visible of "
                     f"{plural(result.faces, 'cloaked face')}: "
                     f"{visibility_summary(result.visibility)}.")
    for d in result.detection:
        lines.append(d["sentence"])
    return lines


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def heatmap_png(result: AuditResult) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result.protection if r["faces"]]
    if not rows:
        return None
    defenses = list(dict.fromkeys(r["defense"] for r in rows))  # technical names
    models = list(dict.fromkeys(r["model"] for r in rows))
    grid = np.full((len(defenses), len(models)), np.nan)
    for r in rows:
        value, _ = _metric(r)
        if value is not None:
            grid[defenses.index(r["defense"]), models.index(r["model"])] = value
    held = {r["model"]: r["held_out"] for r in rows}
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(models), 0.9 + 0.42 * len(defenses)))
    im = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(models)), [m + (" (not made on)" if held[m] else "") for m in models],
                  rotation=20, ha="right")
    ax.set_yticks(range(len(defenses)), [defense_label(d) for d in defenses])
    for (i, j), v in np.ndenumerate(grid):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=9)
    ax.set_title("Of the clean faces each recognizer still recognised, the share the cloak "
                 "protects, per defense", wrap=True)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _png(fig)


def roc_png(result: AuditResult) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [d for d in result.detection if has_auc(d.get("faces"))]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for d in shown:
        ax.plot(d["roc"]["fpr"], d["roc"]["tpr"],
                label=f"{detector_label(d['detector'])} (AUC {d['roc_auc']:.2f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("clean faces wrongly flagged")
    ax.set_ylabel("cloaked faces flagged")
    ax.set_title("Detector ROC curves (out-of-fold)")
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def _image(array: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class _Markup(str):
    """A table cell already written as HTML."""


def _named(label: str, name: str) -> _Markup:
    """A plain name with its technical name as the hover text."""
    return _Markup(f"<span title='{html.escape(name, quote=True)}'>{html.escape(label)}</span>")


#: the protection table's columns (key, title), in the app and the report alike
PROTECTION_COLUMNS = [
    ("what", "What the platform does"),
    ("model", "Recognizer"),
    ("held_out", "Not made on"),
    ("faces", "Faces"),
    ("protected", "Protected"),  # of the faces recognised without the cloak
    ("clean_recognised", "Clean faces still recognised"),
    ("mean_distance", "Distance / threshold"),
]
#: the report's further columns: what "Protected" is made of
PROTECTION_PARTS = [
    ("protected_verify", "Protected: beyond threshold"),
    ("protected_top1", "Protected: nearest someone else"),
    ("clean_verify", "Clean: within threshold"),
    ("clean_top1", "Clean: nearest the right person"),
]
#: the detection table's columns, in the app and the report alike
DETECTION_COLUMNS = [
    ("detector", "Detector"),
    ("faces", "Your faces"),  # a figure on one face is that face's
    ("flagged_cloaked", "Cloaked faces flagged"),
    ("flagged_clean", "Clean faces wrongly flagged"),
    ("roc_auc", "ROC AUC (0.5 = cannot tell)"),
    ("accuracy", "Accuracy"),
    ("tested_on", "Tested on"),
]
#: after a protection row's defense, when it is the held-out check's
CHECK_ROW = " (check cloak, re-made without this recognizer's family)"


def protection_rows(result: AuditResult) -> list[dict]:
    """The protection table's rows: the photos' own, then the held-out check's, each with
    ``what`` the platform does in plain words. Among fewer than :data:`TOP1_PEOPLE`
    people known, the nearest-person figures are left blank: not counted (a note says
    why), they read as results beside it."""
    uncounted = {"protected_top1": None, "clean_top1": None} \
        if result.people < TOP1_PEOPLE else {}
    return [dict(r, what=defense_label(r["defense"]) + (CHECK_ROW if r.get("check") else ""),
                 **uncounted)
            for r in result.protection + result.held_out_check]


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    def fmt(v, key: str):
        return v if isinstance(v, _Markup) else html.escape(figure_text(v, key))

    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(k), k)}</td>" for k, _ in columns)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _method(result: AuditResult) -> str:
    """ "Method: <plain name>, preset low, 3 steps. " (HTML) from the cloak's settings
    (the preset and steps: a weakened cloak is not the method's recommended one), or ""."""
    settings = result.cloak_settings
    method = settings.get("method")
    if method not in METHODS:
        return ""
    how = [f"preset {settings['preset']}"] if settings.get("preset") else []
    how += [f"{settings['steps']} steps"] if settings.get("steps") else []
    return f"Method: {', '.join([_named(METHODS[method].label, method), *map(html.escape, how)])}. "


def verdict_html(result: AuditResult) -> str:
    """The verdict as one HTML paragraph, its first words in bold."""
    v = result.verdict()
    return f"<p class=verdict><b>{html.escape(v.headline)}</b> {html.escape(v.details())}</p>"


def _named_people(result: AuditResult) -> list[str]:
    """The protected people as the cloak run named them (:data:`NOBODY` is nobody's name)."""
    return [n for n in result.protected_people if n and n != NOBODY]


def _gallery_hint(result: AuditResult) -> str:
    """How to add photos of the people whose faces could not be measured (see
    :func:`faceguard.audit.people.add_gallery`)."""
    # a sub-folder of any name is taken as the person its faces show: FaceGuard's own name
    # for someone ("the person to protect") is no name to give a folder, nor is the name
    # of someone measured already
    named = [n for n in _named_people(result) if not named_by_faceguard(n)
             and (n in result.unmeasured or not result.unmeasured)]
    names = " or ".join(f'"{n}"' for n in named[:4])
    whose = f": a sub-folder named {names}, or whose faces match theirs, is taken as them" \
        if named else ""
    # "them" named no one: the people left unmeasured, as the audit calls them
    return (f"Add other clean photos of {listed(result.unmeasured) or 'them'} {GIVE_GALLERY}, "
            f"one sub-folder per person{whose}.")


def _protected(result: AuditResult) -> str:
    """ "Protected: Me, Sam. " (HTML) as the cloak run named the people, or ""."""
    named = _named_people(result)
    return f"Protected: {html.escape(', '.join(named))}. " if named else ""


def _html(result: AuditResult, lines: list[str]) -> str:
    parts = [f"<h1>FaceGuard audit</h1>{verdict_html(result)}"
             f"<p class=small>FaceGuard {__version__}: "
             f"{plural(result.photos, 'photo')}, {plural(result.faces, 'cloaked face')}, "
             f"{plural(result.people, 'person', 'people')} known. {_method(result)}"
             f"{_protected(result)}"
             f"Cloak made on: {', '.join(result.cloak_models) or 'unknown'}.</p>"
             f"<p class=small>{PRIVATE}</p>",
             "<h2>In detail</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines)
             + "</ul>"]
    if heat := heatmap_png(result):
        parts.append(f"<h2>Protection</h2><img src='data:image/png;base64,{heat}'>")
    protection = [dict(r, what=_named(r["what"], r["defense"])) for r in protection_rows(result)]
    parts.append(_table(protection, PROTECTION_COLUMNS + PROTECTION_PARTS))
    if result.detection:
        parts.append("<h2>Detection</h2>")
        if roc := roc_png(result):
            parts.append(f"<img src='data:image/png;base64,{roc}'>")
        detection = [dict(d, detector=_named(detector_label(d["detector"]), d["detector"]),
                          after_defense=d["after_defense"] and defense_label(d["after_defense"]),
                          roc_auc=shown_auc(d))
                     for d in result.detection]
        parts.append(_table(detection, [*DETECTION_COLUMNS, ("after_defense", "After")]))
    if result.examples:
        purified = result.examples[0]["purified_by"]  # None: no clean-up was tried
        shown = ("original", "cloaked", *(("purified",) if purified else ()), "difference")
        parts.append(f"<h2>Examples</h2><p class=small>{', '.join(shown)} x10</p>")
        names = shown_names(ex["photo"] for ex in result.examples if ex.get("photo"))
        for ex in result.examples:
            imgs = "".join(f"<img class=face src='data:image/png;base64,{_image(ex[k])}' "
                           f"title='{k}'>" for k in shown)
            photo = (f", {names[ex['photo']]}" if ex.get("photo")  # not said twice
                     and not ex["person"].endswith(names[ex["photo"]]) else "")
            how = f", purified by {defense_label(purified)}" if purified else ""
            parts.append(f"<div>{imgs}<p class=small>{html.escape(ex['person'] + photo + how)}"
                         "</p></div>")
    if result.notes or result.errors:
        parts.append("<h2>Notes</h2><ul>" + "".join(
            f"<li>{html.escape(x)}</li>" for x in result.notes + result.errors) + "</ul>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;"
             "color:#222}table{border-collapse:collapse;font-size:13px;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
             "th{background:#f3f3f3}.small{color:#666;font-size:13px}"
             "img.face{width:160px;margin:2px}.verdict{font-size:17px;line-height:1.5}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>FaceGuard audit</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
