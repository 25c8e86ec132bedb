"""What FaceGuard tells its users it measured: the benchmarks' figures for each preset
and option, quoted in words by the CLI's help, the app and the audit's verdict
(benchmarks/results; tests/test_measured.py ties the protection figures to those files).
Measured with the default cloak, not promised."""

from __future__ import annotations

from faceguard.settings import PERSON_MASK_STEPS

#: preset -> how visible its cloak measured, as a JPEG quality that changes the face as
#: much (benchmarks/results/visibility-per-scale-quick.json, SSIMULACRA2 weighed per scale:
#: the demo's astronaut, and the median of 8 album faces at balanced; with the reference's
#: weighing, lenient on a face as small as hers, it read 100 / 95 / 65); measured with the
#: default cloak, not promised
MEASURED_LOOKS = {
    "low": "measured like JPEG quality 90 on the demo face",
    "balanced": "measured like JPEG quality 65 on the demo face and (median) on 8 album faces",
    "high": "measured like JPEG quality 35 on the demo face",
}
#: preset -> how often its cloak kept the face from being matched: of 34 faces of the test
#: album's press photos (9 people), the share of those each recognizer matched uncloaked
#: that it no longer matches at its threshold for 1 false match in 100 (calibrated on the
#: album's clean pairs), a cloaked photo searched among clean ones, the person's entry
#: made of their other photos, not of the 2 references the cloak was given and pushed
#: away from (that entry flatters the cloak: it read 9-30 / 47-86 / 83-94%)
#: (benchmarks/results/protection-album-other-photos-low-12-07.json, -12-07, -high-12-07,
#: ``other_photos``: dlib / mobileface / faceres, which the default cloak is made on, then
#: SFace and FaceNet, which it never saw, named apart: a range hid that the stronger,
#: SFace, is hardly ever fooled); measured with the default cloak, not promised
MEASURED_PROTECTION = {"low": ("0-19%", "0%", "18%"), "balanced": ("22-62%", "3%", "48%"),
                       "high": ("68-91%", "3%", "76%")}


#: the same for a cloak given no photos of the person, protecting every face (``faceguard
#: cloak --protect-all``, the app's Everyone): each face pushed from its person's other
#: faces in the album, or from itself when it has none there; 35 faces, the person's entry
#: their 2 reference photos, which this cloak never saw
#: (benchmarks/results/protection-album-everyone-grouped-12-06.json,
#: -grouped-high-12-06.json)
MEASURED_EVERYONE = {"balanced": ("43-60%", "3%", "50%"), "high": ("57-94%", "14%", "71%")}
#: the same with each photo cloaked in a run of its own (one photo cloaked, as most are):
#: each face pushed from itself alone, which protects less; the entry as above
#: (benchmarks/results/protection-album-everyone-alone-12-07.json, -alone-high-12-07.json)
MEASURED_ALONE = {"balanced": ("27-43%", "3%", "39%"), "high": ("43-77%", "6%", "71%")}


def measured_protection(preset: str, everyone: bool = False) -> str:
    """:data:`MEASURED_PROTECTION` of ``preset`` in words; ``everyone``:
    :data:`MEASURED_EVERYONE`'s and :data:`MEASURED_ALONE`'s."""
    if not everyone:
        made_on, sface, facenet = MEASURED_PROTECTION[preset]
        return (f"the recognizers it was made on missed {made_on} of a test album's faces "
                f"they recognised uncloaked, matched against other photos of the person; of "
                f"two it never saw, SFace (the stronger) missed {sface}, FaceNet {facenet}")
    (made_on, sface, facenet), (alone, sface_alone, facenet_alone) = (
        MEASURED_EVERYONE[preset], MEASURED_ALONE[preset])
    return (f"with every face cloaked and no photos of the person given, the recognizers it "
            f"was made on missed, of a test album's faces they recognised uncloaked, "
            f"{made_on} when the person was in other photos of the same run and {alone} "
            f"when each photo was cloaked on its own, matched against other photos of the "
            f"person; of two it never saw, SFace (the stronger) missed {sface} and "
            f"{sface_alone}, FaceNet {facenet} and {facenet_alone}")


#: a face at least this wide (photo pixels) is fooled less often at the same visibility
LARGE_FACE_PX = 500
#: the face width a large face's photo was shrunk to when that was measured
SHRUNK_FACE_PX = 250
#: what shrinking the photo of a large face buys (the tally's hint, ``--max-side``'s help,
#: the app's tooltip): the test album's 10 faces of 500-1328 px, cloaked at ``balanced`` as
#: they were and each in a run shrunk (``max_side``) so that its face was 250 px wide
#: (benchmarks/results/album-distances-own-12-07.json ``default`` against
#: album-distances-shrink-12-07.json ``shrink250``): of the faces each recognizer matched
#: uncloaked against the person's other photos, the share beyond its FAR 1% threshold
#: after; every face moved further from the other photos on dlib, faceres, SFace and
#: FaceNet, 9 of 10 on mobileface (+0.14 / +0.08 / +0.17 / +0.06 / +0.16 threshold units)
LARGE_FACES_MEASURED = (
    "on a test album at the default preset, photos shrunk first so that such a face was "
    f"about {SHRUNK_FACE_PX} px wide had it missed more often: dlib / mobileface / faceres "
    "70 / 12 / 30% of those faces against 30 / 0 / 10% at full size, FaceNet (never seen) "
    "50 against 20%")


#: what making the cloak on more families buys and costs, measured (the CLI's help for
#: ``--models all``, the app's tooltip on each recognizer; 12 album faces against the
#: person's other photos, benchmarks/results/album-distances-more-families-12-07.json and
#: -more-families-mobileface-12-07.json, the two families' figure for dlib from the
#: ``base`` run of album-distances-cwa-12-07.json)
MORE_FAMILIES_MEASURED = (
    "each family added moved some recognizers the cloak never saw a little further on a "
    "test album's faces (dlib, left out, +0.20 / +0.26 / +0.32 of its threshold made on "
    "2 / 3 / 4 families), past its threshold on none of them, and mobileface, left out, "
    "not at all (+0.14 / +0.15 made on 2 / 4); in 2-3x the time")


#: what a colour share buys and costs, measured (the CLI's help and the app's tooltip;
#: benchmarks/results/protection-album-colour-share-12-06.json against
#: protection-album-12-06-file-floor.json: of the faces each recognizer matched uncloaked,
#: at FAR 1%; colour p95 in the files 2.4 on average against 2.0)
COLOUR_SHARE_MEASURED = (
    "0 changes brightness only, so eyes, lips and skin keep their colour; with 0.25 the "
    "recognizers the cloak is made on miss a few more of the real faces they matched "
    "uncloaked (test album, dlib / mobileface / faceres: 83 / 63 / 71% against 80 / 57 / "
    "69%; from a gallery of cloaked photos 50 / 55 / 55% against 40 / 42 / 50%), those it "
    "never saw no more (faceres, when left out of the cloak, 14% against 11%), and colour "
    "changes in fine detail only, never as a tint")
#: what texture shaping buys and costs, measured (the CLI's help): the album protocol
#: (protection-album-texture09.json against -judged.json) and the crops
#: (protection-texture09.json against protection-brightness.json) before the learning rate
#: annealed; since, paired on 13 album faces (album-distances-texture-annealed.json)
TEXTURE_MEASURED = (
    "on the test album's real photos 0.9 changes nothing that can be measured now "
    "(each face's distance to the person moved by -0.01 to +0.02 of a threshold); before "
    "the cloak's learning rate annealed it fooled the recognizers the cloak is made on more "
    "often there (dlib / mobileface / faceres: 86 / 71 / 57% against 80 / 63 / 49% at 0.6) "
    "but less often on small 112-px faces")
#: what the album path buys and costs, measured (benchmarks/results/speed-album-path-ab*.json,
#: protection-album-person-mask15-12-06.json against protection-album-12-06-file-floor.json:
#: of the faces each recognizer matched uncloaked, at FAR 1%; the CLI's help and the app's
#: tooltip)
PERSON_MASK_MEASURED = (
    f"{PERSON_MASK_STEPS} steps suggested: fitting each person's mask costs much of what "
    "the shorter refinement saves (the test album of 59 photos in 0.68x the time, 35 of "
    "its faces in the same time), and it protects far less: at "
    f"{PERSON_MASK_STEPS} steps dlib / mobileface / faceres missed 40 / 50 / 34% of the "
    "album faces they matched uncloaked, against 80 / 57 / 69% from scratch")
#: what a targeted cloak (Fawkes's pull towards a decoy) does on real photos, measured
#: (the CLI's help for ``--targeted``; benchmarks/results/
#: protection-album-targeted-faceres-unseen-12-07.json against the second run of
#: protection-album-other-photos-12-07.json, both made on dlib and mobileface: of the faces
#: dlib matched uncloaked against the person's other photos, the share not matched at FAR 1%)
TARGETED_MEASURED = (
    "on a test album's real photos it barely moved a face from its own person: made on "
    "dlib and mobileface, it left dlib matching every face it matched uncloaked (0% "
    "missed against 71% pushed away, the default; with a gallery of cloaked photos 0 "
    "against 32%)")
#: how loose the audit's figure for an attacker who trains a recognizer against FaceGuard
#: is (``faceguard audit --list``'s limits of ``robust-recognizer``): the same head trained
#: on other people's real (clean, cloaked) photos instead of the audit's stand-in faces
#: (benchmarks/results/album-distances-learned-attackers-12-07.json, ``robust_head`` against
#: ``other_photos``: of the album faces each recognizer matched uncloaked against the
#: person's other photos, the share beyond its FAR 1% threshold; the person left out of
#: what the head learns from)
ROBUST_HEAD_MEASURED = (
    "on a test album, the same attacker trained on some thirty real photos of other "
    "people cloaked by FaceGuard brought the faces missed by the recognizers the cloak is "
    "made on from 62 / 22 / 44% to 38 / 22 / 24% (dlib / mobileface / faceres), by FaceNet "
    "(never seen) from 48 to 39%")
