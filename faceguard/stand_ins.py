"""Stand-in faces: cloaks FaceGuard makes itself, to train cloak detectors on small sets.

A detector needs many cloaked faces to learn from; a person's own album often has a
handful. A platform would train its detector on other people's cloaks anyway, so the
audit can fit detectors on faces FaceGuard cloaks itself, with the user's settings,
and test them on the user's faces. The stand-in faces are the public-domain faces
scikit-image ships (the astronaut of ``faceguard demo`` and the cameraman), each also
mirrored and shrunk, plus, when ``FACEGUARD_STAND_INS`` names a folder, its photos.

Cloaking costs seconds per face, so the stand-ins are few, optimised with at most
:data:`STEPS` steps and no robustness draws, and kept in the user cache by the
settings' digest: the next audit with the same settings reuses them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from faceguard.detect import FaceDetector
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event
from faceguard.settings import DEFAULT_METHOD, CloakSettings

#: the most optimisation steps a stand-in cloak gets (a fast preset)
STEPS = 20
#: photos read from ``FACEGUARD_STAND_INS`` (on top of the bundled faces)
MORE = 6
#: methods that need other people; stand-ins are cloaked with the default method instead
NEEDS_OTHERS = ("pfgsm", "universal", "universal-sgd")
STAGE = "making stand-in cloaks"


def stand_in_settings(recorded: dict) -> CloakSettings:
    """The settings stand-ins are cloaked with: the run's (its manifest's ``settings``;
    defaults when unknown) with at most :data:`STEPS` steps and no robustness draws."""
    known = {f.name for f in fields(CloakSettings)}
    s = CloakSettings.from_dict({k: v for k, v in recorded.items() if k in known})
    if s.method in NEEDS_OTHERS:
        s = replace(s, method=DEFAULT_METHOD, objective="feature")
    s = s.resolved()
    return replace(s, steps=min(s.steps, STEPS), robust=False)


#: the public-domain faces scikit-image ships (``skimage.data`` names)
PUBLIC_DOMAIN_FACES = ("astronaut", "camera")


def public_domain_photos() -> dict[str, np.ndarray]:
    """name -> (H, W, 3) uint8: the photos of :data:`PUBLIC_DOMAIN_FACES` (grey as RGB).
    The stand-ins of both the detectors (here) and the attackers who train against
    FaceGuard (:mod:`faceguard.training_pairs`) start from them."""
    import skimage.data

    out = {}
    for name in PUBLIC_DOMAIN_FACES:
        image = getattr(skimage.data, name)()
        out[name] = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
    return out


def bundled_photos() -> dict[str, np.ndarray]:
    """name -> (H, W, 3) uint8: :func:`public_domain_photos`, each also mirrored and
    shrunk (to 70%), so that every one is a different cloak."""
    from PIL import Image

    out = {}
    for name, image in public_domain_photos().items():
        h, w = image.shape[:2]
        small = np.asarray(Image.fromarray(image).resize((w * 7 // 10, h * 7 // 10),
                                                         Image.LANCZOS))
        out |= {name: image, f"{name}-mirrored": image[:, ::-1].copy(), f"{name}-small": small}
    return out


def _more_photos() -> list[Path]:
    from faceguard.io import find_photos

    folder = os.environ.get("FACEGUARD_STAND_INS")
    return find_photos([Path(folder)])[:MORE] if folder and Path(folder).is_dir() else []


def stand_in_cloaks(recorded: dict, detector: FaceDetector | None = None,
                    load_ensemble: Callable[[Sequence[str]], Ensemble] | None = None,
                    folder: Path | None = None) -> Iterator[Event]:
    """Cloak the stand-in faces (or find them cloaked before); the last event's ``result``
    is the folder of cloaked stand-ins, with its manifest.

    Args:
        recorded: the audited run's settings (see :func:`stand_in_settings`).
        detector, load_ensemble: the caller's face detector and recognizer loader, as
            :func:`faceguard.pipeline.cloak_album` takes them.
        folder: where to keep them (default: the user cache, by settings digest).
    """
    from PIL import Image

    from faceguard.paths import cache_dir
    from faceguard.pipeline import CloakJob, cloak_album

    settings = stand_in_settings(recorded)
    folder = folder or cache_dir() / "stand-ins" / settings.digest()
    photos = folder / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for name, image in bundled_photos().items():
        if not (photos / f"{name}.png").is_file():
            Image.fromarray(image).save(photos / f"{name}.png")
    job = CloakJob(inputs=[photos, *_more_photos()], outdir=folder / "cloaked",
                   settings=settings, protect_all=True, resume=True, overwrite=True)
    extra = {"load_ensemble": load_ensemble} if load_ensemble is not None else {}
    for event in cloak_album(job, detector, **extra):
        if event.stage == "cloaking":
            yield replace(event, stage=STAGE)
    yield Event(1, 1, STAGE, result=job.outdir)
