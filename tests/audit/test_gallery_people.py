"""Who is who in an audit: gallery folders found by name, or by their clean faces."""

from __future__ import annotations

import shutil

import pytest
import torch

from faceguard.album import detect_photos
from faceguard.audit.people import add_gallery
from faceguard.audit.protection import Gallery
from faceguard.models.ensemble import Ensemble


@pytest.fixture(scope="module")
def ensemble(load_model) -> Ensemble:
    return Ensemble([load_model(n) for n in ("dlib", "mobileface", "faceres")])


def _known(paths, detector, ensemble: Ensemble, name: str, gallery: Gallery) -> None:
    for event in detect_photos(paths, detector, ensemble):
        if event.result is not None and event.result.faces:
            gallery.add(name, str(event.path),
                        {m: e[0] for m, e in event.result.embeddings.items()})


def test_a_gallery_folder_of_a_known_person_is_taken_as_them(tmp_path, album_by_person,
                                                           detector, ensemble):
    """A sub-folder named otherwise ("Alice") whose clean faces match a person of the
    audited photos joins that person; one of a stranger ("Bob") keeps its own name."""
    people = [p for p, photos in sorted(album_by_person.items()) if len(photos) >= 3]
    alice, other, bob = people[:3]
    gallery = Gallery()
    _known(album_by_person[alice][:1], detector, ensemble, "the person to protect", gallery)
    _known(album_by_person[other][:1], detector, ensemble, "person 2", gallery)
    for folder, photos in (("Alice", album_by_person[alice][1:3]),
                           ("Bob", album_by_person[bob][:2])):
        (tmp_path / folder).mkdir()
        for photo in photos:
            shutil.copy(photo, tmp_path / folder / photo.name)
    notes: list[str] = []
    with torch.no_grad():
        list(add_gallery(tmp_path, detector, ensemble, gallery, notes))
    assert notes == ['The known people\'s "Alice" are taken as photos of the person to protect '
                     "(as this audit calls them): their clean faces match."]
    assert gallery.people.count("the person to protect") == 3
    assert gallery.people.count("Bob") == 2 and "Alice" not in gallery.people


def test_a_known_persons_folder_lends_its_name_to_someone_the_audit_could_not_name(
        tmp_path, album_by_person, detector, ensemble):
    """A person the cloak run did not name was "the person in a.jpg" in every line of the
    audit even when the Known people folder "Alice" held their photos: the user's name
    says more. A person the user named keeps their name."""
    people = [p for p, photos in sorted(album_by_person.items()) if len(photos) >= 3]
    alice, sam = people[:2]
    gallery = Gallery()
    _known(album_by_person[alice][:1], detector, ensemble, "the person in a.jpg", gallery)
    _known(album_by_person[sam][:1], detector, ensemble, "Sam", gallery)
    for folder, photos in (("Alice", album_by_person[alice][1:3]),
                           ("Samuel", album_by_person[sam][1:3])):
        (tmp_path / folder).mkdir()
        for photo in photos:
            shutil.copy(photo, tmp_path / folder / photo.name)
    notes: list[str] = []
    with torch.no_grad():
        list(add_gallery(tmp_path, detector, ensemble, gallery, notes,
                         made_up={"the person in a.jpg"}))
    assert gallery.people[:2] == ["Alice", "Sam"]
    assert gallery.people.count("Alice") == 3 and gallery.people.count("Sam") == 3
    assert notes == ['The known people\'s "Alice" show the person in a.jpg (their clean faces '
                     "match), who is called Alice in this audit.",
                     'The known people\'s "Samuel" are taken as photos of Sam (as this audit '
                     "calls them): their clean faces match."]


def test_a_folder_with_a_protected_persons_name_but_not_their_face_is_someone_else(
        tmp_path, album_by_person, detector, ensemble):
    """A sub-folder named after the protected person was taken as them by its name: a
    stranger's photos there made the cloak look unmatched, and the verdict "Protected".
    Taken as someone else, older photos of them would draw their cloaked faces: left out."""
    people = [p for p, photos in sorted(album_by_person.items()) if len(photos) >= 3]
    alice, stranger = people[:2]
    gallery = Gallery()
    _known(album_by_person[alice][:1], detector, ensemble, "Alice", gallery)
    (tmp_path / "Alice").mkdir()
    for photo in album_by_person[stranger][:2]:
        shutil.copy(photo, tmp_path / "Alice" / photo.name)
    notes: list[str] = []
    with torch.no_grad():
        list(add_gallery(tmp_path, detector, ensemble, gallery, notes))
    assert gallery.people == ["Alice"]  # neither hers, nor someone else's
    assert 'The known people\'s "Alice" does not look like Alice of the audited photos: ' \
           "not used." in notes


def test_a_group_photo_in_a_known_persons_folder_gives_their_face_not_the_largest(
        tmp_path, album_by_person, detector, ensemble):
    """The largest face of a known people's photo was taken as the folder's person: a
    group photo with a stranger in front made "Alice" someone else."""
    from PIL import Image

    people = [p for p, photos in sorted(album_by_person.items()) if len(photos) >= 3]
    alice, stranger = people[:2]
    gallery = Gallery()
    _known(album_by_person[alice][:1], detector, ensemble, "Alice", gallery)
    small = Image.open(album_by_person[alice][1]).convert("RGB")
    big = Image.open(album_by_person[stranger][0]).convert("RGB")
    big = big.resize((2 * big.width * small.height // big.height, 2 * small.height))
    group = Image.new("RGB", (big.width + small.width, big.height), "white")
    group.paste(big, (0, 0))
    group.paste(small, (big.width, 0))
    (tmp_path / "Alice").mkdir()
    group.save(tmp_path / "Alice" / "group.jpg")
    notes: list[str] = []
    with torch.no_grad():
        list(add_gallery(tmp_path, detector, ensemble, gallery, notes))
    assert gallery.people.count("Alice") == 2, notes
    assert not any("does not look like" in n for n in notes)


def test_a_chip_of_a_cloaked_face_is_left_out_with_its_original(tmp_path, album_by_person,
                                                                detector, ensemble):
    """A cloak run's reference that is a chip of an audited face (as ``faceguard people``
    writes them) takes its original's photo as leave-one-out key; another photo of the
    person keeps its own."""
    from faceguard.audit.people import label_people
    from faceguard.audit.protection import AuditFace, audit_crop
    from faceguard.chips import face_chip
    from faceguard.io import load_photo, save_photo, to_tensor

    a, b = next(p for p in album_by_person.values() if len(p) >= 2)[:2]
    photo = load_photo(a)
    face = detector(photo.pixels)[0]
    chip = save_photo(face_chip(photo, face), tmp_path / "face-1.png")
    gallery_faces = []
    for path in (a, chip, b):
        pixels = to_tensor(load_photo(path).pixels)
        found = detector(load_photo(path).pixels)[0]
        gallery_faces.append((str(path), found, *audit_crop(pixels, found, ensemble)))
    crop, marks = audit_crop(to_tensor(photo.pixels), face, ensemble)
    probe = AuditFace("", str(a), crop, crop, marks)
    gallery = label_people(ensemble, gallery_faces, [probe])
    assert gallery.photos == [str(a), str(a), str(b)]
    assert len(set(gallery.people)) == 1 and probe.person == gallery.people[0]
    # the chip all the person has besides the original: measured against it, as the
    # cloak does (the demo's mirrored reference)
    gallery = label_people(ensemble, gallery_faces[:2], [probe])
    assert gallery.photos == [str(a), str(chip)]


def test_known_people_missing_or_inside_the_cloaked_folder_are_said_before_any_work(tmp_path):
    from faceguard.audit.pairs import AuditError
    from faceguard.audit.run import AuditJob, run_audit

    job = AuditJob(cloaked=tmp_path, outdir=tmp_path / "report", gallery=tmp_path / "nobody")
    with pytest.raises(AuditError, match="no such folder of known people: .*nobody"):
        next(run_audit(job, detector=object(), load_ensemble=lambda names: 1 / 0))
    # inside the folder to upload: their clean photos would go with it
    (tmp_path / "known" / "ann").mkdir(parents=True)
    job = AuditJob(cloaked=tmp_path, outdir=tmp_path.parent / "report",
                   gallery=tmp_path / "known")
    with pytest.raises(AuditError, match="must not be inside the cloaked photos' folder"):
        next(run_audit(job, detector=object(), load_ensemble=lambda names: 1 / 0))
    job = AuditJob(cloaked=tmp_path, outdir=tmp_path.parent / "report", gallery=tmp_path)
    with pytest.raises(AuditError, match="must not be inside the cloaked photos' folder"):
        next(run_audit(job, detector=object(), load_ensemble=lambda names: 1 / 0))
    # a person's folder linked into it
    (tmp_path.parent / "gallery").mkdir(exist_ok=True)
    (tmp_path.parent / "gallery" / "ann").symlink_to(tmp_path / "known" / "ann")
    job = AuditJob(cloaked=tmp_path, outdir=tmp_path.parent / "report",
                   gallery=tmp_path.parent / "gallery")
    with pytest.raises(AuditError, match="gallery/ann must not be inside the cloaked"):
        next(run_audit(job, detector=object(), load_ensemble=lambda names: 1 / 0))
    # holding it: the cloaked copies were taken for other people, the faces "protected"
    job = AuditJob(cloaked=tmp_path / "known", outdir=tmp_path.parent / "report",
                   gallery=tmp_path)
    with pytest.raises(AuditError, match="must not hold the cloaked photos' folder"):
        next(run_audit(job, detector=object(), load_ensemble=lambda names: 1 / 0))


def test_the_one_person_protected_is_one_person_with_their_references(album_by_person,
                                                                       detector, load_model):
    """With these four recognizers the clustering split person_img26's photos in two: the
    audit counted a cloaked face matched to their own reference photos as "someone
    else" (faceres: 100% protected top-1, 0% beyond its threshold)."""
    from faceguard.audit.people import label_people
    from faceguard.audit.protection import AuditFace, audit_crop, embed_crops
    from faceguard.identity import likeliest_face
    from faceguard.io import load_photo, to_tensor

    four = Ensemble([load_model(n) for n in ("dlib", "mobileface", "faceres", "facenet")])
    photos = {p.name: p for p in album_by_person["person_img26"]}
    gallery_faces = []

    def probe() -> list[AuditFace]:
        photo, _, crop, marks = gallery_faces[0]
        return [AuditFace("", photo, crop, crop, marks)]

    for name in ("img28.jpg", "img27.jpg", "img42.jpg", "img43.jpg", "img44.jpg",
                 "img45.jpg", "img46.jpg"):
        pixels = to_tensor(load_photo(photos[name]).pixels)
        found = detector(load_photo(photos[name]).pixels)
        crops = [audit_crop(pixels, face, four) for face in found]
        gallery_faces.append((str(photos[name]), found[0], *crops[0]))
        if name == "img46.jpg":  # her face, not the necklace found as a face below it
            theirs = embed_crops(four, [(f.original, f.landmarks) for f in probe()])
            assert len(found) == 2
            assert likeliest_face(four, embed_crops(four, crops), theirs) == 0
            assert likeliest_face(four, embed_crops(four, crops[::-1]), theirs) == 1

    references = [photo for photo, *_ in gallery_faces[1:]]
    clustered = label_people(four, gallery_faces, probe(), ["Ann"])
    assert len(set(clustered.people)) == 2  # as the clustering alone has it
    faces = probe()
    known = label_people(four, gallery_faces, faces, ["Ann"], references, "Ann")
    assert set(known.people) == {"Ann"} and faces[0].person == "Ann"


def test_what_a_gallery_folder_holds_but_the_audit_cannot_use_is_said(tmp_path, album_by_person,
                                                                      detector, ensemble):
    """Photos at the folder's top, unreadable ones, a sub-folder with no face: each was
    passed over in silence. A copy of an audited face's original (a chip ``faceguard
    people`` cut from it) is kept under that original's photo: the face was measured
    against its own clean copy."""
    alice = next(photos for _, photos in sorted(album_by_person.items()) if len(photos) >= 3)
    gallery = Gallery()
    _known(alice[:1], detector, ensemble, "Alice", gallery)
    folder = tmp_path / "gallery"
    for sub in ("copy", "nobody", "broken"):
        (folder / sub).mkdir(parents=True)
    shutil.copy(alice[0], folder / "copy" / "chip.jpg")
    shutil.copy(alice[1], folder / "loose.jpg")
    (folder / "broken" / "x.jpg").write_text("not a photo")
    notes: list[str] = []
    with torch.no_grad():
        events = list(add_gallery(folder, detector, ensemble, gallery, notes))
    assert notes[0].startswith("1 photo directly in the gallery folder")
    assert [e.error for e in events if e.error] == [  # an error: the run's exit code says it
        f"{folder / 'broken' / 'x.jpg'}: not an image (it is a text file) (a known person's "
        "photo: not used)"]
    assert 'The known people\'s "broken" has no photo that could be read: not used.' in notes
    assert 'The known people\'s "nobody" holds no face found: not used.' in notes
    assert [e.note for e in events if e.note] == notes  # said as they come too
    assert gallery.photos[-1] == str(alice[0])  # the copy, keyed as the original


def test_the_people_left_unmeasured_are_those_with_no_other_photo():
    """A face is measured against its person's photos other than its own; the people
    with none are named, so that the hint says whom to add photos of."""
    from faceguard.audit.protection import AuditFace, unmeasured_people

    gallery = Gallery()
    for person, photo in (("Sam", "a.jpg"), ("Sam", "b.jpg"), ("Jo", "c.jpg"),
                          ("the person in d.jpg", "d.jpg"), ("the person in d.jpg", "d.jpg")):
        gallery.add(person, photo, {"dlib": torch.zeros(4)})
    crop = torch.zeros(1, 3, 8, 8)
    faces = [AuditFace(person, photo, crop, crop, None) for person, photo in
             (("Sam", "a.jpg"), ("Jo", "c.jpg"), ("the person in d.jpg", "d.jpg"),
              ("unknown", "e.jpg"))]
    assert unmeasured_people(gallery, faces) == ["Jo", "the person in d.jpg"]


def test_the_audit_says_why_it_may_count_otherwise_only_after_reference_photos():
    """The note that the cloak's lines used the reference photos alone was said after the
    app's people too, whose lines used the album's faces, as the audit does."""
    from faceguard.audit.people import against_other_photos
    from faceguard.audit.protection import AuditFace

    crop = torch.zeros(1, 3, 8, 8)
    faces = [AuditFace("Ann", f"{name}.jpg", crop, crop, None) for name in "ab"]
    [note] = against_other_photos(faces, reference_photos=2)
    assert note.startswith("Each face is measured against all its person's other clean")
    assert against_other_photos(faces, reference_photos=0) == []  # the app's people
    assert against_other_photos(faces[:1], reference_photos=2) == []  # nothing else to use
