"""The command line as a user runs it: real processes, real photos, exit codes, messages."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceguard import __version__
from faceguard.manifest import FaceRecord
from faceguard.verdict import tally


def faceguard(*args: str, cwd: Path | None = None, timeout: float = 900
              ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faceguard", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_version_is_fast_and_light():
    started = time.perf_counter()
    done = faceguard("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"faceguard {__version__}"
    code = "import sys, faceguard.cli as c; c.main(['--version']); print('torch' in sys.modules)"
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert light.stdout.strip().endswith("False")  # --version never imports torch
    assert time.perf_counter() - started < 60  # generous: a sanity bound, not a benchmark


def test_help_never_imports_torch():
    # every subcommand's parser is built for --help: 3.7 s when the audit's pulled torch in
    # and listing the models reads the catalogue only: 1.7 s when faceguard.models was torch
    code = ("import sys, faceguard.cli as c\n"
            "for argv in (['--help'], ['audit', '--help'], ['cloak', '--help'],\n"
            "             ['models', 'list']):\n"
            "    try:\n        c.main(argv)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert light.stdout.strip().endswith("False") and "--defenses" in light.stdout
    assert "dlib ResNet-34" in light.stdout  # the list was printed


def test_usage_errors_exit_2():
    assert faceguard().returncode == 2
    done = faceguard("detect", "/no/such/photo.jpg")
    assert done.returncode == 2 and "no such file or folder: /no/such/photo.jpg" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert faceguard("cloak", "x.jpg").returncode == 2  # -o missing


def test_usage_errors_are_said_before_any_work_with_exit_2(tmp_path):
    """An unknown recognizer, or an output folder inside the album, exited 1 (the code of
    photos that failed), some after work was done or a folder made."""
    album, empty = tmp_path / "album", tmp_path / "empty"
    album.mkdir()
    empty.mkdir()  # --protect of a folder without photos, as one missing (it exited 1)
    Image.new("RGB", (64, 64)).save(album / "a.jpg")
    for args, said in ((("cloak", album, "-o", tmp_path / "o", "--protect-all", "--models",
                         "dlib,bogus"), "--models: unknown recognizer bogus; choose among"),
                       (("demo", "-o", tmp_path / "demo", "--models", "bogus"),
                        "--models: unknown recognizer bogus"),
                       (("models", "install", "bogus"), "unknown model bogus"),
                       (("cloak", album, "-o", album / "out", "--protect-all"),
                        "must not be inside the input folder"),
                       (("cloak", album, "-o", tmp_path / "o", "--protect", empty),
                        f"no reference photos found in {empty}"),
                       (("cloak", album, "-o", tmp_path / "o", "--protect-all", "--max-side",
                         "50"), "--max-side must be at least 100")):
        done = faceguard(*args)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["album", "empty"]  # nothing made


def test_models_all_is_one_recognizer_of_each_installed_family():
    """``--models all`` names each installed family once (a fine-tuned variant such as
    faceres-deep would double its family's weight and time), the default's families
    among them."""
    from faceguard.cli.common import model_list
    from faceguard.models.catalogue import is_installed, model_info
    from faceguard.settings import DEFAULT_MODELS

    names = model_list("all")
    families = [model_info(n)["family"] for n in names]
    assert len(set(families)) == len(families)
    assert all(is_installed(n) for n in names) and set(DEFAULT_MODELS) <= set(names)
    assert model_list(" all ") == names


def test_an_output_folder_that_holds_originals_is_refused(tmp_path):
    """``-o`` above the album, or around the reference photos, was taken: the folder to
    upload then held the originals, metadata and all."""
    album, refs = tmp_path / "nest" / "album", tmp_path / "refs" / "me"
    for folder in (album, refs):
        folder.mkdir(parents=True)
        Image.new("RGB", (64, 64)).save(folder / "a.jpg")
    for args, said in (((album, "-o", tmp_path / "nest", "--protect-all"),
                        f"must not hold {album}: uploaded, it would upload the originals"),
                       ((album, "-o", refs, "--protect", refs / "a.jpg"),
                        "must not be the folder of the photo"),
                       ((album, "-o", tmp_path / "refs", "--protect", refs),
                        f"must not hold {refs}")):
        done = faceguard("cloak", *args)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
    assert sorted(p.name for p in (tmp_path / "nest").iterdir()) == ["album"]  # nothing made


# /proc takes no new files, even from root (a read-only folder would not stop root)
@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_an_output_folder_that_cannot_be_written_into_is_a_usage_error_before_any_work(
        tmp_path):
    """``cloak`` said it with exit 1, ``audit`` only after all its work."""
    album = tmp_path / "album"
    album.mkdir()
    Image.new("RGB", (64, 64)).save(album / "a.jpg")
    for args in (("cloak", album, "-o", "/proc", "--protect-all"),
                 ("audit", "--cloaked", album, "--originals", album, "-o", "/proc")):
        done = faceguard(*args)
        assert done.returncode == 2 and "cannot be written into" in done.stderr, done.stderr


def test_face_chips_are_never_written_into_a_folder_to_upload(tmp_path):
    """``faceguard people`` wrote clean face chips inside a cloak run's output folder."""
    album, cloaked = tmp_path / "album", tmp_path / "cloaked"
    album.mkdir()
    Image.new("RGB", (64, 64)).save(album / "a.jpg")
    cloaked.mkdir()
    (cloaked / ".faceguard-manifest.json").write_text("{}")
    done = faceguard("people", album, "-o", cloaked / "people", "--models", "dlib")
    assert done.returncode == 2, done.stderr
    assert "must not be inside" in done.stderr and "the face chips show the faces uncloaked" \
        in done.stderr
    assert not (cloaked / "people").exists()
    (cloaked / ".faceguard-manifest.json").rename(cloaked / "faceguard-manifest.json")
    older = faceguard("people", album, "-o", cloaked / "people", "--models", "dlib")
    assert older.returncode == 2 and "must not be inside" in older.stderr  # an older run's


# /proc takes no new folders, even from root (a read-only folder would not stop root)
@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_an_output_folder_the_system_refuses_is_said_in_one_line(tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    Image.new("RGB", (64, 64)).save(album / "a.jpg")
    done = faceguard("people", album, "-o", Path("/proc/faceguard-test/out"), "--models", "dlib")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "faceguard people: error: the output folder /proc/faceguard-test/out cannot be made "
        "(No such file or directory)"]


def test_a_name_that_is_not_utf8_is_printed_by_its_bytes(tmp_path):
    """Such a byte was printed as the lone surrogate Python reads it as: ``caf\\udce9``."""
    (tmp_path / os.fsdecode(b"caf\xe9.jpg")).write_text("not a photo")
    done = faceguard("detect", tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"{tmp_path}/caf\\xe9.jpg: not an image" in done.stderr, done.stderr


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory, astronaut, album_dir, album_by_person) -> Path:
    """Good photos and every kind of bad file a user's folder can hold."""
    folder = tmp_path_factory.mktemp("mixed")
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    shutil.copy(album_by_person["person_img26"][0], folder / "press.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("shopping list: milk, eggs\n")
    data = (folder / "press.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    Image.new("RGB", (64, 64), "white").save(folder / "blank.png")  # a photo with no face
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    # a PNG whose header declares 100000 x 100000 pixels: a decompression bomb
    png = (folder / "dot.png").read_bytes()
    bomb = bytearray(png)
    bomb[16:24] = (100000).to_bytes(4, "big") * 2
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")  # IHDR's checksum
    (folder / "bomb.png").write_bytes(bytes(bomb))
    return folder


def test_detect_mixed_folder(mixed_folder):
    before = {p.name: _digest(p) for p in mixed_folder.iterdir()}
    done = faceguard("detect", mixed_folder, "--json")
    assert done.returncode == 1  # some inputs failed
    out = json.loads(done.stdout)
    found = {Path(p["path"]).name: len(p["faces"]) for p in out["photos"]}
    assert found["astronaut.png"] == 1 and found["press.jpg"] == 1 and found["blank.png"] == 0
    assert found["dot.png"] == 0  # too small to hold a face: a photo without one
    errors = "\n".join(out["errors"])
    for name, reason in [("empty.jpg", "empty"), ("notes.jpg", "text"),
                         ("truncated.jpg", "truncated"), ("bomb.png", "megapixel")]:
        line = next(e for e in out["errors"] if name in e)
        assert reason in line.lower(), line
    assert "anim.gif" not in errors  # not a photo FaceGuard reads: skipped, and said so
    assert out["skipped"] == [{"path": str(mixed_folder / "anim.gif"), "reason": "animated GIF"}]
    assert "skipped 1 file: animated GIF (anim.gif)" in done.stderr.splitlines()
    assert before == {p.name: _digest(p) for p in mixed_folder.iterdir()}


def test_detect_table_names_each_failure_on_its_own_line(mixed_folder):
    done = faceguard("detect", mixed_folder / "astronaut.png", mixed_folder / "empty.jpg",
                     "--quiet")
    assert done.returncode == 1
    assert "astronaut.png" in done.stdout and "1" in done.stdout
    assert any(line.startswith("error:") and "empty.jpg: file is empty" in line
               for line in done.stderr.splitlines())


def test_a_face_on_its_side_is_found_unless_upright_only(album_dir, tmp_path):
    photo = Image.open(album_dir / "person_img1" / "img10.jpg").transpose(Image.ROTATE_90)
    photo.save(tmp_path / "side.jpg", quality=95)  # turned, and no rotation tag
    turned = json.loads(faceguard("detect", tmp_path / "side.jpg", "--json").stdout)
    upright_only = faceguard("detect", tmp_path / "side.jpg", "--json", "--upright-only")
    [face] = turned["photos"][0]["faces"]
    faces = json.loads(upright_only.stdout)["photos"][0]["faces"]
    # MTCNN alone misses the face on its side, or misplaces its landmarks
    width = face["box"][2] - face["box"][0]
    moved = max(abs(a - b) for p, q in zip(faces[0]["landmarks"], face["landmarks"], strict=True)
                for a, b in zip(p, q, strict=True)) if faces else width
    assert moved > 0.1 * width
    assert "@ 1.00, on its side)" in faceguard("detect", tmp_path / "side.jpg").stdout


def test_unsupported_format_named_explicitly(mixed_folder):
    done = faceguard("detect", mixed_folder / "anim.gif", "--quiet")
    assert done.returncode == 1 and "anim.gif" in done.stderr and "GIF" in done.stderr


def test_models_list_shows_the_three_families():
    done = faceguard("models", "list")
    assert done.returncode == 0
    for name in ("dlib", "faceres", "mobileface"):
        line = next(x for x in done.stdout.splitlines() if x.startswith(name + " "))
        assert " yes " in line, line
    assert "mobilefacenet" not in done.stdout


def test_cloak_and_audit_end_to_end(album_dir, tmp_path, album_by_person):
    photos = album_by_person
    album = tmp_path / "album"
    album.mkdir()
    for p in photos["person_img26"][2:4] + photos["person_img1"][:1]:
        shutil.copy(p, album / p.name)
    (album / "notes.txt").write_text("not a photo")  # passed over, and counted
    refs = photos["person_img26"][:2]
    before = {p.name: _digest(p) for p in album.iterdir()}
    out = tmp_path / "cloaked"
    done = faceguard("cloak", album, "-o", out, "--protect", *refs, "--models", "dlib",
                     "--preset", "low", "--steps", "4")
    assert done.returncode == 0, done.stderr
    # each cloaked photo: its verdict, then a line per face saying what its distance means
    faces = [line for line in done.stdout.splitlines() if line.startswith("  face 1: ")]
    assert len(faces) == 2 and all("(same person below 0.60: " in line for line in faces)
    assert ("2 photos cloaked (2 faces) with Recommended (keeps the look) at --preset low, "
            "1 without a protected face copied, 1 skipped, 0 failed") in done.stderr
    text = (out / ".faceguard-manifest.json").read_text()
    assert str(tmp_path) not in text  # nothing private next to the photos
    manifest = json.loads(text)
    assert {e["status"] for e in manifest["photos"].values()} == {"cloaked", "copied"}
    # the batch's outcome at once, face by face, as the manifest records it
    records = [FaceRecord.from_dict(f) for e in manifest["photos"].values() for f in e["faces"]]
    counted = tally(records)
    assert counted.words() in done.stderr
    # its own --steps are no preset: no stronger one is offered
    assert "A stronger cloak" not in done.stderr
    assert "Of 2 faces cloaked, " in done.stderr and "(not made on)" in done.stderr
    assert before == {p.name: _digest(p) for p in album.iterdir()}
    # GPS and captions are gone from the outputs
    for p in out.glob("*.jpg"):
        assert not Image.open(p).getexif(), p.name
    # a second run without --resume refuses to overwrite, per photo
    again = faceguard("cloak", album, "-o", out, "--protect", *refs, "--models", "dlib",
                      "--preset", "low", "--steps", "4", "--quiet")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "--resume skips the photos an earlier run wrote" in again.stderr  # what to do
    resumed = faceguard("cloak", album, "-o", out, "--protect", *refs, "--models", "dlib",
                        "--preset", "low", "--steps", "4", "--resume", "--quiet")
    assert resumed.returncode == 0 and "3 done before (--resume)" in resumed.stderr
    report = tmp_path / "report"
    audit = faceguard("audit", "--cloaked", out, "-o", report, "--models", "dlib",
                      "--defenses", "none,jpeg75", "--detectors", "wlmp-linear", "--quiet")
    assert audit.returncode == 0, audit.stderr
    data = json.loads((report / "report.json").read_text())
    assert {r["defense"] for r in data["protection"]} == {"none", "jpeg75"}
    # the photo copied without a cloak widens the gallery: its person is the second known,
    # and each recognizer picks the cloaked faces out among both (top-1); among so few,
    # the verdict judges by the match threshold alone
    assert (data["photos"], data["faces"], data["people"]) == (3, 2, 2)
    assert all(r["protected_top1"] is not None for r in data["protection"])
    assert data["verdict"]["words"].endswith(
        "faces it recognised without the cloak are beyond its match threshold.")
    assert any(n.startswith("Only 2 people are known, under 10, so top-1 identification is "
                            "not counted") for n in data["notes"])
    # two photos of the person: each face is measured against the other's original too,
    # which the cloak's own lines did not (their counts differed, unexplained)
    assert any(n.startswith("Each face is measured against all its person's other clean "
                            "photos here") for n in data["notes"])
    # the verdict comes first, in plain words; the details only with --verbose
    assert audit.stdout.splitlines()[0] == data["verdict"]["words"]
    assert "recognizer it was made on" in data["verdict"]["words"]
    assert not any(line.startswith("Against ") for line in audit.stdout.splitlines())
    # two cloaked faces are too few to train a detector on: it was trained on stand-ins
    [detection] = data["detection"]
    assert detection["split"] == "stand-ins" and not data["detection_problem"]
    assert "stand-in faces" in detection["sentence"]
    assert detection["sentence"] + "." in audit.stdout.splitlines()  # said, not only reported
    # on two faces the report's table gives no ROC AUC, as its sentence says, nor its JSON
    html = (report / "report.html").read_text()
    assert "<td>too few faces</td>" in html
    # the table says where it was tested, in words (it read "Tested on other: stand-ins")
    assert "<th>Tested on</th>" in html and "<td>yours (trained on stand-ins)</td>" in html
    assert detection["roc_auc"] is None and detection["roc"] is None
    # the method as the run made it: a weakened cloak is not the recommended one
    assert "preset low, 4 steps. " in (report / "report.html").read_text()
    assert "error:" not in audit.stderr
    # without stand-ins the check cannot run: one plain sentence and exit code 3
    bare = faceguard("audit", "--cloaked", out, "-o", tmp_path / "bare", "--models", "dlib",
                     "--defenses", "none", "--detectors", "wlmp-linear,wlmp-rbf",
                     "--no-stand-ins", "--quiet")
    assert bare.returncode == 3, bare.stderr
    # "none" is the defense "as published": measured, not taken for no defense at all
    bare_data = json.loads((tmp_path / "bare" / "report.json").read_text())
    assert {r["defense"] for r in bare_data["protection"]} == {"none"}
    assert ("The cloak-detection check could not run: it needs at least 8 cloaked faces, "
            "this set has 2, and stand-in faces were turned off.") in bare.stdout.splitlines()
    assert "error:" not in bare.stderr
    assert "or the cloak-detection check could not run" in \
        " ".join(faceguard("audit", "--help").stdout.split())
    assert "<img" in (report / "report.html").read_text()
    # it shows the faces uncloaked: its owner's alone, and it says so
    for name in ("report.html", "report.json"):
        assert (report / name).stat().st_mode & 0o777 == 0o600, name
    assert "Keep this report to yourself" in (report / "report.html").read_text()
    # each example face names its photo (with as much of its path as tells it apart)
    assert re.search(r", img\d+\.jpg, purified by ", (report / "report.html").read_text())
    # with no clean-up tried, no "purified by None" (nor a purified face)
    bare_html = (tmp_path / "bare" / "report.html").read_text()
    assert "purified by" not in bare_html and "original, cloaked, difference x10" in bare_html
    # audited only on the recognizer it was made on: the report says what was not tested
    assert any("none it was not made on was tested" in line for line in data["summary"])
    assert any("Match thresholds" in n for n in data["notes"])


def test_an_audit_names_what_it_could_not_use(tmp_path, album_by_person):
    """Cloaked photos without an original, a known person's photo that cannot be read
    and photos that show no cloak were passed over without a word, with exit code 0."""
    photos = album_by_person["person_img26"][:4]
    orig, cloaked, bob = tmp_path / "orig", tmp_path / "cloaked", tmp_path / "known" / "Bob"
    for folder in (orig, cloaked, bob):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, photo in enumerate(photos[:3]):
        shutil.copy(photo, orig / photo.name)
        image = np.asarray(Image.open(photo).convert("RGB")).astype(int)
        if i < 2:  # a crude cloak: noise on the whole photo, its faces too
            image = np.clip(image + rng.integers(-12, 13, image.shape), 0, 255)
        Image.fromarray(image.astype(np.uint8)).save(cloaked / f"{photo.stem}.png")
    shutil.copy(photos[3], cloaked / "stray.jpg")  # no original of its name
    (bob / "broken.jpg").write_text("not a photo")
    done = faceguard("audit", "--cloaked", cloaked, "--originals", orig, "--gallery",
                     bob.parent, "-o", tmp_path / "report", "--models", "dlib", "--defenses",
                     "none", "--detectors", "none")
    assert done.returncode == 1, done.stderr
    assert f"error: {cloaked / 'stray.jpg'}: no original of its name in {orig}" in done.stderr
    assert re.search(r"error: .*broken\.jpg: .*\(a known person's photo: not used\)",
                     done.stderr), done.stderr
    assert f"1 of the 3 photos shows no cloak (no face differs from its original), such as " \
           f"{photos[2].stem}.png" in done.stderr
    assert 'The known people\'s "Bob" has no photo that could be read: not used.' in done.stderr
    gallery_file = faceguard("audit", "--cloaked", cloaked, "--originals", orig, "--gallery",
                             bob / "broken.jpg", "-o", tmp_path / "r2")
    assert gallery_file.returncode == 2 and "is a file: give a folder" in gallery_file.stderr


def test_an_audit_that_measured_no_face_exits_3(tmp_path, album_by_person):
    """With no other photo of the person, no face can be measured: the audit said so and
    exited 0, which a script reads as a pass."""
    photo = album_by_person["person_img26"][0]
    orig, cloaked = tmp_path / "orig", tmp_path / "cloaked"
    orig.mkdir()
    cloaked.mkdir()
    image = np.asarray(Image.open(photo).convert("RGB"))
    Image.fromarray(image).save(orig / f"{photo.stem}.png")
    noise = np.random.default_rng(0).integers(-12, 13, image.shape)  # a crude cloak
    Image.fromarray(np.clip(image + noise, 0, 255).astype(np.uint8)).save(
        cloaked / f"{photo.stem}.png")
    done = faceguard("audit", "--cloaked", cloaked, "--originals", orig, "-o",
                     tmp_path / "report", "--models", "dlib", "--defenses", "none",
                     "--detectors", "none")
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("Not measured. No face could be measured")


def test_an_audit_knows_whether_it_had_other_photos_of_the_person(tmp_path, album_by_person):
    """Measured only against the photos the cloak was made to move away from, the audit
    read 100% where the person's other photos, added as known people, read 0%: it says
    which it had. A Known people folder that holds only the cloak's reference photos has
    none; a linked sub-folder of other photos counts."""
    photos = album_by_person["person_img26"]
    album, ann, other = tmp_path / "album", tmp_path / "known" / "Ann", tmp_path / "other"
    for folder, some in ((album, photos[:2]), (ann, photos[2:4]), (other, photos[4:6])):
        folder.mkdir(parents=True)
        for photo in some:
            shutil.copy(photo, folder / photo.name)
    done = faceguard("cloak", album, "-o", tmp_path / "out", "--protect", ann, "--preset",
                     "low", "--steps", "3", "--models", "dlib", "--quiet")
    assert done.returncode == 0, done.stderr

    def other_photos(*gallery) -> bool:
        report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}"
        faceguard("audit", "--cloaked", tmp_path / "out", "-o", report, "--models", "dlib",
                  "--defenses", "none", "--detectors", "none", "--quiet", *gallery)
        return json.loads((report / "report.json").read_text())["verdict"]["other_photos"]

    assert not other_photos()
    assert not other_photos("--gallery", ann.parent)  # the references alone
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "Ann").symlink_to(other)
    assert other_photos("--gallery", tmp_path / "linked")


def test_an_unreadable_reference_photo_fails_the_run_and_notes_stay_when_quiet(tmp_path,
                                                                            album_by_person):
    """A reference photo that could not be read was named, then "0 failed", exit 0; and
    --quiet hid "no face in the photos matched ...", which leaves every photo copied."""
    photos = album_by_person["person_img26"]
    album, refs = tmp_path / "album", tmp_path / "refs"
    album.mkdir()
    refs.mkdir()
    shutil.copy(photos[0], album / photos[0].name)
    shutil.copy(photos[1], refs / photos[1].name)
    (refs / "broken.jpg").write_text("not a photo")
    Image.new("RGB", (400, 400), "white").save(refs / "blank.jpg")  # read: no face, no fail
    done = faceguard("cloak", album, "-o", tmp_path / "out", "--protect", refs, "--preset",
                     "low", "--steps", "1", "--models", "dlib", "--quiet")
    assert done.returncode == 1, done.stderr
    assert "broken.jpg" in done.stderr and "1 other photo not read (named above)" in done.stderr
    stranger = album_by_person["person_img8"][0]
    shutil.copy(stranger, tmp_path / "stranger.jpg")
    quiet = faceguard("cloak", album, "-o", tmp_path / "out2", "--protect",
                      tmp_path / "stranger.jpg", "--models", "dlib", "--quiet")
    assert "note: no face in the photos matched" in quiet.stderr, quiet.stderr


def test_audit_lists(tmp_path):
    done = faceguard("audit", "--list-defenses")
    assert done.returncode == 0
    for name in ("jpeg75", "bilateral", "bilateral-rgb", "sr", "bl+sr", "median", "gaussian",
                 "bitdepth", "tvm", "resize", "purifier", "detect-then-purify",
                 "avae", "adaptive-purifier", "robust-recognizer"):
        assert any(line.startswith(name + " ") for line in done.stdout.splitlines()), name
    listed = faceguard("audit", "--list-detectors").stdout
    assert any(line.startswith("reconstruction ") for line in listed.splitlines())
    assert faceguard("audit", "--cloaked", tmp_path, "--defenses", "nonsense").returncode == 2


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_leaves_only_complete_files(album_dir, tmp_path, album_by_person, stop):
    """SIGTERM (a shutdown) killed the run at once: its manifest was never told it had
    ended, and its temporary file (hidden, uploaded with the folder) stayed, as one a
    killed run left before does (removed now)."""
    photos = album_by_person
    album = tmp_path / "album"
    album.mkdir()
    for p in photos["person_img26"][:6]:
        shutil.copy(p, album / p.name)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".faceguard-0123456789ab.tmp").write_bytes(b"half a photo")  # a killed run's
    proc = subprocess.Popen([sys.executable, "-m", "faceguard", "cloak", str(album), "-o",
                             str(out), "--protect-all", "--models", "dlib", "--preset", "low",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            # Ctrl-C as a terminal gives it: a shell without job control
                            # starts background commands (pytest ... &) with SIGINT
                            # ignored, and Python then never raises KeyboardInterrupt
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    while time.time() < deadline and not list(out.glob("*.jpg")):
        time.sleep(0.2)
    proc.send_signal(getattr(signal, stop))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, stop) and "interrupted" in err
    assert "with --resume goes on" in err.splitlines()[-1]  # what to do, said last
    manifest = json.loads((out / ".faceguard-manifest.json").read_text())
    written = sorted(p.name for p in out.iterdir() if p.name != ".faceguard-manifest.json")
    assert written == sorted(e["output"] for e in manifest["photos"].values())
    assert 1 <= len(written) < 6
    for name in written:  # complete photos
        Image.open(out / name).load()


@pytest.mark.skipif(os.environ.get("FACEGUARD_SKIP_DEMO") == "1", reason="FACEGUARD_SKIP_DEMO=1")
def test_demo_runs(tmp_path):
    done = faceguard("demo", "-o", tmp_path / "demo", "--models", "dlib", "--quiet")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo" / "cloaked" / "astronaut.png").is_file()
    report = json.loads((tmp_path / "demo" / "report" / "report.json").read_text())
    assert report["faces"] == 1 and report["protection"]
    # measured against her reference, a mirrored copy of the photo: all she has besides it
    assert report["verdict"]["status"] != "unmeasured", report["verdict"]["words"]
    assert all(r["faces"] == 1 for r in report["protection"])
    assert "report.html" in done.stdout


def test_people_groups_an_album_and_says_how_to_protect_one(album_by_person, tmp_path):
    """Two people's photos: a folder of chips each, people.json, and the next command."""
    album = tmp_path / "my album"  # a space: the command it prints must still run
    album.mkdir()
    two = [p for p in album_by_person.values() if len(p) >= 2][:2]
    for k, photos in enumerate(two):
        for photo in photos[:2]:
            shutil.copy(photo, album / f"{k}-{photo.name}")
    (album / "broken.jpg").write_bytes(b"not a photo")
    done = faceguard("people", album, "-o", tmp_path / "people", "--quiet")
    assert done.returncode == 1  # the broken photo
    assert "broken.jpg" in done.stderr and "2 people in 4 photos, 1 photo failed" in done.stdout
    for n in (1, 2):
        chips = sorted((tmp_path / "people" / f"person-{n}").glob("*.png"))
        assert len(chips) == 2 and Image.open(chips[0]).size == (320, 320)
    listed = json.loads((tmp_path / "people" / "people.json").read_text())["people"]
    assert [p["count"] for p in listed] == [2, 2]
    assert done.stdout.strip().splitlines()[-1] == (
        f"to cloak one of them: faceguard cloak '{album}' -o cloaked --protect "
        f"{tmp_path / 'people' / 'person-1'}")
    # chips inside the album would be read, and uploaded, as photos
    inside = faceguard("people", album, "-o", album / "people", "--quiet")
    assert inside.returncode == 2 and "must not be inside the input folder" in inside.stderr
    # again into the same folder, on one person's photos: the earlier chips go
    one = tmp_path / "one person"
    one.mkdir()
    for photo in two[1][:2]:
        shutil.copy(photo, one / photo.name)
    again = faceguard("people", one, "-o", tmp_path / "people", "--quiet")
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "people" / "person-1").glob("*.png"))) == 2
    assert not (tmp_path / "people" / "person-2").exists()


def test_the_audit_refuses_a_report_folder_it_cannot_or_should_not_write_before_any_work(
        tmp_path):
    """Inside the cloaked photos' folder the report (which shows the uncloaked faces)
    would be uploaded with them; through a file it failed after the whole audit."""
    cloaked = tmp_path / "cloaked"
    cloaked.mkdir()
    (tmp_path / "afile").write_text("x")
    for out, why in ((cloaked / "report", "must not be inside the cloaked photos' folder"),
                     (tmp_path / "afile" / "sub", "is a file")):
        done = faceguard("audit", "--cloaked", cloaked, "-o", out)
        assert done.returncode == 2 and why in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_detecting_after_a_defense_that_learns_needs_it_among_the_defenses(tmp_path):
    """Only the defenses asked for are trained: the audit failed at its very end."""
    done = faceguard("audit", "--cloaked", tmp_path, "--defenses", "none",
                     "--detect-after", "detect-then-purify")
    assert done.returncode == 2
    assert "detect-then-purify learns from cloaked faces: give it among the defenses" \
        in done.stderr


def _album_and_mask(tmp_path: Path) -> tuple[Path, Path]:
    """(an album of one faceless photo, a saved mask made at low): for what --mask says."""
    import torch

    from faceguard.cloak.universal import CANONICAL_SIZE, UniversalMask

    album = tmp_path / "album"
    album.mkdir()
    Image.new("RGB", (64, 64)).save(album / "a.jpg")
    mask = UniversalMask(torch.zeros(1, 3, CANONICAL_SIZE, CANONICAL_SIZE), "Sam", ["dlib"],
                         {"method": "universal-sgd", "preset": "low", "floor": 85.0,
                          "centroids": {"dlib": torch.zeros(128)}})
    return album, mask.save(tmp_path / "sam.mask.pt")


def test_a_mask_is_applied_at_the_preset_it_was_made_at_unless_another_is_given(tmp_path):
    """Without --preset a mask made at low (floor 85) was applied at balanced (75):
    more visible than when it was made."""
    album, path = _album_and_mask(tmp_path)
    made_at = faceguard("cloak", album, "-o", tmp_path / "a", "--mask", path)
    assert made_at.returncode == 0 and "it is applied at" not in made_at.stderr
    other = faceguard("cloak", album, "-o", tmp_path / "b", "--mask", path, "--preset", "balanced")
    assert "the mask was made keeping faces at SSIMULACRA2 85 (preset low); it is applied " \
        "keeping them at 75: give that preset, or floor," in other.stderr


def test_a_mask_with_options_it_is_not_made_by_is_a_usage_error(tmp_path):
    """--mask with --method, --steps or --eps was applied as made, those options
    changing nothing without a word."""
    album, path = _album_and_mask(tmp_path)
    done = faceguard("cloak", album, "-o", tmp_path / "a", "--mask", path, "--eps", "1",
                     "--method", "pgd")
    assert done.returncode == 2 and not (tmp_path / "a").exists()
    assert "--method, --eps cannot change a saved mask" in done.stderr
    shows = faceguard("cloak", album, "-o", tmp_path / "b", "--mask", path, "--texture", "0.9")
    assert shows.returncode == 0, shows.stderr


def test_people_stopped_while_writing_chips_says_they_are_incomplete(tmp_path, astronaut,
                                                                     monkeypatch, capsys):
    """Stopped while writing chips, `people` said only "interrupted": a person's folder
    may lack faces (the next run forgets them, people.json listing them first)."""
    from faceguard import chips
    from faceguard.cli import main

    album = tmp_path / "album"
    album.mkdir()
    Image.fromarray(astronaut).save(album / "a.png")

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(chips, "write_people", stopped)
    monkeypatch.setattr("faceguard.cli.stop_as_ctrl_c", lambda: None)  # pytest's signals
    assert main(["people", str(album), "-o", str(tmp_path / "people"), "--models", "dlib",
                 "--quiet"]) == 130
    assert "interrupted while writing the face chips" in capsys.readouterr().err
