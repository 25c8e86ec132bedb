"""The manifest's face record: the facts every reader takes from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from faceguard.manifest import (
    MANIFEST_NAME,
    OLD_MANIFEST_NAME,
    FaceRecord,
    Manifest,
    manifest_file,
    private_place,
)
from faceguard.verdict import fooled


def _face(after: dict[str, float], made_on: bool = True) -> FaceRecord:
    face = FaceRecord([0, 0, 10, 10], [[0, 0]] * 5, True, distance_before=dict.fromkeys(after, 0.2))
    face.measured(after, {"dlib": 0.6, "mobileface": 0.5}, dict.fromkeys(after, made_on),
                  {"ssim": 0.97, "ssimulacra2": 80.0})
    return face


def test_recognised_follows_the_threshold_and_visibility_is_kept_as_given():
    face = _face({"dlib": 0.7, "mobileface": 0.3})
    assert face.recognised == {"dlib": False, "mobileface": True}
    assert face.quality == {"ssim": 0.97, "ssimulacra2": 80.0}


def test_a_distance_is_told_with_its_threshold_and_what_it_means():
    face = _face({"dlib": 0.7, "mobileface": 0.3})
    assert face.distance_words("dlib") == "0.20 -> 0.70 (same person below 0.60: not recognised)"
    assert face.distance_words("mobileface", "→") == (
        "0.20 → 0.30 (same person below 0.50: still recognised)")
    assert face.distances_words() == ("dlib " + face.distance_words("dlib") + "; mobileface "
                                      + face.distance_words("mobileface"))
    unmeasured = FaceRecord([0, 0, 10, 10], [[0, 0]] * 5, True, distance_before={"dlib": 0.2})
    assert unmeasured.distance_words("dlib") == "0.20"
    # a distance that would read as its threshold gets the third decimal
    near = _face({"dlib": 0.603})
    assert near.distance_words("dlib") == "0.200 -> 0.603 (same person below 0.600: not " \
        "recognised)"


def test_fooled_counts_recognizers_that_match_no_face_per_threat():
    faces = [_face({"dlib": 0.7, "mobileface": 0.3}), _face({"dlib": 0.9, "mobileface": 0.8})]
    assert fooled(faces) == (1, 2)
    assert fooled(faces, made_on=True) == (1, 2)
    assert fooled(faces, made_on=False) == (0, 0)
    assert fooled([]) == (0, 0)


def test_a_recognizer_that_never_took_the_face_for_the_person_is_not_counted_as_fooled():
    """FaceNet at its fixed threshold misses most clean faces of some people: a cloak
    that moves such a face further does not fool it."""
    from faceguard.verdict import verdict

    missed = _face({"dlib": 0.7, "mobileface": 0.8})
    missed.distance_before["mobileface"] = 0.6  # beyond its 0.5 before the cloak too
    assert fooled([missed]) == (1, 1)  # dlib, fooled; mobileface counts in neither
    assert verdict([missed]).unmatched == ("mobileface",)
    assert "Not counted: mobileface" in verdict([missed]).words()
    # matched after the cloak though missed before: it counts, as not fooled
    closer = _face({"dlib": 0.7, "mobileface": 0.4})
    closer.distance_before["mobileface"] = 0.6
    assert fooled([closer]) == (1, 2)
    # one face it took for the person is enough to count it
    assert fooled([missed, _face({"dlib": 0.7, "mobileface": 0.8})]) == (2, 2)


def test_records_round_trip_through_the_manifest(tmp_path):
    manifest = Manifest(tmp_path)
    face = _face({"dlib": 0.7})
    manifest.record("a.jpg", {"status": "cloaked", "faces": [face.to_dict()]})
    again = Manifest.load(tmp_path)
    assert again.faces("a.jpg") == [face]
    # an older manifest without the newer keys still reads
    old = {k: v for k, v in face.to_dict().items() if k not in ("thresholds", "recognised")}
    assert FaceRecord.from_dict(old).recognised == {}


def test_the_manifest_holds_one_photo_per_line_and_reads_back_equal(tmp_path):
    manifest = Manifest(tmp_path)
    entries = {f"trip/{n}.jpg": {"status": "cloaked", "faces": [_face({"dlib": 0.7}).to_dict()]}
               for n in ("a", "b \u00e9\"quoted\"")}
    for rel, entry in entries.items():
        manifest.record(rel, entry)
    text = manifest.path.read_text()
    assert json.loads(text) == manifest.data
    assert Manifest.load(tmp_path).photos == manifest.photos == entries
    lines = [line for line in text.splitlines() if '"status": "cloaked"' in line]
    assert len(lines) == 2  # each photo's entry on a line of its own


# ---------------------------------------------------------------- nothing private


def _album(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An input folder with one photo in a sub-folder, and an output folder beside it."""
    photo = tmp_path / "album" / "trip" / "a.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"original")
    out = tmp_path / "album-protected"
    (out / "trip").mkdir(parents=True)
    (out / "trip" / "a.png").write_bytes(b"cloaked")
    return tmp_path / "album", photo, out


def _entry(photo: Path) -> dict:
    return {"input": str(photo), "output": "trip/a.png", "status": "cloaked",
            "settings_digest": "abc", "faces": [_face({"dlib": 0.7}).to_dict()]}


def test_the_manifest_is_hidden_and_records_inputs_relative_to_their_folder(tmp_path):
    root, photo, out = _album(tmp_path)
    manifest = Manifest(out)
    manifest.record("trip/a.jpg", _entry(photo.resolve()))
    assert manifest_file(out) == out / MANIFEST_NAME and MANIFEST_NAME.startswith(".")
    text = (out / MANIFEST_NAME).read_text()
    assert str(tmp_path) not in text  # no absolute path next to the photos
    data = json.loads(text)
    assert data["inputs"] == ["../album"]
    assert (data["photos"]["trip/a.jpg"]["input"], data["photos"]["trip/a.jpg"]["root"]) == (
        "trip/a.jpg", 0)
    again = Manifest.load(out)
    assert again.input_path(again.photos["trip/a.jpg"]).read_bytes() == b"original"
    # nor in a failure's reason, which names the photo or the output folder
    again.record("trip/b.jpg", {"input": str(photo.parent / "b.jpg"), "status": "failed",
                                "error": f"{photo.parent / 'b.jpg'}: file is empty"})
    again.record("trip/c.jpg", {"input": str(photo.parent / "c.jpg"), "status": "failed",
                                "error": f"{out / 'trip' / 'c.jpg'}: permission denied"})
    text = (out / MANIFEST_NAME).read_text()
    assert str(tmp_path) not in text
    assert again.photos["trip/b.jpg"]["error"] == "trip/b.jpg: file is empty"
    assert again.is_done("trip/a.jpg", "abc")  # --resume still recognises the photo


def test_a_folder_reached_through_the_home_folder_is_not_recorded(tmp_path, monkeypatch):
    home = tmp_path / "home" / "alice"
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    assert private_place(home / "Pictures", home / "out") == "../Pictures"
    assert private_place(home / "Pictures", tmp_path / "elsewhere") is None  # would say "alice"
    photo = home / "Pictures" / "a.jpg"
    manifest = Manifest(tmp_path / "elsewhere")
    manifest.record("a.jpg", {"input": str(photo), "output": "a.png", "status": "copied"})
    assert manifest.data["inputs"] == [None] and manifest.photos["a.jpg"]["input"] == "a.jpg"
    assert manifest.input_path(manifest.photos["a.jpg"]) is None
    assert "alice" not in manifest.path.read_text()


def test_an_older_manifest_is_migrated_and_still_resumes(tmp_path):
    root, photo, out = _album(tmp_path)
    refs = tmp_path / "refs" / "me.jpg"
    old = {"settings": {"method": "pgd", "mask": str(tmp_path / "me.mask.pt")},
           "references": [str(refs)], "photos": {"trip/a.jpg": _entry(photo.resolve())}}
    (out / OLD_MANIFEST_NAME).write_text(json.dumps(old))

    manifest = Manifest.load(out)
    entry = manifest.photos["trip/a.jpg"]
    assert (entry["input"], manifest.data["inputs"]) == ("trip/a.jpg", ["../album"])
    assert manifest.input_path(entry).read_bytes() == b"original"
    assert manifest.data["references"] == ["../refs/me.jpg"]
    assert manifest.data["settings"]["mask"] == "../me.mask.pt"
    assert manifest.is_done("trip/a.jpg", "abc")
    manifest.save()
    assert not (out / OLD_MANIFEST_NAME).exists()
    assert str(tmp_path) not in (out / MANIFEST_NAME).read_text()
    again = Manifest.load(out)  # loading the new form changes nothing
    assert again.data["references"] == ["../refs/me.jpg"]
    assert again.data["settings"]["mask"] == "../me.mask.pt"
    assert again.input_path(again.photos["trip/a.jpg"]) == manifest.input_path(entry)


def test_the_audit_finds_the_originals_from_the_private_manifest(tmp_path, monkeypatch):
    from faceguard.audit.run import AuditError, AuditJob, find_pairs

    root, photo, out = _album(tmp_path)
    Manifest(out).record("trip/a.jpg", _entry(photo))
    pairs, _ = find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report"))
    assert pairs[0].original.read_bytes() == b"original"
    assert pairs[0].cloaked == out / "trip" / "a.png"
    # a folder that could not be recorded: the audit asks for it, then finds the photo
    data = json.loads((out / MANIFEST_NAME).read_text())
    data["inputs"] = [None]
    (out / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(AuditError, match="--originals"):
        find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report"))
    with pytest.raises(AuditError, match="no such folder: .*nowhere"):
        find_pairs(AuditJob(cloaked=tmp_path / "nowhere", outdir=tmp_path / "report"))
    pairs, _ = find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report", originals=root))
    assert pairs[0].original == root / "trip" / "a.jpg"
    # originals moved since the run: the audit asks for their folder, not for faces
    moved = tmp_path / "moved"
    root.rename(moved)
    data["inputs"] = ["../album"]
    (out / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(AuditError, match=r"no longer where .* \(--originals DIR; in the app, "):
        find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report"))
    pairs, _ = find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report", originals=moved))
    assert pairs[0].original == moved / "trip" / "a.jpg"


def test_the_audit_takes_the_originals_the_app_knows_when_the_manifest_cannot_say(tmp_path):
    """An album whose folder the manifest keeps private: the app, which protected those
    very photos, hands the audit its list of them, so nobody types the folder again."""
    from faceguard.audit.run import AuditError, AuditJob, find_pairs
    from faceguard.manifest import file_stat

    root, photo, out = _album(tmp_path)
    Manifest(out).record("trip/a.jpg", _entry(photo) | {"input_stat": file_stat(photo)})
    data = json.loads((out / MANIFEST_NAME).read_text())
    data["inputs"] = [None]
    (out / MANIFEST_NAME).write_text(json.dumps(data))
    known = {Path("trip/a.jpg"): photo}
    job = AuditJob(cloaked=out, outdir=tmp_path / "report", original_photos=known)
    pairs, _ = find_pairs(job)
    assert pairs[0].original == photo and pairs[0].cloaked == out / "trip" / "a.png"
    # another album's photo of the same name, or this one changed since: not its original
    with pytest.raises(AuditError, match="--originals"):
        find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report",
                            original_photos={Path("trip/b.jpg"): photo}))
    photo.write_bytes(b"edited since")
    with pytest.raises(AuditError, match="--originals"):
        find_pairs(job)


def test_the_audit_says_when_photos_were_cloaked_with_other_settings(tmp_path):
    """A folder resumed with another preset was reported under the last run's settings
    alone: the audit says how many photos an earlier run cloaked otherwise."""
    from faceguard.audit.pairs import MODELS_UNKNOWN
    from faceguard.audit.run import AuditJob, find_pairs

    root, photo, out = _album(tmp_path)
    manifest = Manifest(out)
    manifest.start({"preset": "balanced"}, "abc", {"models": ["dlib"]})
    manifest.record("trip/a.jpg", _entry(photo))
    (root / "trip" / "b.jpg").write_bytes(b"original")
    (out / "trip" / "b.png").write_bytes(b"cloaked")
    manifest.record("trip/b.jpg", _entry(root / "trip" / "b.jpg")
                    | {"output": "trip/b.png", "settings_digest": "def"})
    _, data = find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report"))
    assert data["notes"] == ["1 of the 2 cloaked photos was cloaked by an earlier run with "
                             "other settings: the method, preset and steps said are the "
                             "last run's."]
    manifest.record("trip/b.jpg", _entry(root / "trip" / "b.jpg") | {"output": "trip/b.png"})
    assert find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report"))[1]["notes"] == []
    (out / MANIFEST_NAME).unlink()  # and without a manifest, the recognizers are not known
    _, data = find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "r", originals=root))
    assert data["notes"] == [MODELS_UNKNOWN]


def test_without_a_manifest_each_cloaked_photo_meets_its_own_original(tmp_path):
    """By name first: a.png is a.png's, a.webp.png (written beside a.png) a.webp's; by the
    name less its suffix after that: b.png is b.jpg's."""
    from faceguard.audit.run import AuditJob, find_pairs

    originals, cloaked = tmp_path / "originals", tmp_path / "cloaked"
    originals.mkdir()
    cloaked.mkdir()
    for name in ("a.jpg", "a.png", "a.webp", "b.jpg"):
        (originals / name).write_bytes(b"original")
    for name in ("a.jpg.png", "a.png", "a.webp.png", "b.png"):
        (cloaked / name).write_bytes(b"cloaked")
    pairs, _ = find_pairs(AuditJob(cloaked=cloaked, outdir=tmp_path / "report",
                                   originals=originals))
    assert sorted((p.cloaked.name, p.original.name) for p in pairs) == [
        ("a.jpg.png", "a.jpg"), ("a.png", "a.png"), ("a.webp.png", "a.webp"),
        ("b.png", "b.jpg")]


def test_photos_copied_without_a_cloak_join_the_audits_gallery_up_to_a_bound(tmp_path,
                                                                            monkeypatch):
    """Their clean faces are the album's other people, a platform's too; a copied photo
    with no face, or no longer there, and a photo that failed are left out."""
    import faceguard.audit.pairs as pairs_module
    from faceguard.audit.run import AuditJob, find_pairs

    root, photo, out = _album(tmp_path)
    manifest = Manifest(out)
    manifest.record("trip/a.jpg", _entry(photo))
    for name in "bcde":
        (root / "trip" / f"{name}.jpg").write_bytes(b"clean")
        if name != "e":  # removed since
            (out / "trip" / f"{name}.jpg").write_bytes(b"clean")
        faces = [] if name == "d" else [_face({"dlib": 0.2}).to_dict() | {"protected": False}]
        manifest.record(f"trip/{name}.jpg", {"input": str(root / "trip" / f"{name}.jpg"),
                                             "output": f"trip/{name}.jpg", "status": "copied",
                                             "faces": faces})
    # a photo the run could not read wrote nothing: it is left out, not an error
    manifest.record("trip/f.jpg", {"input": str(root / "trip" / "f.jpg"), "status": "failed",
                                   "error": "trip/f.jpg: file is empty"})
    pairs, data = find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report"))
    assert [(p.cloaked.name, p.copied, p.faces) for p in pairs][1:] == [
        ("b.jpg", True, []), ("c.jpg", True, [])]
    assert pairs[0].cloaked.name == "a.png" and not pairs[0].copied
    assert data["copied"] == 2
    # an album copied mostly without a cloak: the gallery reads a bounded, spread share
    monkeypatch.setattr(pairs_module, "MOST_COPIED", 1)
    pairs, data = find_pairs(AuditJob(cloaked=out, outdir=tmp_path / "report"))
    assert [p.cloaked.name for p in pairs] == ["a.png", "b.jpg"] and data["copied"] == 2


def test_masks_next_to_the_photos_move_to_the_private_folder(tmp_path):
    from faceguard.manifest import PRIVATE_FOLDER, find_mask

    out = tmp_path / "out"
    out.mkdir()
    (out / "person-1.mask.pt").write_bytes(b"mask")  # where earlier versions saved it
    (out / MANIFEST_NAME).write_text(json.dumps({"photos": {}, "masks": ["person-1.mask.pt"]}))
    manifest = Manifest.load(out)
    manifest.save()  # the next run (e.g. --resume) moves it out of what people upload
    moved = out / PRIVATE_FOLDER / "person-1.mask.pt"
    assert moved.read_bytes() == b"mask" and not (out / "person-1.mask.pt").exists()
    assert Manifest.load(out).data["masks"] == [f"{PRIVATE_FOLDER}/person-1.mask.pt"]
    # --mask with the old place still finds it; a file that is where it is stays as given
    assert find_mask(out / "person-1.mask.pt") == moved
    assert find_mask(moved) == moved
    assert find_mask(out / "nobody.mask.pt") == out / "nobody.mask.pt"


def test_a_copied_photo_says_whether_any_face_was_found(capsys):
    """A photo with no face found at all (a face turned sideways is not found) reads
    differently from one whose faces are nobody's to protect."""
    from faceguard.cli.cloak import _print_photo

    stranger = {"box": [0, 0, 50, 60], "landmarks": [[0, 0]] * 5, "protected": False}
    _print_photo({"output": "blank.png", "faces": []})
    _print_photo({"output": "others.jpg", "faces": [stranger]})
    assert capsys.readouterr().out.splitlines() == ["blank.png: no face found, copied",
                                                    "others.jpg: no protected face, copied"]


def test_resume_may_write_over_what_a_killed_run_wrote_but_did_not_record(tmp_path):
    """A run killed between writing a photo and recording it left an output no later
    --resume would write over ("already exists"), in the app on every run."""
    import time

    m = Manifest(tmp_path)
    (tmp_path / "mine.jpg").write_bytes(b"the user's, in the second the run started")
    m.start({}, "d")
    m.data["photos"]["a.jpg"] = {"output": "a.jpg", "status": "cloaked"}
    m.save()
    (tmp_path / "old.jpg").write_bytes(b"before the run")
    os.utime(tmp_path / "old.jpg", (time.time() - 3600,) * 2)
    later = time.time() + 2  # written seconds after the run started
    for name in ("b.jpg", "sub/c.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"written, then killed")
        os.utime(tmp_path / name, (later, later))
    wrote = Manifest.load(tmp_path).wrote()
    assert wrote == {tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "sub" / "c.jpg"}
    # a run that ended wrote nothing unrecorded: a file put there later is the user's
    m.end()
    assert Manifest.load(tmp_path).wrote() == {tmp_path / "a.jpg"}


def test_a_manifest_that_cannot_be_written_is_named_and_leaves_nothing(tmp_path):
    """A full disk was said of the manifest's temporary file, with the system's words."""
    resource = pytest.importorskip("resource")
    m = Manifest(tmp_path)
    m.data["photos"] = {f"{k}.jpg": {"output": f"{k}.jpg", "status": "copied"}
                        for k in range(200)}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with pytest.raises(OSError) as caught:
            m.save()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert caught.value.filename == str(m.path) and caught.value.strerror
    assert list(tmp_path.iterdir()) == []


def test_the_files_no_run_wrote_are_the_users(tmp_path):
    m = Manifest(tmp_path)
    m.start({}, "d")
    m.data["photos"]["a.jpg"] = {"output": "a.jpg", "status": "cloaked"}
    m.end()
    for name in ("a.jpg", "notes.txt", ".hidden", "sub/b.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in m.others()) == [
        "notes.txt", "sub/b.jpg"]


def test_the_photos_a_run_wrote_are_counted_from_its_start(tmp_path):
    """A photo cloaked beside the last one, and kept as the run stopped, has no event:
    the count of photos written was one short."""
    import time

    m = Manifest(tmp_path)
    started = time.time_ns()
    m.data["photos"] = {"old.jpg": {"output_stat": [1, started - 10**9]},
                        "a.jpg": {"output_stat": [1, started + 1]},
                        "b.jpg": {"output_stat": [1, started + 2]},
                        "failed.jpg": {"status": "failed"}}
    assert m.written_since(started) == 2
