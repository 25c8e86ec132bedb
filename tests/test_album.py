"""Album helpers: photos found and decoded once per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceguard.album import DecodedPhotos, photo_jobs, relative_paths
from faceguard.io import Photo, find_photos, save_photo


def _photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    return [save_photo(Photo.from_array(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)),
                       folder / f"p{k}.png") for k in range(n)]


def test_decoded_photos_are_kept_within_the_budget(tmp_path, monkeypatch):
    paths = _photos(tmp_path, 3)
    size = 32 * 32 * 3 * 4  # float32 pixels
    decoded = DecodedPhotos(budget=2 * size)
    from faceguard import album

    loads = []
    real = album.load_photo
    monkeypatch.setattr(album, "load_photo", lambda p, **kw: loads.append(p) or real(p, **kw))
    for p in paths:
        decoded.keep(real(p))
    assert decoded.load(paths[0]) is decoded.load(paths[0])  # kept: no decoding
    assert loads == []
    decoded.take(paths[0])
    decoded.take(paths[2])  # over the budget when scanned: decoded again
    assert loads == [paths[2]]
    decoded.forget(paths[1])
    decoded.take(paths[1])
    assert loads == [paths[2], paths[1]]


def test_relative_paths_of_found_photos_match_photo_jobs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _photos(a / "sub", 2)
    _photos(b, 1)
    found = [(a, find_photos([a])), (b, find_photos([b]))]
    assert relative_paths(found) == photo_jobs([a, b])
    assert [rel.as_posix() for _, rel in photo_jobs([a, b])] == [
        "a/sub/p0.png", "a/sub/p1.png", "b/p0.png"]


def test_photos_that_would_share_an_output_path_each_get_their_own(tmp_path):
    """Two input folders of one name, two files of one name, a photo named twice."""
    for top in ("dA", "dC"):
        _photos(tmp_path / top / "sub", 1)
    x, y = tmp_path / "dA" / "sub" / "p0.png", tmp_path / "dC" / "sub" / "p0.png"
    rels = [rel.as_posix() for _, rel in
            photo_jobs([tmp_path / "dA" / "sub", tmp_path / "dC" / "sub"])]
    assert rels == ["dA/sub/p0.png", "dC/sub/p0.png"]
    assert [rel.as_posix() for _, rel in photo_jobs([x, y])] == rels
    assert [rel.as_posix() for _, rel in photo_jobs([x, x])] == ["p0.png"]
    # no clash: the paths as before
    assert [rel.as_posix() for _, rel in photo_jobs([x, tmp_path / "dC"])] == [
        "p0.png", "dC/sub/p0.png"]


def test_scanning_goes_on_past_a_bad_photo_in_order(tmp_path):
    """Photos are decoded side by side (faceguard.workers); events still come in order."""
    from faceguard.album import detect_photos

    paths = _photos(tmp_path, 3)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a photo")
    paths.insert(1, bad)
    events = list(detect_photos(paths, lambda pixels: []))
    assert [e.path for e in events] == paths and [e.done for e in events] == [1, 2, 3, 4]
    assert "broken.png" in events[1].error
    assert all(e.result is not None and not e.error for e in events[:1] + events[2:])


def test_a_photo_only_to_be_copied_is_not_decoded_again(album_dir, tmp_path):
    decoded = DecodedPhotos(budget=0)  # nothing kept: every photo is read again
    path = find_photos([album_dir / "person_img1"])[0]
    assert not decoded.take(path, decode=False).has_pixels
    assert decoded.take(path).has_pixels


def test_a_reference_photo_with_two_faces_gives_the_one_like_the_others(
        album_by_person, detector, load_model, tmp_path):
    from PIL import Image

    from faceguard.album import reference_person
    from faceguard.identity import Person
    from faceguard.models.ensemble import Ensemble

    (a, *_), (b, b_alone, *_) = list(album_by_person.values())[:2]
    big = Image.open(a).convert("RGB")
    big = big.resize((round(big.width * 400 / big.height), 400))
    small = Image.open(b).convert("RGB")
    small = small.resize((round(small.width * 250 / small.height), 250))
    both = Image.new("RGB", (big.width + small.width, 400))
    both.paste(big, (0, 0))
    both.paste(small, (big.width, 75))  # b's face is the smaller of the two
    both.save(tmp_path / "both.png")
    ensemble = Ensemble([load_model("dlib")])

    def read(paths):
        events = list(reference_person("b", paths, detector, ensemble))
        assert isinstance(events[-1].result, Person)
        return events[-1].result, [e.note for e in events if e.note]

    person, notes = read([tmp_path / "both.png", b_alone])
    assert person.faces[0][1][:, 0].min() > big.width  # b's face, right of the join
    assert notes == [f"{tmp_path / 'both.png'}: 2 faces; took the one most like the "
                     "reference photos with one face"]
    person, notes = read([tmp_path / "both.png"])  # nothing to compare with: the largest
    assert person.faces[0][1][:, 0].max() < big.width
    assert len(notes) == 1 and "the largest" in notes[0]


def test_a_face_is_measured_against_the_persons_other_photos_not_its_own_chip(
        album_by_person, detector, load_model, tmp_path):
    """As `faceguard people` writes them, a chip of the very face being cloaked is left
    out of the person's centroid; other photos of them are kept."""
    from faceguard.album import detect_photos, reference_person
    from faceguard.chips import face_chip
    from faceguard.identity import Person, centroids_apart_from
    from faceguard.io import load_photo
    from faceguard.models.ensemble import Ensemble

    ensemble = Ensemble([load_model("dlib"), load_model("mobileface")])
    a, b, c, d, *_ = next(p for p in album_by_person.values() if len(p) >= 4)
    scanned = {e.path: e.result for e in detect_photos([a, b, c, d], detector, ensemble)}
    chip = save_photo(face_chip(load_photo(a), scanned[a].faces[0]), tmp_path / "face-1.png")
    person = [e.result for e in reference_person("p", [chip, b, c], detector, ensemble)
              if isinstance(e.result, Person)][0]

    def own(path):
        return {m: e[0] for m, e in scanned[path].embeddings.items()}

    apart = centroids_apart_from(ensemble, person, own(a))  # the chip is a's own face
    for m, e in person.embeddings.items():
        torch.testing.assert_close(apart[m], e[1:].mean(0))
    apart = centroids_apart_from(ensemble, person, own(d))  # a photo not among them
    for m, e in person.embeddings.items():
        torch.testing.assert_close(apart[m], e.mean(0))
    alone = Person("p", {m: e[:1] for m, e in person.embeddings.items()})
    assert all(torch.equal(centroids_apart_from(ensemble, alone, own(a))[m], e[0])
               for m, e in alone.embeddings.items())  # nothing else to measure against


def test_each_chip_of_a_group_photo_gives_its_own_face_as_a_reference(
        album_dir, detector, load_model, tmp_path):
    """The group selfie's seven faces, three of them cut by the photo's edge: each chip,
    as the only reference photo of a person (``--protect people/person-N``), gives that
    face, not a neighbour in the chip (the chip shows the photo's mirror, faded, beyond
    its edge, where the detector finds a cut face again)."""
    from faceguard.album import detect_photos, reference_person
    from faceguard.chips import face_chip
    from faceguard.identity import Person, mean_distance
    from faceguard.io import load_photo
    from faceguard.models.ensemble import Ensemble

    ensemble = Ensemble([load_model("dlib"), load_model("mobileface")])
    path = album_dir / "_unlabelled_extras" / "selfie-many-people.jpg"
    scanned = next(e.result for e in detect_photos([path], detector, ensemble) if e.result)
    assert len(scanned.faces) == 7
    photo = load_photo(path)
    for k, face in enumerate(scanned.faces):
        chip = save_photo(face_chip(photo, face), tmp_path / f"face-{k}.png")
        person = [e.result for e in reference_person("p", [chip], detector, ensemble)
                  if isinstance(e.result, Person)][0]
        assert int(mean_distance(ensemble, scanned.embeddings, person).argmin()) == k, k


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_chip_of_a_face_on_its_side_shows_it_upright(album_dir, detector, turns):
    """A photo whose rotation tag was lost gives the face upright in its chip (what
    `faceguard people` writes and the app shows), as the upright photo gives it."""
    from faceguard.chips import face_chip
    from faceguard.io import load_photo

    photo = load_photo(album_dir / "person_img1" / "img10.jpg")
    turned = Photo(np.ascontiguousarray(np.rot90(photo.pixels, turns)))
    want = face_chip(photo, detector(photo.pixels)[0]).pixels
    got = face_chip(turned, detector(turned.pixels)[0]).pixels
    assert got.shape == want.shape and np.abs(got - want).mean() < 0.03
    assert abs(detector(got)[0].tilt) < 20


def test_chips_of_a_people_run_stopped_halfway_are_forgotten_by_the_next(tmp_path, monkeypatch):
    """people.json was written after the chips: a run stopped halfway left chips no list
    named, and the next run's person-1 held them beside its own, another person's faces."""
    from faceguard import chips
    from faceguard.album import AlbumPerson
    from faceguard.face import Face
    from faceguard.identity import Person
    from faceguard.io import Photo

    face = Face((0.0, 0.0, 8.0, 8.0), np.zeros((5, 2)), 0.99)
    monkeypatch.setattr(chips, "load_photo", lambda path, limit: Photo(np.zeros((8, 8, 3))))

    def person(name: str, n: int) -> AlbumPerson:
        return AlbumPerson(name, Person(name, {}), [(Path(f"{name}-{k}.jpg"), face)
                                                   for k in range(n)])

    written = []
    real_save = chips.save_photo

    def stopped(chip, path, overwrite):  # Ctrl-C after three chips
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(path)
        return real_save(chip, path, overwrite=overwrite)

    monkeypatch.setattr(chips, "save_photo", stopped)
    with pytest.raises(KeyboardInterrupt):
        chips.write_people([person("person 1", 2), person("person 2", 2)], tmp_path)
    monkeypatch.setattr(chips, "save_photo", real_save)
    chips.write_people([person("person 1", 1)], tmp_path)
    assert sorted(p.name for p in (tmp_path / "person-1").iterdir()) == ["face-1.png"]
    assert not (tmp_path / "person-2").exists()
