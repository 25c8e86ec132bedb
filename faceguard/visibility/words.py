"""How visible a cloak is, in plain words: from a face's measured figures (a
:func:`faceguard.visibility.measure_face` dict) as its file shows them, the words the
CLI, the app and the audit say. Light to import: the CLI reads them at start-up."""

from __future__ import annotations

from collections.abc import Sequence

#: (least face SSIMULACRA2, words): how visible, from the score (90 is visually
#: lossless at 1:1; re-saving a face as JPEG scores about 90 at quality 95, 85-88 at 90,
#: 75 at 65 and 70 at 50: the astronaut's and two album faces, 3 Dec)
_WORDS = ((85.0, "invisible, even up close"),
          (75.0, "invisible at normal size, faint up close"),
          (65.0, "faint at normal size, visible up close"),
          (float("-inf"), "visible"))


#: what the score's numbers mean, in one sentence for the shells (the JPEG qualities: the
#: re-saved faces of :data:`_WORDS`)
SCALE = ("SSIMULACRA2 scores how visible the change is to people, colour included: 100 is "
         "identical, 85 or more cannot be told apart even up close, about 75 is as visible "
         "as saving the face as a JPEG at quality 65, and 65 is faint at normal size.")


def describe(score_: float) -> str:
    """Plain words for a face SSIMULACRA2 score, e.g. ``"invisible at normal size, faint up
    close"``."""
    return next(words for floor, words in _WORDS if score_ >= floor)


#: a face's colour change (CIEDE2000, 95th percentile) above this is noticeable side by
#: side, up close, whatever its SSIMULACRA2, which is lenient on small faces (90 at 2.9)
NOTICEABLE_COLOUR = 2.3


def face_words(quality: dict) -> str:
    """Plain words for how visible a face's cloak is in its file (a :func:`measure_face`
    dict with ``ssimulacra2``): its score's (:func:`seen_score`), but never "invisible,
    even up close" with a colour change above :data:`NOTICEABLE_COLOUR`."""
    words = describe(seen_score(quality))
    if words == _WORDS[0][1] and (seen_colour(quality) or 0.0) > NOTICEABLE_COLOUR:
        return _WORDS[1][1]
    return words


def seen_score(quality: dict) -> float | None:
    """A face's SSIMULACRA2 as its file shows it (a :func:`measure_face` dict): the
    cloak's, or the file's where its compression took it lower; None when not measured.
    The words for a face are this score's, in the CLI and the app alike."""
    if "ssimulacra2" not in quality:
        return None
    return min(quality["ssimulacra2"], quality.get("saved_ssimulacra2", 100.0))


def seen_colour(quality: dict) -> float | None:
    """A face's colour change (CIEDE2000, 95th percentile) as its file shows it: the
    cloak's, or the file's where its compression took it higher (JPEG's chroma
    subsampling adds 0.2-0.5); None when not measured."""
    if "ciede2000_p95" not in quality:
        return None
    return max(quality["ciede2000_p95"], quality.get("saved_ciede2000_p95", 0.0))


def summary(quality: dict) -> str:
    """One line on a face's measured visibility (a :func:`measure_face` dict), e.g.
    ``"invisible at normal size, faint up close (SSIMULACRA2 78.1, like JPEG quality 91;
    colour shift p95 1.9, 2.3 is just noticeable)"``, and the file's own score where its
    compression takes it half a point or more lower."""
    if "ssimulacra2" not in quality:
        return "visibility not measured (face too small)"
    jpeg = _like_jpeg(quality)
    like = f", {jpeg}" if jpeg else ""
    colour = (f"; colour shift p95 {seen_colour(quality):.1f}, {NOTICEABLE_COLOUR} is just "
              "noticeable"
              if "ciede2000_p95" in quality else "")
    # the cloak keeps the floor; a JPEG or WebP file adds its own loss, said where it counts,
    # and the words are the file's: it is what is seen
    saved = quality.get("saved_ssimulacra2", 100.0)
    written = (f"; {saved:.1f} in the file written, its compression included"
               if saved < quality["ssimulacra2"] - 0.5 else "")
    return (f"{face_words(quality)} (SSIMULACRA2 "
            f"{quality['ssimulacra2']:.1f}{like}{colour}{written})")


def in_words(quality: dict) -> str:
    """A face's visibility without the figures people do not know, e.g. ``"invisible at
    normal size, faint up close (like JPEG quality 91)"``; "not measured" without one."""
    if "ssimulacra2" not in quality:
        return "not measured"
    jpeg = _like_jpeg(quality)  # the file's words, as the cloak's line
    return face_words(quality) + (f" ({jpeg})" if jpeg else "")


def _like_jpeg(quality: dict) -> str:
    """``"like JPEG quality 91"``, or a range from another face's lower figure (see
    :func:`most_visible`); "" when not measured."""
    if (jpeg := quality.get("jpeg_equivalent")) is None:
        return ""
    least = quality.get("jpeg_equivalent_least")
    return f"like JPEG quality {jpeg if least is None else f'{least}-{jpeg}'}"


def most_visible(qualities: Sequence[dict]) -> dict:
    """The figures of the most visible face among :func:`measure_face` dicts, or {} when
    none was measured: the worst words (:func:`face_words`: a noticeable colour change
    counts, which a higher score hid), then the least SSIMULACRA2 as its file shows it.
    Each face reacts to JPEG its own way, so another face may read as a lower JPEG
    quality at a higher score: then ``jpeg_equivalent_least`` is added, the lowest."""
    measured = [q for q in qualities if "ssimulacra2" in q]
    if not measured:
        return {}
    words = [w for _, w in _WORDS]
    worst = dict(min(measured, key=lambda q: (-words.index(face_words(q)), seen_score(q))))
    least = min((q["jpeg_equivalent"] for q in measured if "jpeg_equivalent" in q),
                default=None)
    if least is not None and least < worst.get("jpeg_equivalent", least):
        worst["jpeg_equivalent_least"] = least
    return worst
