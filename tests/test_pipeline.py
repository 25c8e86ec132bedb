"""Album workflows on real photos: who is protected, outputs, manifest, resume, cancel."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceguard.album import AlbumError, find_people, photo_jobs
from faceguard.cloak.universal import UniversalMask
from faceguard.io import load_photo, to_tensor
from faceguard.manifest import MANIFEST_NAME
from faceguard.models.ensemble import Ensemble
from faceguard.pipeline import CloakJob, cloak_album
from faceguard.settings import CloakSettings

FAST = CloakSettings(preset="low", models=("dlib",), steps=5)


@pytest.fixture(scope="module")
def album(album_dir, tmp_path_factory, album_by_person):
    """A small album copy: 3 photos of person_img26, 2 of others, the couple photo."""
    photos = album_by_person
    root = tmp_path_factory.mktemp("album")
    (root / "trip").mkdir()
    chosen = photos["person_img26"][2:5] + photos["person_img1"][:1] + photos["person_img13"][:1]
    for p in chosen:
        shutil.copy(p, root / "trip" / p.name)
    shutil.copy(album_dir / "_unlabelled_extras" / "couple.jpg", root / "couple.jpg")
    refs = photos["person_img26"][:2]  # two other photos of the protected person
    return root, refs, {p.name for p in photos["person_img26"][2:5]}


def _ensemble(load_model):
    return lambda names: Ensemble([load_model(n) for n in names])


def _outside_face(shape: tuple[int, int], entry: dict) -> np.ndarray:
    """(H, W) bool: the pixels well away from the first face of a manifest ``entry``,
    which the cloak may not change."""
    x0, y0, x1, y1 = entry["faces"][0]["box"]
    w, h = x1 - x0, y1 - y0
    outside = np.ones(shape, bool)
    outside[max(0, int(y0 - 0.4 * h)):int(y1 + 0.4 * h),
            max(0, int(x0 - 0.3 * w)):int(x1 + 0.3 * w)] = False
    return outside


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_references_of_two_people_protect_each_from_their_own(album, album_by_person,
                                                              detector, load_model, tmp_path):
    """``--protect`` with another person's photo among the references (``--protect
    people`` for ``people/person-1``): each is protected, from their own photos, and a
    note says so, instead of every face pushed from a blend of the two."""
    root, refs, theirs = album
    stranger = album_by_person["person_img1"][1]  # the album holds their first photo
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", settings=FAST,
                   protect=[*refs, stranger], format="png")
    events = list(cloak_album(job, detector, _ensemble(load_model)))
    notes = [e.note for e in events if e.note]
    assert len(notes) == 1 and notes[0].startswith("the reference photos show 2 different "
                                                   "people (the person to protect (1): ")
    whose = {e.path.name: [f["person"] for f in e.result["faces"] if f["protected"]]
             for e in events if e.stage == "cloaking" and not e.under_way
             and e.path.parent.name == "trip"}  # the labelled photos
    assert {n: p for n, p in whose.items() if p} == {
        **{n: ["the person to protect (1)"] for n in theirs},
        album_by_person["person_img1"][0].name: ["the person to protect (2)"]}


def test_a_person_found_in_no_photo_is_told(album, album_by_person, detector, load_model,
                                            tmp_path):
    root, _, _ = album
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", settings=FAST,
                   protect=album_by_person["person_img8"][:2])  # not in the album
    events = list(cloak_album(job, detector, _ensemble(load_model)))
    assert [e.note for e in events if e.note] == [
        "no face in the photos matched the person to protect: no photo is cloaked for "
        "them. Check the reference photos"]
    assert all(e.result["status"] == "copied" for e in events
               if e.stage == "cloaking" and not e.under_way)


def test_cloaks_exactly_the_protected_person(album, detector, load_model, tmp_path):
    root, refs, theirs = album
    before = {p: _digest(p) for p in root.rglob("*.jpg")}
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", settings=FAST, protect=refs,
                   format="png")
    events = list(cloak_album(job, detector, _ensemble(load_model)))
    done = [e for e in events if e.stage == "cloaking" and not e.under_way]
    assert len(done) == 6 and not any(e.error for e in done)
    for e in done:
        entry = e.result
        name = e.path.name
        expected = "cloaked" if name in theirs else "copied"
        assert entry["status"] == expected, name
        protected = [f for f in entry["faces"] if f["protected"]]
        assert len(protected) == (1 if name in theirs else 0), name
        out = tmp_path / "out" / entry["output"]
        assert out.suffix == ".png" and out.is_file()
        if expected == "copied":  # no face to protect: the pixels as read
            assert np.array_equal(load_photo(out).pixels, load_photo(e.path).pixels), name
        for f in protected:
            assert f["quality"]["linf"] <= FAST.resolved().eps + 0.51  # + rounding to 8 bits
            assert f["distance_after"]["dlib"] > f["distance_before"]["dlib"]
    # relative paths kept; originals untouched
    assert (tmp_path / "out" / "trip").is_dir() and (tmp_path / "out" / "couple.png").is_file()
    assert before == {p: _digest(p) for p in root.rglob("*.jpg")}
    text = (tmp_path / "out" / MANIFEST_NAME).read_text()
    manifest = json.loads(text)
    assert manifest["settings"]["method"] == FAST.method and manifest["versions"]["torch"]
    assert len(manifest["photos"]) == 6 and manifest["seed"] == 0
    assert str(root) not in text and str(root.parent) not in text  # nothing private
    assert manifest["photos"]["trip/" + sorted(theirs)[0]]["input"] == "trip/" + sorted(theirs)[0]


def test_pixels_outside_protected_faces_are_unchanged(album, detector, load_model, tmp_path):
    root, refs, theirs = album
    name = sorted(theirs)[0]
    job = CloakJob(inputs=[root / "trip" / name], outdir=tmp_path, settings=FAST,
                   protect=refs, format="png")
    entry = [e for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and not e.under_way][0].result
    original = load_photo(root / "trip" / name).pixels
    cloaked = load_photo(tmp_path / entry["output"]).pixels
    changed = np.abs(cloaked - original).max(axis=2) > 0.6 / 255
    assert changed.any() and not changed[_outside_face(changed.shape, entry)].any()


def test_a_photo_turned_on_its_side_without_its_tag_is_cloaked(album, detector, load_model,
                                                               tmp_path):
    """Stored sideways with no rotation tag, the photo keeps its orientation, and its face
    is found, cloaked away from the person and measured."""
    root, refs, theirs = album
    upright = load_photo(root / "trip" / sorted(theirs)[0]).pixels
    turned = np.ascontiguousarray(np.rot90(upright, 1))
    (tmp_path / "in").mkdir()
    Image.fromarray(np.round(turned * 255).astype(np.uint8)).save(tmp_path / "in" / "side.png")
    job = CloakJob(inputs=[tmp_path / "in"], outdir=tmp_path / "out", settings=FAST,
                   protect=refs, format="png")
    events = list(cloak_album(job, detector, _ensemble(load_model)))
    entry = [e for e in events if e.stage == "cloaking" and not e.under_way][0].result
    assert entry["status"] == "cloaked"
    # the user is told, in case the photo shows sideways where it is posted
    assert any("on their side" in e.note and "side.png" in e.note for e in events if e.note)
    face = entry["faces"][0]
    assert face["protected"] and face["distance_after"]["dlib"] > face["distance_before"]["dlib"]
    cloaked = load_photo(tmp_path / "out" / entry["output"]).pixels
    assert cloaked.shape == turned.shape
    changed = np.argwhere(np.abs(cloaked - turned).max(axis=2) > 0.6 / 255)
    x0, y0, x1, y1 = face["box"]
    assert x1 - x0 > 100 and len(changed)
    # the cloak lies on the face, found where it is in the sideways photo
    w, h = x1 - x0, y1 - y0
    assert ((changed[:, 1] > x0 - 0.3 * w) & (changed[:, 1] < x1 + 0.3 * w)).all()
    assert ((changed[:, 0] > y0 - 0.4 * h) & (changed[:, 0] < y1 + 0.4 * h)).all()


def test_resume_skips_done_photos_and_redoes_changed_settings(album, detector, load_model,
                                                               tmp_path):
    root, refs, _ = album
    inputs = [root / "trip"]
    job = CloakJob(inputs=inputs, outdir=tmp_path, settings=FAST, protect=refs)
    list(cloak_album(job, detector, _ensemble(load_model)))
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jpg")}
    job.resume = True
    again = [e for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and not e.under_way]
    assert all(e.skipped for e in again) and len(again) == 5
    assert stamps == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jpg")}
    # other settings: photos are done again, not skipped
    job.settings = CloakSettings(preset="low", models=("dlib",), steps=6)
    redo = [e for e in cloak_album(job, detector, _ensemble(load_model))
            if e.stage == "cloaking" and not e.under_way]
    assert not any(e.skipped for e in redo)


def test_resume_redoes_a_photo_this_run_would_write_otherwise(album, detector, load_model,
                                                              tmp_path):
    """Kept only for the same photo, unchanged, with the same faces cloaked as the same
    people, written the same way (the app always resumes into its output folder)."""
    root, refs, theirs = album
    folder = tmp_path / "album"
    folder.mkdir()
    others = sorted(p for p in (root / "trip").iterdir() if p.name not in theirs)
    shutil.copy(root / "trip" / sorted(theirs)[0], folder / "a.jpg")
    shutil.copy(others[0], folder / "b.jpg")  # someone else: copied as it is

    def run(**how) -> dict[str, bool]:
        job = CloakJob(inputs=[folder], outdir=tmp_path / "out", settings=FAST,
                       resume=True, **({"protect": refs} | how))
        return {e.path.name: bool(e.skipped) for e in cloak_album(
            job, detector, _ensemble(load_model)) if e.stage == "cloaking" and not e.under_way}

    assert run() == {"a.jpg": False, "b.jpg": False}
    assert run() == {"a.jpg": True, "b.jpg": True}
    shutil.copy(folder / "a.jpg", tmp_path / "out" / "a.jpg")  # the output replaced
    assert run() == {"a.jpg": False, "b.jpg": True}
    assert _digest(tmp_path / "out" / "a.jpg") != _digest(folder / "a.jpg")  # cloaked again
    shutil.copy(others[1], folder / "b.jpg")  # another photo of the same name
    assert run() == {"a.jpg": True, "b.jpg": False}
    # everyone protected: b's face is cloaked now, and a's is cloaked for itself
    assert run(protect=None, protect_all=True) == {"a.jpg": False, "b.jpg": False}
    assert run(protect=None, protect_all=True) == {"a.jpg": True, "b.jpg": True}
    assert run(protect=None, protect_all=True, quality=80) == {"a.jpg": False, "b.jpg": False}


def test_everyone_with_a_person_cloaks_their_faces_as_them_and_the_rest_each_for_itself(
        album, detector, load_model, tmp_path):
    root, refs, theirs = album
    folder = tmp_path / "album"
    folder.mkdir()
    shutil.copy(root / "trip" / sorted(theirs)[0], folder / "a.jpg")
    shutil.copy(next(p for p in (root / "trip").iterdir() if p.name not in theirs),
                folder / "b.jpg")
    job = CloakJob(inputs=[folder], outdir=tmp_path / "out", settings=FAST, protect=refs,
                   protect_all=True)
    events = list(cloak_album(job, detector, _ensemble(load_model)))
    assert not [e.note for e in events if e.note and "matched" in e.note]
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    whom = {k: [f["person"] for f in e["faces"]] for k, e in manifest["photos"].items()}
    assert whom == {"a.jpg": ["the person to protect"], "b.jpg": ["self"]}


def test_everyone_pushes_a_person_in_several_photos_from_their_other_faces(
        album, detector, load_model, tmp_path):
    """``--protect-all`` pushed each face from its own clean copy, which a platform never
    holds; a person whose face is in other photos of the album is now pushed from, and
    measured against, those, and a face alone in the album still from itself. Nobody is
    recorded as a person the user named (the audit would join their faces as one)."""
    from faceguard.manifest import FaceRecord
    from faceguard.verdict import measured_against

    root, refs, theirs = album
    job = CloakJob(inputs=[root / "trip"], outdir=tmp_path / "out", settings=FAST,
                   protect_all=True)
    list(cloak_album(job, detector, _ensemble(load_model)))
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert manifest["protected"] == [] and manifest["protect_all"]
    largest = {k: max(map(FaceRecord.from_dict, e["faces"]),
                      key=lambda f: f.box[2] - f.box[0])
               for k, e in manifest["photos"].items()}
    assert all(f.protected and f.person == "self" for f in largest.values())
    for name, face in largest.items():
        if name in theirs:  # person_img26, in three photos: from the other two
            assert measured_against(face) == "its person's other faces in these photos"
            assert min(face.distance_before.values()) > 0.1  # another photo, not itself
        else:  # one photo each of two other people
            assert measured_against(face) == "its own clean face"
            assert not any(face.distance_before.values())


def test_everyone_in_one_photo_groups_its_faces_with_the_scanned_album_as_the_run_does(
        album, detector, load_model, tmp_path):
    """The app's preview cloaks one photo, with the album it scanned passed along: its
    person's faces in the other photos are what the face is pushed from, as in the run
    of the whole album, not the face itself."""
    from faceguard.album import detect_photos
    from faceguard.manifest import FaceRecord
    from faceguard.verdict import measured_against

    root, refs, theirs = album
    photos = sorted(root / "trip" / name for name in theirs)
    ensemble = _ensemble(load_model)(FAST.models)
    scanned = {e.path: e.result for e in detect_photos(photos, detector, ensemble)}
    job = CloakJob(inputs=[photos[0]], outdir=tmp_path / "out", settings=FAST,
                   protect_all=True, scanned=scanned)
    list(cloak_album(job, detector, _ensemble(load_model)))
    entry = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["photos"]
    face = max(map(FaceRecord.from_dict, entry[photos[0].name]["faces"]),
               key=lambda f: f.box[2] - f.box[0])
    assert measured_against(face) == "its person's other faces in these photos"
    assert min(face.distance_before.values()) > 0.1
    # without the album around it, the face is pushed from itself
    list(cloak_album(replace(job, outdir=tmp_path / "alone", scanned=None), detector,
                     _ensemble(load_model)))
    entry = json.loads((tmp_path / "alone" / MANIFEST_NAME).read_text())["photos"]
    face = max(map(FaceRecord.from_dict, entry[photos[0].name]["faces"]),
               key=lambda f: f.box[2] - f.box[0])
    assert measured_against(face) == "its own clean face"


def test_a_run_that_writes_nothing_leaves_how_the_folders_photos_were_made(
        album, detector, load_model, tmp_path):
    """A second run refused every photo (already there), yet its people and reference
    photos replaced the first run's in the manifest: the audit read them as the folder's."""
    root, refs, theirs = album
    photo = root / "trip" / sorted(theirs)[0]
    job = CloakJob(inputs=[photo], outdir=tmp_path / "out", settings=FAST, protect=refs)
    list(cloak_album(job, detector, _ensemble(load_model)))
    first = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    events = list(cloak_album(replace(job, protect=refs[:1] + [photo]), detector,
                              _ensemble(load_model)))
    assert any(e.error and "already exists" in e.error for e in events)
    again = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert again["references"] == first["references"] and again["ended"]


def test_existing_outputs_are_never_overwritten_silently(album, detector, load_model, tmp_path):
    root, refs, theirs = album
    photo = root / "trip" / sorted(theirs)[0]
    (tmp_path / photo.name).write_bytes(b"mine")
    job = CloakJob(inputs=[photo], outdir=tmp_path, settings=FAST, protect=refs)
    events = [e for e in cloak_album(job, detector, _ensemble(load_model))
              if e.stage == "cloaking"]
    assert len(events) == 1  # said before the cloak: not one optimisation step taken
    assert events[0].error and "already exists" in events[0].error
    assert (tmp_path / photo.name).read_bytes() == b"mine"
    # --resume replaces only what an earlier run wrote: this file it never did
    job = replace(job, resume=True)
    events = [e for e in cloak_album(job, detector, _ensemble(load_model))
              if e.stage == "cloaking"]
    assert len(events) == 1 and "already exists" in events[0].error
    assert (tmp_path / photo.name).read_bytes() == b"mine"


def test_a_link_in_the_output_folder_is_not_written_through(album, detector, load_model,
                                                             tmp_path):
    """out/sub linked to another folder (the originals, once): the photos of sub/ were
    written there, and with --overwrite or --resume an original was replaced."""
    root, refs, theirs = album
    photo = root / "trip" / sorted(theirs)[0]
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(photo, tmp_path / "in" / "sub" / photo.name)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    job = CloakJob(inputs=[tmp_path / "in"], outdir=tmp_path / "out", settings=FAST,
                   protect=refs, overwrite=True)
    (event,) = [e for e in cloak_album(job, detector, _ensemble(load_model))
                if e.stage == "cloaking"]
    assert "is a link, and the output folder's photos are written only inside it" in event.error
    assert not any((tmp_path / "elsewhere").iterdir())


def test_an_output_already_there_is_said_before_its_cloak_beside_another(
        astronaut, detector, load_model, tmp_path, monkeypatch):
    root, seen = _two_photos_watched(astronaut, tmp_path, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"mine")
    job = CloakJob(inputs=[root], outdir=out, protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=4))
    done = [e for e in cloak_album(job, detector, _ensemble(load_model))
            if e.stage == "cloaking" and not e.under_way]
    assert [(e.path.name, e.error is None) for e in done] == [("a.png", True),
                                                              ("b.png", False)]
    assert "already exists" in done[1].error
    assert "b.png" not in seen  # no step of b's cloak was taken
    assert (out / "b.png").read_bytes() == b"mine"
    assert (out / "a.png").exists()


def test_photos_sharing_a_name_written_in_one_format_are_each_kept(album, detector, load_model,
                                                                  tmp_path):
    """a.jpg, a.png and a.webp written as PNG: three outputs, even with --overwrite."""
    root, refs, theirs = album
    photo = Image.open(root / "trip" / sorted(theirs)[0])
    folder = tmp_path / "album"
    folder.mkdir()
    for suffix in (".jpg", ".png", ".webp"):
        photo.save(folder / f"a{suffix}")
    (folder / "b.jpg").write_bytes((folder / "a.jpg").read_bytes())  # a name of its own
    job = CloakJob(inputs=[folder], outdir=tmp_path / "out", settings=FAST, protect=refs,
                   format="png", overwrite=True)
    events = [e for e in cloak_album(job, detector, _ensemble(load_model))
              if e.stage == "cloaking" and not e.under_way]
    assert all(e.error is None for e in events)
    written = {e.path.name: e.result["output"] for e in events}
    assert written == {"a.jpg": "a.jpg.png", "a.png": "a.png", "a.webp": "a.webp.png",
                       "b.jpg": "b.png"}
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == sorted(written.values())


def test_cancel_leaves_only_complete_files(album, detector, load_model, tmp_path):
    root, refs, _ = album
    job = CloakJob(inputs=[root / "trip"], outdir=tmp_path, settings=FAST, protect=refs)
    events = cloak_album(job, detector, _ensemble(load_model))
    for event in events:
        if event.stage == "cloaking" and not event.under_way:
            break  # the user pressed Cancel after the first photo
    events.close()
    outputs = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert outputs == sorted([MANIFEST_NAME, *(e["output"] for e in
                                               manifest["photos"].values())])
    assert len(manifest["photos"]) == 1
    for entry in manifest["photos"].values():
        load_photo(tmp_path / entry["output"])  # complete, decodable


def test_bad_photos_are_reported_and_the_rest_go_on(album, detector, load_model, tmp_path):
    root, refs, theirs = album
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(root / "trip" / sorted(theirs)[0], mixed / "good.jpg")
    (mixed / "empty.jpg").write_bytes(b"")
    (mixed / "notes.jpg").write_text("not a photo")
    job = CloakJob(inputs=[mixed], outdir=tmp_path / "out", settings=FAST, protect=refs)
    events = [e for e in cloak_album(job, detector, _ensemble(load_model))
              if e.stage == "cloaking" and not e.under_way]
    errors = sorted(e.error for e in events if e.error)
    assert len(errors) == 2 and "empty.jpg: file is empty" in errors[0]
    assert "notes.jpg" in errors[1]
    assert [p.name for p in (tmp_path / "out").glob("*.jpg")] == ["good.jpg"]


def test_output_inside_input_is_refused(album, detector, load_model):
    root, refs, _ = album
    job = CloakJob(inputs=[root], outdir=root / "out", settings=FAST, protect=refs)
    with pytest.raises(AlbumError, match="must not be inside"):
        list(cloak_album(job, detector, _ensemble(load_model)))
    # a photo given by itself: its own folder is refused too, one beside it is fine
    photo = next((root / "trip").iterdir())
    job = CloakJob(inputs=[photo], outdir=photo.parent, settings=FAST, protect=refs)
    with pytest.raises(AlbumError, match="must not be the folder of the photo"):
        list(cloak_album(job, detector, _ensemble(load_model)))
    # a file where the folder would be (or above it): said before any work
    for outdir in (photo, photo / "sub"):
        job = CloakJob(inputs=[root], outdir=outdir, settings=FAST, protect=refs)
        with pytest.raises(AlbumError, match=f"cannot be made: {photo} is a file"):
            list(cloak_album(job, detector, _ensemble(load_model)))


def test_whom_to_protect_is_required(album, detector, load_model, tmp_path):
    root, _, _ = album
    with pytest.raises(AlbumError, match="whom to protect"):
        list(cloak_album(CloakJob(inputs=[root], outdir=tmp_path / "out"), detector,
                         _ensemble(load_model)))
    assert not (tmp_path / "out").exists()  # a refused job leaves no empty folder


def test_photo_jobs_keep_relative_paths(album):
    root, _, _ = album
    rels = {rel.as_posix() for _, rel in photo_jobs([root])}
    assert "couple.jpg" in rels and any(r.startswith("trip/") for r in rels)


def test_find_people_groups_the_album(album_dir, detector, load_model, album_by_person):
    photos = album_by_person
    paths = photos["person_img26"][:3] + photos["person_img29"][:3]
    people = [e.result for e in find_people(paths, detector, Ensemble([load_model("dlib")]))
              if e.stage == "grouping"][0]
    groups = sorted(sorted(p.parent.name for p, _ in person.faces) for person in people)
    assert groups == [["person_img26"] * 3, ["person_img29"] * 3]


def test_two_people_picked_from_the_album_are_both_cloaked(album_dir, detector, load_model,
                                                           tmp_path, album_by_person):
    photos = album_by_person
    paths = photos["person_img26"][:3] + photos["person_img29"][:2] + photos["person_img1"][:2]
    ensemble = Ensemble([load_model("dlib")])
    people = [e.result for e in find_people(paths, detector, ensemble)
              if e.stage == "grouping"][0]
    picked = [p.person for p in people
              if {f.parent.name for f, _ in p.faces} & {"person_img26", "person_img29"}]
    assert len(picked) == 2
    job = CloakJob(inputs=paths, outdir=tmp_path, settings=FAST, protect_people=picked)
    entries = {e.path.parent.name + "/" + e.path.name: e.result
               for e in cloak_album(job, detector, _ensemble(load_model))
               if e.stage == "cloaking" and not e.under_way}
    for key, entry in entries.items():
        expected = "copied" if key.startswith("person_img1/") else "cloaked"
        assert entry["status"] == expected, key
        if expected == "copied":  # a JPEG nobody is cloaked in: its picture, not re-encoded
            source = album_dir / key
            out = tmp_path / entry["output"]
            assert np.array_equal(load_photo(out).pixels, load_photo(source).pixels), key
            assert out.stat().st_size <= source.stat().st_size, key


def test_a_saved_universal_mask_cloaks_new_photos(album, detector, load_model, tmp_path):
    """Make person_img26's mask on the album, then apply it alone (``--mask``) elsewhere."""
    root, refs, theirs = album
    settings = CloakSettings(method="universal-sgd", preset="low", models=("dlib",), steps=4)
    made = CloakJob(inputs=[root], outdir=tmp_path / "made", settings=settings, protect=refs)
    list(cloak_album(made, detector, _ensemble(load_model)))
    assert not list((tmp_path / "made").glob("*.mask.pt"))  # not next to the photos
    mask = next((tmp_path / "made" / ".faceguard").glob("*.mask.pt"))
    assert mask.parent.stat().st_mode & 0o777 == 0o700  # a face template of the person
    made_photos = json.loads((tmp_path / "made" / MANIFEST_NAME).read_text())["photos"]
    in_album = sum(f["protected"] for e in made_photos.values() for f in e["faces"])
    # fitted on the person's faces in the album and in their reference photos
    assert UniversalMask.load(mask).settings["faces"] == in_album + len(refs)
    job = CloakJob(inputs=[root / "trip"], outdir=tmp_path / "applied", mask=mask)
    events = list(cloak_album(job, detector, _ensemble(load_model)))
    done = [e for e in events if e.stage == "cloaking" and not e.under_way]
    assert len(done) == 5 and not any(e.error for e in done)
    manifest = json.loads((tmp_path / "applied" / MANIFEST_NAME).read_text())
    assert manifest["settings"]["mask"] == f"../made/.faceguard/{mask.name}"  # not absolute
    for name, entry in manifest["photos"].items():
        protected = [f for f in entry["faces"] if f["protected"]]
        assert len(protected) == (1 if Path(name).name in theirs else 0), name
        for f in protected:
            assert f["method"].endswith("mask")
            assert f["distance_after"]["dlib"] > f["distance_before"]["dlib"]
    # resumed with another preset, the mask is applied again, not kept as it was; made at
    # low and applied at balanced (the job's default) before, which was said
    assert any("the mask was made keeping faces at SSIMULACRA2 85 (preset low); it is "
               "applied keeping them at 75: give" in (e.note or "") for e in events)
    job.resume, job.settings = True, CloakSettings(preset="low")
    again = list(cloak_album(job, detector, _ensemble(load_model)))
    assert not any(e.skipped for e in again if e.stage == "cloaking")
    assert not any("the mask was made" in (e.note or "") for e in again)


def test_album_path_refines_each_photo_from_the_persons_mask(album, detector, load_model,
                                                             tmp_path):
    """``person_mask``: one mask of person_img26 from their faces, then 3 refining steps
    per photo (not the preset's 60): each face beyond dlib's threshold, at its
    visibility floor. (Against per-photo cloaks: benchmarks/protection.py.)"""
    root, refs, theirs = album
    settings = CloakSettings(models=("dlib",), robust=False, person_mask=3)
    job = CloakJob(inputs=[root / "trip"], outdir=tmp_path / "out", settings=settings,
                   protect=refs, format="png")
    events = list(cloak_album(job, detector, _ensemble(load_model)))
    assert any(e.stage == "learning" and e.part for e in events)  # the mask's fitting
    steps = {e.detail.rsplit(" of ", 1)[1] for e in events
             if e.stage == "cloaking" and e.part is not None and ": step " in (e.detail or "")}
    assert steps == {"3"}
    faces = [f for e in events if e.stage == "cloaking" and e.result
             for f in e.result["faces"] if f["protected"]]
    assert len(faces) == len(theirs)
    for f in faces:
        assert f["method"] == "perceptual from the person's mask"
        assert f["distance_after"]["dlib"] > max(0.6, f["distance_before"]["dlib"])
        assert f["quality"]["ssimulacra2"] >= settings.resolved().floor - 0.5
    assert not list((tmp_path / "out").glob("*.mask.pt"))  # a means, not an output


def test_cancel_mid_face_stops_within_two_seconds_and_resumes(astronaut, detector, load_model,
                                                              tmp_path):
    """As the app cancels: another thread asks, the job's thread stops at the next event
    (every optimisation step is one) and closes the job."""
    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(root / "b.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, 24:])).save(root / "c.png")
    out = tmp_path / "out"
    job = CloakJob(inputs=[root], outdir=out, protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=40))  # the default method
    cancel, seen, stopped = threading.Event(), [], []

    def run_job() -> None:  # the app's worker thread
        events = cloak_album(job, detector, _ensemble(load_model))
        for event in events:
            seen.append(event)
            if cancel.is_set():
                break
        events.close()
        stopped.append(time.perf_counter())

    worker = threading.Thread(target=run_job)
    worker.start()
    deadline = time.time() + 600
    while worker.is_alive() and time.time() < deadline and not any(
            e.under_way and e.done == 2 and e.part >= 0.25 for e in seen):
        time.sleep(0.02)  # until the third photo's face is a quarter optimised (a and b
        # are cloaked side by side)
    asked = time.perf_counter()
    cancel.set()
    worker.join(60)
    assert not worker.is_alive() and stopped[0] - asked < 2.0  # within a step or two
    assert not [t for t in threading.enumerate() if t.name == "faceguard-steps"]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert list(manifest["photos"]) == ["a.png", "b.png"]  # the finished photos are kept
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, "a.png", "b.png"])

    resumed = replace(job, resume=True)
    photos = [e for e in cloak_album(resumed, detector, _ensemble(load_model))
              if e.stage == "cloaking" and not e.under_way]
    assert [(e.path.name, e.skipped) for e in photos] == [("a.png", True), ("b.png", True),
                                                          ("c.png", False)]
    assert photos[2].result["status"] == "cloaked"


def _two_photos_watched(astronaut, tmp_path, monkeypatch):
    """Two photos a.png and b.png of one face; returns (input folder, what each photo's
    cloak saw: photo -> list of (thread name, torch threads, time) at each step)."""
    from faceguard import pipeline

    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(root / "b.png")
    seen: dict[str, list] = {}
    cloak_photo = pipeline.cloak_photo

    def watched(photo, rel, *args):
        gen = cloak_photo(photo, rel, *args)
        while True:  # in the thread that cloaks the photo
            try:
                event = next(gen)
            except StopIteration as end:
                return end.value
            seen.setdefault(rel.name, []).append(
                (threading.current_thread().name, torch.get_num_threads(), time.perf_counter()))
            yield event

    monkeypatch.setattr(pipeline, "cloak_photo", watched)
    return root, seen


def test_two_photos_are_cloaked_side_by_side_and_said_in_order(astronaut, detector,
                                                                load_model, tmp_path,
                                                                monkeypatch):
    root, seen = _two_photos_watched(astronaut, tmp_path, monkeypatch)
    threads = torch.get_num_threads()
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=8))
    events = [e for e in cloak_album(job, detector, _ensemble(load_model))
              if e.stage == "cloaking"]
    a, b = seen["a.png"], seen["b.png"]
    assert {name for name, _, _ in b} == {"faceguard-work-aside_0"}
    assert threading.current_thread().name in {name for name, _, _ in a}
    assert a[0][1] == 1  # one torch thread each while both are cloaked
    # the photo aside never computes on two: OpenMP would stop spinning for good, and
    # every later photo would take longer
    assert {threads for _, threads, _ in b} == {1}
    assert b[0][2] < a[-1][2]  # b's cloak began before a's ended
    assert torch.get_num_threads() == threads
    done = [e.path.name for e in events if not e.under_way]
    assert done == ["a.png", "b.png"]
    # b's steps are said once a is done, and the bar never goes back by a photo
    positions = [e.position for e in events]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(positions))
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert list(manifest["photos"]) == ["a.png", "b.png"]
    assert all(f["distance_after"]["dlib"] > f["distance_before"]["dlib"]
               for e in manifest["photos"].values() for f in e["faces"])


def test_stopping_while_two_photos_are_cloaked_stops_both(astronaut, detector, load_model,
                                                          tmp_path, monkeypatch):
    root, seen = _two_photos_watched(astronaut, tmp_path, monkeypatch)
    threads = torch.get_num_threads()
    out = tmp_path / "out"
    job = CloakJob(inputs=[root], outdir=out, protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=200))
    events = cloak_album(job, detector, _ensemble(load_model))
    for event in events:
        if event.under_way and event.path.name == "a.png" and event.part >= 0.02:
            break
    asked = time.perf_counter()
    events.close()
    assert time.perf_counter() - asked < 2.0
    assert len(seen["b.png"]) < 100  # b stopped too, long before its 200 steps
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("when", ["measuring how visible face 1 of 1",
                                  "measuring the photo written"])
def test_stopping_while_measuring_leaves_no_file(astronaut, detector, load_model, tmp_path,
                                                  when):
    """How visible the cloak is gets measured before the photo is written, and the file
    written under a temporary name before it is named (seconds each on a huge photo:
    Cancel and Ctrl-C waited them out): a job stopped at either has left nothing of that
    photo, no temporary file either."""
    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.png")
    out = tmp_path / "out"
    job = CloakJob(inputs=[root], outdir=out, protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=2))
    events = cloak_album(job, detector, _ensemble(load_model))
    details = []
    for event in events:
        details.append(event.detail or "")
        if details[-1].startswith(when):
            break
    events.close()
    assert details[-1].startswith(when)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]


def test_the_manifest_reuses_the_guards_score_of_the_kept_face(astronaut, detector,
                                                               load_model, tmp_path,
                                                               monkeypatch):
    """The visibility guard scored the face as kept; the manifest's measurement of the
    same pixels takes that score (a second a scoring on a large face) and scores only the
    JPEG equivalents and the saved photo."""
    from faceguard.cloak import budget
    from faceguard.visibility import FaceLook

    guarded, scored = [], []
    keep = budget.keep_visible

    def spy_keep(*args, **kwargs):
        out = keep(*args, **kwargs)
        guarded.append(out[1])
        return out

    seen = FaceLook._seen

    def spy_seen(self, face, between=None):
        scored.append(face.copy())
        return seen(self, face, between)

    monkeypatch.setattr("faceguard.cloak.photo.keep_visible", spy_keep)
    monkeypatch.setattr(FaceLook, "_seen", spy_seen)
    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.png")
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", protect_all=True, format="png",
                   settings=CloakSettings(models=("dlib",), steps=2))
    entry = [e for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and not e.under_way][0].result
    (saw,) = guarded
    quality = entry["faces"][0]["quality"]
    assert quality["ssimulacra2"] == round(saw.ssimulacra2, 2)
    assert scored and not any(np.array_equal(s, saw.pixels) for s in scored)
    assert quality["saved_ssimulacra2"] == quality["ssimulacra2"]  # PNG: lossless


def test_a_jpeg_file_keeps_the_floor_as_it_shows_the_face(astronaut, detector, load_model,
                                                          tmp_path, monkeypatch):
    """The guard scores the face as the JPEG file will show it: the file keeps the floor
    (it fell 1-2 points below it, JPEG's own loss on top of the cloak's), and the file's
    score is the guard's to the digit: the part cut on the 8-pixel grid decodes to the
    file's pixels."""
    from faceguard.cloak import budget

    guarded = []
    keep = budget.keep_visible

    def spy_keep(*args, **kwargs):
        out = keep(*args, **kwargs)
        guarded.append(out[1])
        return out

    monkeypatch.setattr("faceguard.cloak.photo.keep_visible", spy_keep)
    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.jpg", quality=90)
    floor = 88.0  # under what q95 alone keeps (about 93), over what the cloak would
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=4, floor=floor))
    entry = [e for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and not e.under_way][0].result
    (saw,) = guarded
    quality = entry["faces"][0]["quality"]
    assert floor <= saw.ssimulacra2 < floor + 0.5  # the guard scaled the cloak down
    assert quality["saved_ssimulacra2"] == round(saw.ssimulacra2, 2), quality
    assert quality["ssimulacra2"] > quality["saved_ssimulacra2"]  # JPEG's loss, kept within


def test_a_file_whose_compression_alone_breaks_the_floor_keeps_the_cloak_at_it(
        astronaut, detector, load_model, tmp_path):
    """JPEG at quality 30 takes the face below the floor of 88 by itself: the guard used to
    scale the cloak down to nothing (and the run said "1 face cloaked"). The floor is
    then the cloak's own, before saving, and the manifest says the file's score."""
    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.png")
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", protect_all=True, format="jpeg",
                   quality=30, settings=CloakSettings(models=("dlib",), steps=4, floor=88.0))
    entry = [e for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and not e.under_way][0].result
    quality = entry["faces"][0]["quality"]
    assert quality["ssimulacra2"] >= 88.0 and quality["linf"] > 0, quality
    assert quality["saved_ssimulacra2"] < 80, quality


def test_a_sixteen_bit_png_keeps_its_bits_and_its_measured_look(astronaut, detector,
                                                                 load_model, tmp_path):
    """Outside the faces nothing changes, to the 16th bit; the cloak is written on 8-bit
    levels, as it was measured (unrounded, the file showed more of it than measured)."""
    import cv2

    deep = astronaut.astype(np.uint16) * 257 + 3  # off the 8-bit levels
    root = tmp_path / "in"
    root.mkdir()
    cv2.imwrite(str(root / "a.png"), np.ascontiguousarray(deep[..., ::-1]))
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=2))
    entry = [e for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and not e.under_way][0].result
    written = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert written.dtype == np.uint16
    changed = (written != deep).any(axis=2)
    assert changed.any() and not changed[_outside_face(changed.shape, entry)].any()
    quality = entry["faces"][0]["quality"]
    assert quality["saved_ssimulacra2"] == quality["ssimulacra2"]


def test_a_photo_written_over_white_is_measured_as_shown(astronaut, detector, load_model,
                                                       tmp_path):
    """A see-through PNG written as JPEG is put on white: "in the file written" compared
    the file with the photo as read, and called a faint cloak visible (-13 at alpha 200)."""
    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(np.dstack([astronaut, np.full(astronaut.shape[:2], 200, np.uint8)])
                    ).save(root / "a.png")
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", protect_all=True, format="jpeg",
                   settings=CloakSettings(models=("dlib",), steps=2))
    entry = [e for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and not e.under_way][0].result
    quality = entry["faces"][0]["quality"]
    assert quality["ssimulacra2"] - 6 < quality["saved_ssimulacra2"], quality  # JPEG's loss


def test_a_face_that_is_its_own_centroid_reads_distance_zero():
    """Cosine's float rounding can put 1 - cos(a, a) just below 0; the manifest and the
    CLI's line then read "-0.00"."""
    import torch

    from faceguard.models.base import Recognizer
    from faceguard.one_photo import _distances

    class Cosine:  # what _distances asks of an ensemble: its names and each one's metric
        names = ["cosine"]
        distance = "cosine"
        compare = Recognizer.compare

        def __getitem__(self, name):
            return self

    gen = torch.Generator().manual_seed(0)
    face = next(e for e in (torch.randn(128, generator=gen) for _ in range(1000))
                if Recognizer.compare(Cosine(), e, e) < 0)
    assert f"{_distances(Cosine(), {'cosine': face}, {'cosine': face})['cosine']:.2f}" == "0.00"


def test_the_cloak_is_written_on_8_bit_levels_and_the_rest_as_it_was():
    """The pixels the cloak changed are written on the 8-bit levels the guard measured;
    those it left alone keep their own values (a 16-bit photo's, off that grid)."""
    import torch

    from faceguard.cloak.budget import eight_bit
    from faceguard.io import from_tensor
    from faceguard.one_photo import _on_eight_bit_levels

    g = torch.Generator().manual_seed(0)
    original = torch.rand(1, 3, 96, 128, generator=g)  # off the 8-bit grid
    image = original.clone()
    image[..., 30:70, 40:60] += 0.02 * torch.randn(1, 3, 40, 20, generator=g)
    pixels = from_tensor(original)
    out = from_tensor(image)
    _on_eight_bit_levels(out, pixels, [np.s_[30:70, 40:80], np.s_[20:50, 30:50]])
    changed = (out != pixels).any(axis=2)
    assert changed[30:70, 40:60].mean() > 0.9 and not changed[:, 60:].any()
    assert not changed[:30].any() and not changed[70:].any()
    assert np.array_equal(out[30:70, 40:60], from_tensor(eight_bit(image))[30:70, 40:60])


def test_recognizers_the_cloak_is_not_made_on_measure_each_written_face(
        album, detector, load_model, tmp_path):
    """Each written face is measured by one recognizer of every installed family the
    cloak is not made on, against the same person, so its verdict need not say "not
    checked"."""
    from faceguard.album import embed_faces
    from faceguard.manifest import FaceRecord
    from faceguard.models.catalogue import model_info, one_per_family
    from faceguard.verdict import verdict

    root, refs, theirs = album
    photo = root / "trip" / sorted(theirs)[0]
    job = CloakJob(inputs=[photo], outdir=tmp_path, settings=FAST, protect=refs)
    entry = next(e.result for e in cloak_album(job, detector, _ensemble(load_model))
                 if e.stage == "cloaking" and e.result)
    faces = [FaceRecord.from_dict(f) for f in entry["faces"] if f["protected"]]
    face = faces[0]
    unseen = [m for m in one_per_family() if model_info(m)["family"] != "dlib"]
    assert unseen and face.made_on == {"dlib": True} | dict.fromkeys(unseen, False)
    for m in unseen:
        assert face.thresholds[m] == pytest.approx(load_model(m).threshold)
        assert face.distance_before[m] > 0  # the references are other photos of her
        assert face.recognised[m] == (face.distance_after[m] < face.thresholds[m])
    # sface's distance, measured here: the written face (where the clean photo has it)
    # against the mean of her references (embedded from the whole photo, as they are)
    sface = Ensemble([load_model("sface")])
    centre = torch.stack([
        sface.embed(to_tensor(pixels), detector(pixels)[0].landmarks)["sface"][0]
        for pixels in (load_photo(r).pixels for r in refs)]).mean(0)
    clean_face = max(detector(load_photo(photo).pixels), key=lambda f: f.width)
    written = to_tensor(load_photo(tmp_path / entry["output"]).pixels)
    after = embed_faces(sface, written, [clean_face])["sface"][0]
    assert float(sface["sface"].compare(after, centre)) == pytest.approx(
        face.distance_after["sface"], abs=1e-3)
    fooled = sum(not face.recognised[m] for m in unseen)
    assert verdict(faces).not_made_on == (fooled, len(unseen))


def test_a_photo_cloaked_alone_is_measured_against_the_persons_other_album_photos(
        album, detector, load_model, tmp_path):
    """The app's preview cloaks one photo of a person found in the album: the recognizers
    the cloak is not made on measure its face against the person's faces in the album's
    other photos, not against its own clean copy (about 0 apart)."""
    from faceguard.album import detect_photos
    from faceguard.identity import Person

    root, _, theirs = album
    photos = [root / "trip" / n for n in sorted(theirs)]
    dlib = _ensemble(load_model)(["dlib"])
    scans = {e.path: e.result for e in detect_photos(photos, detector, dlib) if e.result}
    largest = {p: max(range(len(s.faces)), key=lambda j: s.faces[j].width)
               for p, s in scans.items()}
    her = Person("her", {"dlib": torch.stack([s.embeddings["dlib"][largest[p]]
                                              for p, s in scans.items()])})

    def before(person: Person) -> float:  # sface's distance of the clean face to her
        job = CloakJob(inputs=[photos[0]], outdir=tmp_path / str(len(person.album_faces)),
                       settings=replace(FAST, steps=1), protect_people=[person])
        entry = next(e.result for e in cloak_album(job, detector, _ensemble(load_model))
                     if e.stage == "cloaking" and e.result)
        return next(f["distance_before"]["sface"] for f in entry["faces"] if f["protected"])

    assert before(her) < 0.05  # nothing else of her known: her own clean face
    seen = replace(her, album_faces=[(p, s.faces[largest[p]]) for p, s in scans.items()])
    assert before(seen) > 0.1  # her other photos, as a platform would hold


def test_no_recognizer_is_left_to_measure_a_cloak_made_on_every_family(load_model):
    from faceguard.models.catalogue import one_per_family
    from faceguard.unseen import load_unseen

    every = Ensemble([load_model(m) for m in one_per_family()])
    assert load_unseen(every, _ensemble(load_model), [], {}, load_photo) is None
    dlib = Ensemble([load_model("dlib")])
    # a loader that gives only what the cloak has (as the tests' stand-ins do): none left
    assert load_unseen(dlib, lambda names: dlib, [], {}, load_photo) is None
    unseen = load_unseen(dlib, _ensemble(load_model), [], {}, load_photo)
    assert "dlib" not in unseen.ensemble.names and "sface" in unseen.ensemble.names


def test_the_apps_people_are_measured_by_the_others_from_their_album_faces(
        album, detector, load_model, tmp_path):
    """A person without reference photos (the app's people are album faces) is measured
    by the recognizers the cloak is not made on against their other faces in the album,
    never against the face itself."""
    from faceguard.album import reference_person
    from faceguard.identity import Person
    from faceguard.manifest import FaceRecord

    root, refs, theirs = album
    ensemble = Ensemble([load_model("dlib")])
    person = next(e.result for e in reference_person("p", refs, detector, ensemble)
                  if isinstance(e.result, Person))
    bare = Person("p", person.embeddings)  # no photos to go back to
    job = CloakJob(inputs=[root / "trip"], outdir=tmp_path, settings=FAST,
                   protect_people=[bare])
    faces = [FaceRecord.from_dict(f) for e in cloak_album(job, detector, _ensemble(load_model))
             if e.stage == "cloaking" and e.result for f in e.result["faces"] if f["protected"]]
    assert len(faces) == len(theirs)
    for face in faces:
        assert face.made_on["sface"] is False
        assert face.distance_before["sface"] > 0.1  # her other photos, not this one
        assert "sface" in face.distance_after


def test_each_folder_given_is_a_person_named_after_it(tmp_path):
    """``--protect people/person-1`` names the person (and their mask file) "person-1";
    with two folders both were "the person to protect (1)" and "(2)", by the order of
    their photos: adding a person renamed the first, and --resume redid all their
    photos. Photos given one by one are "the person to protect"."""
    from faceguard.planning import reference_groups

    people = tmp_path / "people"
    for name in ("person-1", "person-2", "empty"):
        (people / name).mkdir(parents=True)
    for name in ("person-1/a.jpg", "person-2/b.jpg", "person-2/c.jpg"):
        (people / name).write_bytes(b"")
    me = tmp_path / "me.jpg"
    me.write_bytes(b"")
    groups = reference_groups([people / "person-1", people / "person-2", people / "empty",
                                me])
    assert [(name, [p.name for p in photos]) for name, photos in groups] == [
        ("person-1", ["a.jpg"]), ("person-2", ["b.jpg", "c.jpg"]),
        ("the person to protect", ["me.jpg"])]
    assert [name for name, _ in reference_groups([people / "person-1" / ".."])] == ["people"]
    twice = reference_groups([people / "person-1", people / "person-1" / ".." / "person-1"])
    assert [name for name, _ in twice] == ["person-1"]  # one folder, spelled twice
    nested = reference_groups([people, people / "person-2"])  # the innermost's photos
    assert [(name, [p.name for p in photos]) for name, photos in nested] == [
        ("people", ["a.jpg"]), ("person-2", ["b.jpg", "c.jpg"])]
    (tmp_path / "other" / "person-1").mkdir(parents=True)
    (tmp_path / "other" / "person-1" / "d.jpg").write_bytes(b"")
    same_name = reference_groups([people / "person-1", tmp_path / "other" / "person-1"])
    assert [name for name, _ in same_name] == ["people/person-1", "other/person-1"]
    # in any order: the names do not depend on it (--resume would redo the photos)
    assert [name for name, _ in reference_groups([tmp_path / "other" / "person-1",
                                                   people / "person-1"])] == [
        "other/person-1", "people/person-1"]


def test_a_name_that_is_not_utf8_draws_its_own_seed():
    """An old camera's or a Windows zip's name (bytes that are not UTF-8) stopped the batch
    at its first face."""
    from faceguard.one_photo import _face_seed

    name = Path(os.fsdecode(b"b\xe9.jpg"))
    assert _face_seed(0, name, 0) != _face_seed(0, Path("b.jpg"), 0)
    assert _face_seed(0, name, 0) == _face_seed(0, name, 0)


def test_photos_moved_or_replaced_during_the_run(astronaut, detector, load_model, tmp_path,
                                                 monkeypatch):
    """A photo renamed after it was read stopped the batch (its size was read again to be
    recorded); one replaced after the scan was cloaked with the old photo's faces and
    recorded as the new photo, so --resume never cloaked the new one."""
    from faceguard.album import DecodedPhotos

    monkeypatch.setattr(DecodedPhotos, "keep", lambda self, photo: None)  # read again
    root = tmp_path / "in"
    root.mkdir()
    for name, pixels in (("a", astronaut), ("b", astronaut[:, ::-1]), ("c", astronaut[::-1])):
        Image.fromarray(np.ascontiguousarray(pixels)).save(root / f"{name}.png")
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", protect_all=True,
                   settings=CloakSettings(models=("dlib",), steps=2))
    done = []
    for event in cloak_album(job, detector, _ensemble(load_model)):
        if event.stage != "cloaking":
            continue
        if event.under_way and not (root / "a2.png").exists():
            (root / "a.png").rename(root / "a2.png")
            Image.fromarray(astronaut[:300]).save(root / "c.png")
        elif not event.under_way:
            done.append((event.path.name, event.error))
    assert [name for name, _ in done] == ["a.png", "b.png", "c.png"]
    assert done[0][1] is None and done[1][1] is None
    assert "changed since it was scanned: run again to cloak it as it is now" in done[2][1]
    entries = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["photos"]
    assert entries["a.png"]["status"] == "cloaked" and len(entries["a.png"]["input_stat"]) == 2


def test_a_photo_edited_since_the_apps_scan_is_scanned_again(tmp_path, astronaut):
    """The app hands the core its Photos step's detections: a photo edited since failed
    as "changed" on every run, with nothing in the app to scan it again."""
    from faceguard.album import PhotoFaces
    from faceguard.io import load_photo
    from faceguard.pipeline import _unchanged

    path = tmp_path / "a.png"
    Image.fromarray(astronaut).save(path)
    scanned = PhotoFaces(path, 512, 512, [], stat=load_photo(path).stat)
    assert _unchanged(path, scanned)
    Image.fromarray(astronaut[::-1]).save(path)
    os.utime(path, ns=(1, 1))
    assert not _unchanged(path, scanned)
    path.unlink()
    assert not _unchanged(path, scanned)


def test_photos_shrunk_to_a_long_side_are_cloaked_written_and_audited_so(
        album, detector, load_model, tmp_path):
    """``max_side``: a photo larger is shrunk before it is scanned and written so, a
    copied one too, its faces where they are in the smaller photo; the audit compares
    each with its original shrunk alike; the originals are untouched."""
    from faceguard.audit.run import AuditJob, run_audit
    from faceguard.io.photo import shrunk_size

    root, refs, theirs = album
    before = {p: _digest(p) for p in root.rglob("*.jpg")}
    job = CloakJob(inputs=[root], outdir=tmp_path / "out", settings=FAST, protect=refs,
                   max_side=400)
    done = [e for e in cloak_album(job, detector, _ensemble(load_model))
            if e.stage == "cloaking" and not e.under_way]
    assert len(done) == 6 and not any(e.error for e in done)
    for e in done:
        entry, size = e.result, load_photo(e.path).size
        out = load_photo(tmp_path / "out" / entry["output"])
        assert max(size) > 400 and out.size == shrunk_size(*size, 400)  # a photo larger
        assert (entry["width"], entry["height"]) == out.size
        assert entry["status"] == ("cloaked" if e.path.name in theirs else "copied")
        for f in entry["faces"]:
            x0, y0, x1, y1 = f["box"]
            assert 0 <= x0 < x1 <= out.size[0] and 0 <= y0 < y1 <= out.size[1]
        if entry["status"] == "copied":  # shrunk as the cloaked ones, nothing else
            shrunk = load_photo(e.path).shrunk(400).pixels
            assert np.abs(out.pixels - shrunk).mean() < 4 / 255  # and JPEG q95
    assert before == {p: _digest(p) for p in root.rglob("*.jpg")}
    audit = AuditJob(cloaked=tmp_path / "out", outdir=tmp_path / "report", models=["dlib"],
                     defenses=["none"], detectors=(), stand_ins=False, held_out_check=0)
    result = [e for e in run_audit(audit, detector, _ensemble(load_model))][-1].result
    assert result.photos == 6 and not result.errors and result.faces == 3
