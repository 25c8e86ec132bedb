"""Who is who in an audit: the clean faces clustered into people, named where the
user named them, and the clean photos of a gallery folder."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from faceguard.audit.pairs import AuditError
from faceguard.audit.protection import AuditFace, Gallery, audit_crop, embed_crops
from faceguard.detect import FaceDetector
from faceguard.face import Face
from faceguard.io import PixelLimit, resolved
from faceguard.manifest import NOBODY
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event
from faceguard.words import plural


def reference_faces(references: Sequence[str], faces: Sequence[AuditFace],
                    detector: FaceDetector, ensemble: Ensemble, limit: PixelLimit,
                    notes: list[str]) -> list[tuple[str, Face, torch.Tensor, np.ndarray]]:
    """The faces of the cloak run's reference photos, as :func:`label_people` takes
    them: (photo, face, crop, landmarks). Of a photo's faces, the one most like the
    cloaked faces' originals, as the cloak run took the one most like the other
    references (the largest was a stranger's in a group photo). ``notes`` gets the
    photos that could not be read."""
    from faceguard.identity import likeliest_face
    from faceguard.io import PhotoError, load_photo, tensor_view

    out, originals = [], None  # model -> (N, D) the originals, when a photo has faces
    for ref in references:
        try:
            photo = load_photo(ref, limit=limit)
        except PhotoError as exc:
            notes.append(f"reference photo skipped: {exc}")
            continue
        if found := detector(photo.pixels):
            crops = [audit_crop(tensor_view(photo.pixels), face, ensemble) for face in found]
            k = 0
            if len(found) > 1:  # a photo of one face is not embedded here (label_people is)
                if originals is None:
                    originals = embed_crops(ensemble, [(f.original, f.landmarks)
                                                       for f in faces])
                k = likeliest_face(ensemble, embed_crops(ensemble, crops), originals)
            out.append((str(ref), found[k], *crops[k]))
    return out


def against_other_photos(faces: Sequence[AuditFace], reference_photos: int) -> list[str]:
    """A note on why the audit may count otherwise than the cloak run's own lines, which
    measured each face against the run's ``reference_photos`` alone (the manifest's
    count; the paths it may keep private): with the cloaked faces of several photos,
    each is measured against the others' originals too. Nothing where the run had no
    reference photos (the app's people are the album's faces, as here)."""
    if not reference_photos or len({f.photo for f in faces}) < 2:
        return []
    return ["Each face is measured against all its person's other clean photos here: the "
            "originals of the other photos too, as a platform holding earlier uploads "
            "would. The cloak's own lines used the reference photos alone, so the two can "
            "count differently."]


def label_people(ensemble: Ensemble, gallery_faces: Sequence[tuple[str, Face, torch.Tensor,
                                                                   np.ndarray]],
                 faces: list[AuditFace], names: Sequence[str | None] = (),
                 references: Sequence[str] = (), protected: str | None = None) -> Gallery:
    """Cluster every clean face into people; label the cloaked faces from their originals.

    ``names``: per cloaked face, whom the cloak run protected it as (the name the user
    gave, from the manifest; None or :data:`NOBODY` when unnamed): that person's cluster takes
    the name (:func:`cluster_names`). With ``protected``, the one person the cloak run
    protected from its ``references`` (photos), those and the faces protected as them
    are one person whatever the clustering says: split in two, a match of a cloaked face
    with the person's own photos counted as "someone else".
    """
    from faceguard.identity import cluster_faces

    with torch.no_grad():
        embs = [{m: e[0] for m, e in ensemble.embed(crop, marks).items()}
                for _, _, crop, marks in gallery_faces]
    stacked = {m: torch.stack([e[m] for e in embs]) for m in ensemble.names}
    photos = [photo for photo, *_ in gallery_faces]
    labels = cluster_faces(ensemble, stacked, photos=photos)
    # a cloaked face is the clean face at the same place in the same photo
    at = [_same_face(ensemble, embs, photos, f) for f in faces]
    if protected is not None:
        theirs = [i for i, photo in enumerate(photos) if photo in references]
        theirs += [k for k, name in zip(at, names, strict=False)
                   if k is not None and name == protected]
        if theirs:
            joined = np.isin(labels, labels[theirs])
            labels[joined] = labels[theirs].min()
    gallery = Gallery()
    keys = _copies_keyed(ensemble, stacked, photos, labels, faces)
    called = cluster_names(labels, photos, at, names)
    for photo, emb, label in zip(keys, embs, labels, strict=True):
        gallery.add(called[label], photo, {m: e.detach() for m, e in emb.items()})
    for f, k in zip(faces, at, strict=True):
        f.person = gallery.people[k] if k is not None else "unknown"
    return gallery


def cluster_names(labels: np.ndarray, photos: Sequence[str], at: Sequence[int | None],
                  names: Sequence[str | None]) -> dict[int, str]:
    """label -> name of each cluster of clean faces (``labels``, (N,), of faces in
    ``photos``): as the user named its cloaked faces (``names``, per cloaked face, whose
    clean face is at row ``at``; None or :data:`NOBODY` when unnamed), else "the person in"
    a photo of theirs: an audited one where there is one, which the user knows.

    Never "person N": the app and ``faceguard people`` call unnamed people so, and a
    bystander's cluster of that name was taken as the protected person of that name."""
    named: dict[int, str] = {}
    for k, name in zip(at, names, strict=False):
        if k is not None and name and name != NOBODY:
            named.setdefault(int(labels[k]), name)
    first: dict[int, str] = {}
    for i in [*(k for k in at if k is not None), *range(len(photos))]:
        first.setdefault(int(labels[i]), photos[i])
    shown = shown_names(photos)
    out, used = dict(named), set(named.values())
    for label, photo in first.items():
        if label in named:
            continue
        for nth in ("the", "a second", "a third", *(f"a {k}th" for k in range(4, 100))):
            out[label] = f"{nth} person in {shown[photo]}"  # two people of one photo
            if out[label] not in used:
                break
        used.add(out[label])
    return out


def shown_names(photos: Iterable[str]) -> dict[str, str]:
    """photo -> how the audit names it: the fewest last parts of its path that no other
    of ``photos`` ends with ("a.jpg"; "2019/trip/a.jpg" beside "2020/trip/a.jpg": cameras
    repeat IMG_0001.jpg, and one name for two photos read as one photo)."""
    parts = {p: Path(p).parts for p in set(photos)}
    out = {}
    for photo, mine in parts.items():
        k = 1
        while k < len(mine) and any(q != photo and theirs[-k:] == mine[-k:]
                                    for q, theirs in parts.items()):
            k += 1
        out[photo] = "/".join(mine[-k:])
    return out


def _same_face(ensemble: Ensemble, embs: Sequence[dict[str, torch.Tensor]],
               photos: Sequence[str], face: AuditFace) -> int | None:
    """The index of the clean face that is ``face``'s original: of those of its photo,
    the nearest (None when its photo has none)."""
    with torch.no_grad():
        emb = {m: e[0] for m, e in ensemble.embed(face.original, face.landmarks).items()}
    best, best_d = None, np.inf
    for k, photo in enumerate(photos):
        if photo != face.photo:
            continue
        d = sum(float((embs[k][m] - emb[m]).norm()) for m in ensemble.names)
        if d < best_d:
            best, best_d = k, d
    return best


def _copies_keyed(ensemble: Ensemble, embeddings: dict[str, torch.Tensor],
                  photos: list[str], labels: np.ndarray, faces: Sequence[AuditFace]
                  ) -> list[str]:
    """Each gallery face's leave-one-out key: its photo, or, for a copy of a cloaked
    face's original (a reference that is the same photo, or a chip ``faceguard people``
    cut from it: :data:`faceguard.identity.SAME_FACE_CUT`), that original's photo, so
    that a probe is not matched against its own clean face. As in the cloak
    (:func:`faceguard.identity.centroids_apart_from`), a copy that is all the person
    has besides the original keeps its own key (the demo's mirrored reference)."""
    from faceguard.identity import SAME_FACE_CUT, pair_distances

    probed = {f.photo for f in faces}
    others = [i for i, photo in enumerate(photos) if photo not in probed]  # references
    inside = [i for i, photo in enumerate(photos) if photo in probed]
    keys = list(photos)
    if not others or not inside:
        return keys
    distance = pair_distances(ensemble, {m: e[others] for m, e in embeddings.items()},
                              {m: e[inside] for m, e in embeddings.items()})  # (R, P)
    for row, i in enumerate(others):
        nearest = int(distance[row].argmin())
        if distance[row, nearest] < SAME_FACE_CUT:
            keys[i] = photos[inside[nearest]]
    for i in others:  # left with nothing else of the person: measured against the copy
        if keys[i] != photos[i] and not any(labels[k] == labels[i] and keys[k] != keys[i]
                                            for k in range(len(keys))):
            keys[i] = photos[i]
    return keys


def check_gallery(gallery: Path, cloaked: Path) -> None:
    """Refuse a Known people folder that is, or is inside, the cloaked photos' folder (the
    one to upload: their photos are not cloaked), or that holds it (its cloaked copies
    were taken as other people, and the audit called the faces protected)."""
    known, folder = resolved(gallery), resolved(cloaked)
    if known in folder.parents:
        raise AuditError(f"the known people's folder {gallery} must not hold the cloaked "
                         f"photos' folder {cloaked}: their cloaked copies would be taken "
                         "for other people")
    # a person's sub-folder linked into the cloaked folder is inside it too
    inside = [sub for sub in (gallery, *gallery.iterdir())
              if sub.is_dir() and folder in (resolved(sub), *resolved(sub).parents)]
    if inside:
        raise AuditError(f"the known people's folder {inside[0]} must not be inside the "
                         f"cloaked photos' folder {cloaked}: that folder is the one to "
                         "upload, and their photos are not cloaked")


def add_gallery(folder: Path, detector: FaceDetector, ensemble: Ensemble, gallery: Gallery,
                notes: list[str] | None = None, made_up: Iterable[str] = ()) -> Iterator[Event]:
    """Add the clean photos of a gallery folder (one sub-folder per person).

    A sub-folder not named as anyone in the audited photos, whose faces match one of
    them (their mean distance below the cut that groups the originals' own faces:
    :data:`faceguard.identity.SAME_PERSON_CUT`), is that person: its photos are added
    under their name, so that a gallery folder "Alice" holds the photos that recognise
    "Sam"; a note says so. A person FaceGuard named itself (one of ``made_up``, such as
    "the person to protect" or "the person in a.jpg") takes the folder's name instead,
    in ``gallery`` (the caller renames their faces: the rows before are in the same
    order). A face that is an audited face's original itself (a chip ``faceguard
    people`` cut from it: :data:`faceguard.identity.SAME_FACE_CUT`) is kept under that
    photo, so that the face is never measured against its own clean copy. ``notes`` gets
    those notes and what was not used, also yielded as events' notes; a photo that cannot
    be read is an event's error.
    """
    from faceguard.album import detect_photos, gallery_folders
    from faceguard.identity import SAME_FACE_CUT, SAME_PERSON_CUT, likeliest_face, pair_distances
    from faceguard.io import find_photos

    told = notes if notes is not None else []
    loose = find_photos([folder], recursive=False)
    subs = gallery_folders(folder)
    said = []
    if loose:
        said.append(f"{plural(len(loose), 'photo')} directly in the gallery folder {folder} "
                    "not used: each person's photos go in a sub-folder named after them.")
    elif not subs:
        said.append(f"The gallery folder {folder} holds no sub-folder of photos: not used.")
    known = sorted(set(gallery.people))  # the people of the audited photos
    unnamed = set(made_up)
    for k, (name, photos) in enumerate(subs.items(), 1):
        read, unread = [], 0  # (photo, model -> (F, D) its faces)
        for event in detect_photos(photos, detector, ensemble):
            if event.error:
                unread += 1
                yield Event(k - 1, len(subs), "reading gallery", event.path,
                            error=f"{event.error} (a known person's photo: not used)")
            elif event.result is not None and event.result.faces:
                read.append((str(event.path), event.result.embeddings))
        found, theirs = [], _folder_person(gallery, name, read)
        for photo, faces_of in read:
            one = {m: e[likeliest_face(ensemble, faces_of, theirs)][None]
                   for m, e in faces_of.items()}
            found.append((_key(ensemble, gallery, one, photo, SAME_FACE_CUT),
                          {m: e[0] for m, e in one.items()}))
        if not found:
            said.append(f'The known people\'s "{name}" ' + ("has no photo that could be read"
                        if 0 < unread == len(photos) else "holds no face found") + ": not used.")
        person = name
        if found:
            theirs = {m: torch.stack([e[m] for _, e in found]) for m in ensemble.names}
            people = np.array(gallery.people)
            distance = {p: float(pair_distances(ensemble, theirs, {
                m: gallery.embeddings[m][torch.from_numpy(people == p)]
                for m in ensemble.names}).mean()) for p in known}
            match = min(distance, key=distance.get, default=None)
            if name in known and distance[name] >= SAME_PERSON_CUT:
                # a name alone is not a face: someone else's photos under the protected
                # person's name made their cloak look unmatched, and the verdict "Protected";
                # taken as another person, older photos of them would draw their cloaked
                # faces ("nearer someone else"): left out
                found = []
                said.append(f'The known people\'s "{name}" does not look like {name} of the '
                            "audited photos: not used.")
            elif name not in known and match in unnamed and distance[match] < SAME_PERSON_CUT:
                # the user's name for them says more than "the person in a.jpg"
                unnamed.discard(match)
                known[known.index(match)] = name
                gallery.people[:] = [name if p == match else p for p in gallery.people]
                said.append(f'The known people\'s "{name}" show {match} (their clean faces '
                            f"match), who is called {name} in this audit.")
            elif name not in known and match is not None and distance[match] < SAME_PERSON_CUT:
                person = match
                said.append(f'The known people\'s "{name}" are taken as photos of {match} '
                            "(as this audit calls them): their clean faces match.")
        for photo, embeddings in found:
            gallery.add(person, photo, embeddings)
        yield Event(k, len(subs), "reading gallery", folder / name)
    for note in said:
        told.append(note)
        yield Event(len(subs), len(subs), "reading gallery", note=note)  # the run's: said


def holds_photos_of(gallery: Gallery, folder: Path, people: set[str],
                    known: Iterable[str | Path]) -> bool:
    """Whether ``gallery`` holds, for every one of ``people``, photos from the Known
    people ``folder`` that the cloak did not know: not among ``known`` (its reference
    photos and the album's originals, which that folder may hold too; a copy of an
    audited face is keyed as that face already). A linked sub-folder counts."""
    inside, known = Path(os.path.abspath(folder)), {resolved(p) for p in known}
    other = {p for p, photo in zip(gallery.people, gallery.photos, strict=True)
             if inside in Path(os.path.abspath(photo)).parents and resolved(photo) not in known}
    return bool(people) and people <= other


def _folder_person(gallery: Gallery, name: str,
                   read: Sequence[tuple[str, dict[str, torch.Tensor]]]
                   ) -> dict[str, torch.Tensor] | None:
    """model -> (N, D) faces of a known people's folder's person, as far as known before
    its group photos: its photos of one face, else, for a folder named after a person of
    the audited photos, theirs; None when neither."""
    alone = [e for _, e in read if len(next(iter(e.values()))) == 1]
    if alone:
        return {m: torch.cat([e[m] for e in alone]) for m in alone[0]}
    if name in gallery.people:
        rows = torch.from_numpy(np.array(gallery.people) == name)
        return {m: e[rows] for m, e in gallery.embeddings.items()}
    return None


def _key(ensemble: Ensemble, gallery: Gallery, embeddings: dict[str, torch.Tensor],
         photo: str, cut: float) -> str:
    """A gallery face's leave-one-out key: the photo of the face already in ``gallery``
    that it is a copy of (nearer than ``cut``), else its own ``photo``. ``embeddings``:
    model -> (F, D), the first face the one added."""
    from faceguard.identity import pair_distances

    if not gallery.photos:
        return photo
    d = pair_distances(ensemble, {m: e[:1] for m, e in embeddings.items()},
                       gallery.embeddings)[0]
    nearest = int(d.argmin())
    return gallery.photos[nearest] if float(d[nearest]) < cut else photo
