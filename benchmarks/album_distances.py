"""A quick, paired screen of cloak settings on real photos: how far each cloaked album
face ends from its person, per recognizer, in units of the protocol's FAR 1% threshold.

``benchmarks/protection_album.py`` gives shares of faces not matched, which move in
steps of one probe (3 points on 35 probes); here every variant cloaks the same faces and
each face's distance is kept, so a lever's effect shows on a dozen faces in minutes.

- A variant is any :class:`faceguard.settings.CloakSettings` fields; with ``models`` the
  cloak is made on those families only, and the others show how it transfers. Every
  installed family judges (SFace and FaceNet, which the default cloak never sees, too).
- The first ``--people`` album people with 3+ photos, as in protection_album.py: their
  first 2 photos are the references, the rest are cloaked through the pipeline.
- A face's distance is the recognizer's distance from the cloaked face to the mean of the
  person's 2 references, divided by the threshold calibrated at FAR 1% on clean impostor
  pairs of the album (:func:`protection_data.own_thresholds`): above 1, not matched.
- ``other_photos``: as ``redetected``, but to the mean of the clean originals of the
  person's other cloaked photos, which the cloak never saw (a platform's own photos of
  the person; None for a person with one such photo). The distance to the references
  flatters the cloak: they are the photos it pushed away from.
- A variant ``{"alone": true}`` cloaks each photo in a job of its own with
  ``--protect-all`` and no photo of the person: each face is pushed from itself alone,
  as when someone cloaks one photo with nothing else. Only ``other_photos`` compares it
  with the reference path fairly (the references are photos it never saw, as are the
  other photos).
- A variant ``{"face_px": N}`` cloaks only the photos whose face is wider than N px,
  each in a run of its own shrunk (``CloakJob.max_side``, the CLI's ``--max-side``) to
  the long side at which its face is N px wide, as someone would who posts a smaller
  copy of a large photo; its references and the other photos stay as they were. Compare
  it face by face with a run of the full-size photos.
- ``poisoning``: the other way round, as the protocol's poisoning with other photos: the
  face's clean original against the mean of the person's other cloaked faces (as
  re-detected), the entry a platform would build from photos scraped after upload (None
  for a person with one cloaked photo). ``coherence`` (per person and recognizer, raw
  embeddings): the length of the mean of their faces' moves (cloaked minus clean)
  over their mean length: 1 when every face moved the same way, about 1/sqrt(n) for n
  faces moved in unrelated directions, which a gallery's mean then mostly cancels;
  ``everyone``: the same over all the faces cloaked, across people.
- ``mirrored``: the cloaked face mirrored left to right against the person's other
  photos (as ``other_photos``): a mirrored copy of the photo, or the half of a
  recognizer's test-time flipping that the cloak was not made on.
- ``common_shift``, ``robust_head``: the cloaked face as two attackers who learnt the
  cloak from other people's cloaked photos see it, against the person's other photos
  (:mod:`learned_attackers`; None for a person with one cloaked photo).
- ``redetected``: the attacker finds the face on the cloaked photo (as in the protocol);
  ``clean_geometry``: the cloaked pixels cut with the clean photo's face, the geometry the
  cloak was optimised through. Their gap is what re-detection costs the cloak.

Usage: .venv/bin/python benchmarks/album_distances.py [--people N]
    [--variant NAME '{"steps": 30}' ...] [--out NAME]
(no --variant: the default cloak only)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402
from learned_attackers import Cloaked, add_learned_views  # noqa: E402
from protection_album import (  # noqa: E402
    REFERENCES,
    album_people,
    attacker_view,
    embed_face,
    ensemble_loader,
    person_jobs,
    read_pixels,
)
from protection_data import attacker_models, load_distractors, own_thresholds  # noqa: E402

from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.io import load_photo  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.pipeline import cloak_album  # noqa: E402
from faceguard.settings import DEFAULT_MODELS, CloakSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "SETTINGS"),
                        help="a name and CloakSettings fields as JSON; repeat to compare")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="album-distances")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = {name: json.loads(values) for name, values in args.variant or [("default", "{}")]}

    started = time.perf_counter()
    # judged by every installed family, as the protocol judges (SFace and FaceNet too)
    detector, ensemble = FaceDetector(), Ensemble.load(attacker_models(DEFAULT_MODELS))
    clean, labels, paths = load_distractors(ensemble)
    far1 = {m: t[0.01] for m, t in own_thresholds(ensemble, clean, labels, "album").items()}
    people = dict(list(album_people(labels, paths).items())[:args.people])

    def units(view: dict[str, torch.Tensor], refs: dict[str, torch.Tensor]) -> dict:
        return {m: round(float(ensemble[m].compare(view[m][:, None], refs[m][None]))
                         / far1[m], 3) for m in ensemble.names}

    load = ensemble_loader(ensemble)  # the cloak's own families
    results = {}
    for name, values in variants.items():
        t0, faces, coherence, learnt = time.perf_counter(), [], {}, []
        with tempfile.TemporaryDirectory() as tmp:
            for person, ks in people.items():
                refs = {m: clean[m][ks[:REFERENCES]].mean(0, keepdim=True)
                        for m in ensemble.names}
                alone = bool(values.get("alone"))  # each photo cloaked alone, none given
                folder = Path(tmp) / person.replace("/", "-")
                sources = {k: paths[k] for k in ks[REFERENCES:]}
                settings = CloakSettings.from_dict({k: v for k, v in values.items()
                                                    if k not in ("alone", "face_px")})
                sides = {}  # photo -> the long side its face is face_px wide at
                if "face_px" in values:
                    sides = long_sides(sources, values["face_px"], detector)
                    sources = {k: sources[k] for k in sides}
                    jobs = [job for k, side in sides.items() for job in person_jobs(
                        [*(paths[j] for j in ks[:REFERENCES]), sources[k]], folder / str(k),
                        settings, max_side=side)]
                else:
                    jobs = person_jobs([paths[k] for k in ks], folder, settings,
                                       everyone=alone, alone=alone)
                by_name = {path.name: k for k, path in sources.items()}
                for job, entry in ((one, e.result) for one in jobs
                                   for e in cloak_album(one, detector, load)
                                   if e.stage == "cloaking" and e.result):
                    k = by_name[Path(entry["input"]).name]
                    source = sources[k]
                    mates = [j for j in ks[REFERENCES:] if j != k]
                    others = {m: clean[m][mates].mean(0, keepdim=True)
                              for m in ensemble.names} if mates else None
                    original = (load_photo(source).shrunk(sides[k]).pixels if k in sides
                                else read_pixels(source))
                    cloaked = read_pixels(job.outdir / entry["output"])
                    face = max(detector(original), key=lambda f: f.width)
                    seen = attacker_view(detector, ensemble, cloaked, ("mirror",))
                    if seen is None:
                        continue
                    look = [f["quality"] for f in entry["faces"] if f.get("protected")]
                    before = embed_face(ensemble, original, face)
                    faces.append({"photo": source.name,
                                  "face_px": round(face.width),
                                  "seconds": entry["seconds"],
                                  "ssimulacra2": look[0].get("ssimulacra2") if look else None,
                                  "clean": units(before, refs),
                                  "redetected": units(seen["none"], refs),
                                  "other_photos": (units(seen["none"], others)
                                                   if others else None),
                                  "clean_other_photos": (units(before, others)
                                                         if others else None),
                                  "mirrored": (units(seen["mirror"], others)
                                               if others else None),
                                  "clean_geometry": units(embed_face(ensemble, cloaked, face),
                                                          refs)})
                    learnt.append(Cloaked(person, faces[-1], before, seen["none"], mates))
                    print(name, faces[-1], flush=True)
                coherence[person] = poisoned([c for c in learnt if c.person == person], units)
        # across people: what an attacker could learn from other people's cloaked photos
        coherence["everyone"] = coherence_of(learnt)
        add_learned_views(learnt, ensemble, clean, labels, far1)
        summary = {view: {m: {"mean": round(float(np.mean([f[view][m] for f in kept])), 3),
                              "beyond": round(float(np.mean([f[view][m] > 1 for f in kept])), 3)}
                          for m in ensemble.names}
                   for view in ("clean", "redetected", "clean_other_photos", "other_photos",
                                "mirrored", "poisoning", "common_shift", "robust_head",
                                "clean_geometry")
                   for kept in [[f for f in faces if f[view] is not None]]}
        results[name] = {"settings": values, "faces": faces, "summary": summary,
                         "coherence": coherence,
                         "cloak_seconds": round(sum(f["seconds"] for f in faces), 1),
                         "seconds": round(time.perf_counter() - t0, 1)}
        print(name, json.dumps(summary), flush=True)
    write_results(args.out, {"people": list(people), "references_per_person": REFERENCES,
                             "thresholds_far_0.01": far1},
                  results, started=started)


def poisoned(theirs: list[Cloaked], units: Callable[[dict, dict], dict]) -> dict | None:
    """Each of one person's faces' ``poisoning`` distance (its clean embedding against
    the mean of the other faces' cloaked ones, by ``units``), set in its row; returns the
    faces' ``coherence`` per recognizer (see the module docstring), None for fewer than 2."""
    for face in theirs:
        rest = [other.cloaked for other in theirs if other is not face]
        face.row["poisoning"] = (units(face.clean, {m: torch.cat([e[m] for e in rest]).mean(
            0, keepdim=True) for m in face.clean}) if rest else None)
    return coherence_of(theirs)


def coherence_of(faces: list[Cloaked]) -> dict | None:
    """The faces' ``coherence`` per recognizer (see the module docstring), with ``faces``
    and ``unrelated``, what n faces moved in unrelated directions give (1/sqrt(n)); None
    for fewer than 2 faces."""
    if len(faces) < 2:
        return None
    out = {"faces": len(faces), "unrelated": round(len(faces) ** -0.5, 3)}
    for m in faces[0].clean:
        shifts = torch.cat([face.cloaked[m] - face.clean[m] for face in faces])
        out[m] = round(float(shifts.mean(0).norm() / shifts.norm(dim=1).mean()), 3)
    return out


def long_sides(photos: dict[int, Path], face_px: int, detector: FaceDetector
               ) -> dict[int, int]:
    """photo -> the long side (px) at which its largest face is ``face_px`` wide, for
    the photos where that face is wider."""
    out = {}
    for k, path in photos.items():
        pixels = read_pixels(path)
        width = max((f.width for f in detector(pixels)), default=0)
        if width > face_px:  # (no face found: not cloaked)
            out[k] = round(max(pixels.shape[:2]) * face_px / width)
    return out


if __name__ == "__main__":
    main()
