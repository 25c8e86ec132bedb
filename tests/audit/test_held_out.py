"""The audit's held-out check: with a cloak made on every recognizer it audits, the
audit re-makes the cloak without each family and asks that family (real photos, real
recognizers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceguard.audit.report import summary
from faceguard.audit.run import AuditJob, run_audit
from faceguard.manifest import MANIFEST_NAME
from faceguard.models.ensemble import Ensemble
from faceguard.pipeline import CloakJob, cloak_album
from faceguard.settings import CloakSettings
from faceguard.training_pairs import cloak_check

MODELS = ("dlib", "mobileface")


@pytest.fixture(scope="module")
def cloaked_album(album_by_person, detector, load_model, tmp_path_factory):
    """Two photos of person_img26 cloaked on dlib and mobileface (each face is then
    recognised by the other photo)."""
    photos = album_by_person["person_img26"]
    root = tmp_path_factory.mktemp("held-out")
    (root / "in").mkdir()
    for p in photos[2:4]:
        shutil.copy(p, root / "in" / p.name)
    job = CloakJob(inputs=[root / "in"], outdir=root / "out", protect=photos[:2],
                   settings=CloakSettings(models=MODELS, preset="low", steps=4))
    list(cloak_album(job, detector, lambda names: Ensemble([load_model(n) for n in names])))
    return root


def _audit(root, detector, load_model, **job):
    audit = AuditJob(cloaked=root / "out", outdir=root / "report", models=list(MODELS),
                     **({"defenses": ["none"]} | job), detectors=())
    events = list(run_audit(audit, detector,
                            lambda names: Ensemble([load_model(n) for n in names]),
                            check_cloak=cloak_check))
    return events, events[-1].result


def test_a_cloak_made_on_every_family_is_checked_without_each(cloaked_album, detector,
                                                              load_model):
    events, result = _audit(cloaked_album, detector, load_model, held_out_check=1)
    assert {r["model"] for r in result.held_out_check} == set(MODELS)
    for r in result.held_out_check:
        assert r["check"] and r["held_out"] and r["defense"] == "none" and r["faces"] == 1
        assert r["protected_verify"] in (0.0, 1.0)
    assert [e.detail for e in events if e.stage == "checking recognizers it was not made on"
            ] == ["a cloak made without dlib", "a cloak made without mobileface"]
    # the user's own rows are all "made on"; the verdict now has a held-out figure
    assert not any(r["held_out"] for r in result.protection)
    verdict = result.verdict()
    assert verdict.not_made_on[1] == 2
    assert verdict.status in ("unchecked", "partly", "unprotected")  # never "protected"
    assert ("cloaks re-made on face crops without each one's family, on 1 face: such cloaks "
            "fool recognizers they were not made on more easily") in verdict.words()
    assert any(line.startswith("Held-out check: a cloak re-made without dlib's family")
               for line in summary(result))


def test_without_the_check_the_verdict_says_none_was_checked(cloaked_album, detector,
                                                              load_model):
    _, result = _audit(cloaked_album, detector, load_model, held_out_check=0)
    assert result.held_out_check == []
    # how visible: the files as published, their JPEG compression included
    manifest = json.loads((cloaked_album / "out" / MANIFEST_NAME).read_text())
    saved = min(f["quality"]["saved_ssimulacra2"] for e in manifest["photos"].values()
                for f in e.get("faces", []) if f["protected"])
    assert result.visibility["ssimulacra2"] == pytest.approx(saved, abs=0.5), manifest
    assert result.verdict().not_made_on == (0, 0)
    assert "none it was not made on was checked" in result.verdict().words()
    assert any("turned off" in n for n in result.notes)


def test_which_recognizers_a_cloak_was_made_on_comes_from_each_face(cloaked_album, detector,
                                                                     load_model, tmp_path):
    """A folder resumed with other recognizers records only the last run's: each face's
    own record says what it was made on. And the photos as published are always measured:
    without them the verdict said "Not measured" under measured re-uploads."""
    import json

    from faceguard.manifest import MANIFEST_NAME

    shutil.copytree(cloaked_album / "out", tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    (tmp_path / "out" / MANIFEST_NAME).write_text(json.dumps(manifest | {"models": ["dlib"]}))
    _, result = _audit(tmp_path, detector, load_model, held_out_check=0,
                       defenses=["jpeg75"], originals=cloaked_album / "in")
    assert result.cloak_models == sorted(MODELS)
    measured = result.visibility["ssimulacra2"]
    # a cloaked photo replaced by its original since: its figures are measured again
    for rel, entry in manifest["photos"].items():
        shutil.copy(cloaked_album / "in" / Path(rel).name, tmp_path / "out" / entry["output"])
    _, again = _audit(tmp_path, detector, load_model, held_out_check=0,
                      originals=cloaked_album / "in")
    assert measured < 99 and again.visibility["ssimulacra2"] == 100
    assert {r["defense"] for r in result.protection} == {"none", "jpeg75"}
    assert all(r["held_out"] is False for r in result.protection)
    assert result.verdict().status != "unmeasured"


def test_without_a_manifest_no_recognizer_counts_as_one_not_made_on(cloaked_album, detector,
                                                                    load_model, tmp_path):
    from faceguard.manifest import MANIFEST_NAME

    shutil.copytree(cloaked_album / "out", tmp_path / "out")
    (tmp_path / "out" / MANIFEST_NAME).unlink()
    _, result = _audit(tmp_path, detector, load_model, originals=cloaked_album / "in")
    assert result.protection and all(r["held_out"] is None for r in result.protection)
    verdict = result.verdict()
    assert verdict.not_made_on == (0, 0) and verdict.status != "protected"
    assert "which of them the cloak was made on is not known" in verdict.words()
    assert result.visibility["ssimulacra2"] > 50  # measured here, as the cloak run does
    assert "How visible: not measured" not in verdict.words()


def test_a_missing_original_is_named_as_the_original(cloaked_album, detector, load_model,
                                                     tmp_path):
    shutil.copytree(cloaked_album / "out", tmp_path / "out")
    shutil.copytree(cloaked_album / "in", tmp_path / "in")
    gone = sorted((tmp_path / "in").iterdir())[0]
    gone.unlink()
    _, result = _audit(tmp_path, detector, load_model, held_out_check=0,
                       originals=tmp_path / "in")
    assert result.errors == [f"the original {gone}: no such file"]


def test_a_faces_figures_are_taken_as_published_unless_the_file_is_lower():
    """A manifest from before SSIMULACRA2, or a face too small to measure, has figures
    without it: the audit stopped on them (KeyError)."""
    from faceguard.audit.run import _as_published

    assert _as_published({"ssimulacra2": 80.0, "saved_ssimulacra2": 79.6})
    assert not _as_published({"ssimulacra2": 88.3, "saved_ssimulacra2": 86.5})
    assert _as_published({"linf": 12.0, "psnr": 40.0})  # an old manifest's, kept
    assert not _as_published({})  # no manifest: measured here


def test_a_known_people_folder_names_the_person_the_cloak_run_did_not(
        cloaked_album, album_by_person, detector, load_model, tmp_path):
    """Protected from reference photos without a name, the person was "the person to
    protect" in every line, though the Known people folder "Ann" held their photos."""
    known = tmp_path / "known" / "Ann"
    known.mkdir(parents=True)
    for p in album_by_person["person_img26"][4:6]:
        shutil.copy(p, known / p.name)
    _, result = _audit(cloaked_album, detector, load_model, held_out_check=0,
                       gallery=known.parent)
    assert ('The known people\'s "Ann" show the person to protect (their clean faces match), '
            "who is called Ann in this audit." in result.notes), result.notes
    assert {r["least_person"] for r in result.protection} == {"Ann"}
    assert result.protected_people == ["Ann"]  # the report's "Protected: Ann."
