"""The protection verdict in plain words: of a photo's faces, from their face records
(:func:`verdict`), and of a whole batch, face by face (:func:`tally`); an audit's is
:mod:`faceguard.audit.verdict`'s.

A cloak made on some recognizers may fool those and still be matched by a recognizer
it was never made on, which is what a platform runs. So the verdict always keeps the
two apart, and never calls a face protected while a recognizer it was not made on
still matches it, or when no such recognizer was checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faceguard.manifest import NOBODY, FaceRecord
from faceguard.measured import LARGE_FACE_PX, LARGE_FACES_MEASURED, measured_protection
from faceguard.words import AGAINST_OWN_PHOTOS, GIVE_GALLERY, plural


def fooled(faces: Sequence[FaceRecord], made_on: bool | None = None) -> tuple[int, int]:
    """(recognizers that recognise none of the faces, recognizers measured).

    ``made_on``: only the recognizers the cloak was made on (True), only the others
    (False, the transfer threat), or all (None). A recognizer that took none of the
    faces for the person even before the cloak (:func:`unmatched`) says nothing about
    the cloak, and counts in neither.
    """
    blind = set(unmatched(faces))
    models = [m for m in (faces[0].recognised if faces else {}) if m not in blind
              and (made_on is None or faces[0].made_on.get(m, False) == made_on)]
    fooled_by = [m for m in models if not any(f.recognised.get(m, True) for f in faces)]
    return len(fooled_by), len(models)


def unmatched(faces: Sequence[FaceRecord]) -> list[str]:
    """The recognizers that took none of the faces for the person, clean or cloaked: at
    its fixed threshold FaceNet missed 5 of 6 clean faces of one album person, and
    counting it as fooled would flatter the cloak."""
    models = faces[0].recognised if faces else {}
    return [m for m in models if not any(f.took(m) for f in faces)]


def measured_against(face: FaceRecord) -> str:
    """What a face's distances are to, in words: the person's name; with protect-all
    (:data:`NOBODY`), the person's other faces in the photos where there are some, else the
    face's own clean copy (its distances before the cloak are 0)."""
    if face.person != NOBODY:
        return face.person or "the person"
    return ("its own clean face" if not any(face.distance_before.values())
            else "its person's other faces in these photos")


@dataclass(frozen=True)
class Verdict:
    """(fooled, measured) recognizers, split by whether the cloak was made on them.

    Attributes:
        made_on: recognizers the cloak was made on.
        not_made_on: installed recognizers it was not made on (measured when present).
        still_matching: names of the recognizers that still match a face.
        unmatched: recognizers that took no face for the person, before the cloak or
            after (left out of both counts: :func:`unmatched`).
    """

    made_on: tuple[int, int]
    not_made_on: tuple[int, int]
    still_matching: tuple[str, ...]
    unmatched: tuple[str, ...] = ()

    @property
    def protected(self) -> bool:
        """Every recognizer measured is fooled, including at least one it was not made on."""
        return (not self.still_matching and self.not_made_on[1] > 0
                and self.made_on[0] == self.made_on[1])

    def short(self) -> str:
        """A table cell: made on, then the others, e.g. "3 of 3; others not checked"."""
        n, total = self.made_on
        if not total:
            return "–"
        m, others = self.not_made_on
        return f"{n} of {total}; others " + (f"{m} of {others}" if others else "not checked")

    def words(self) -> str:
        """One or two sentences, e.g. "Fooled 3 of 3 recognizers it was made on. Not
        checked on a recognizer it was not made on (run an audit)."."""
        n, total = self.made_on
        if not total:
            return "No face was cloaked."
        out = f"Fooled {n} of {plural(total, 'recognizer')} it was made on."
        m, others = self.not_made_on
        if others:
            out += f" Fooled {m} of {plural(others, 'recognizer')} it was not made on."
        else:
            out += (" Not checked on a recognizer it was not made on, which is what a "
                    "platform runs: run an audit to check.")
        if self.still_matching:
            out += f" Still recognised by {', '.join(self.still_matching)}: not protected."
        if self.unmatched:
            out += (f" Not counted: {', '.join(self.unmatched)}, which did not recognise "
                    "the face before the cloak either.")
        return out


def verdict(faces: Sequence[FaceRecord]) -> Verdict:
    """The verdict of the protected faces among ``faces``."""
    faces = [f for f in faces if f.protected]
    matching = sorted({m for f in faces for m, hit in f.recognised.items() if hit})
    return Verdict(fooled(faces, made_on=True), fooled(faces, made_on=False),
                   tuple(matching), tuple(unmatched(faces)))


@dataclass(frozen=True)
class Tally:
    """How a batch's cloaked faces came out, recognizer by recognizer: the words a user
    with a whole album reads once at the end, instead of adding up each photo's line.

    Attributes:
        faces: the cloaked faces.
        unrecognised: of them, those no recognizer measured takes for the person.
        still: (recognizer, faces it still recognises, faces it recognised before the
            cloak or after, made on), in the order measured. "Before" keeps a weak
            recognizer that missed the clean faces too from reading as fooled.
        everyone: every face was cloaked without photos of its person (protect-all),
            whose protection was measured apart (the hint quotes those figures).
        large: of the faces some recognizer still takes for the person, those
            :data:`faceguard.measured.LARGE_FACE_PX` wide or more, which the same
            visibility protects less (the hint says what shrinking their photos buys).
    """

    faces: int
    unrecognised: int
    still: tuple[tuple[str, int, int, bool], ...]
    everyone: bool = False
    large: int = 0

    def words(self, stronger: str | None = None, name: Callable[[str], str] = str,
              shrink: str | None = None) -> str:
        """E.g. "Of 12 faces cloaked, 3 got past every recognizer. Faces still
        recognised, of those each recognizer recognised before the cloak: dlib 1 of 12,
        faceres 5 of 12 (made on); sface 11 of 12 (not made on)."; then, while a face is
        still recognised, what the ``stronger`` preset measured
        (:attr:`faceguard.settings.CloakSettings.stronger`), called by ``name`` as the
        shell calls it (``--preset high``); while a large face is still recognised, what
        a smaller copy measured (``shrink``: how the shell makes one, ``--max-side``); and
        where a face got past every recognizer, what its distances were to
        (:data:`faceguard.words.AGAINST_OWN_PHOTOS`)."""
        if not self.faces:
            return "No face was cloaked."
        out = (f"Of {plural(self.faces, 'face')} cloaked, "
               f"{self.unrecognised or 'none'} got past every recognizer.")
        named = []
        for side, label in ((True, "made on"), (False, "not made on")):
            counts = [f"{m} {k} of {n}" for m, k, n, made in self.still if made == side and n]
            if counts:
                named.append(f"{', '.join(counts)} ({label})")
        if named:
            out += (" Faces still recognised, of those each recognizer recognised before "
                    f"the cloak: {'; '.join(named)}.")
        blind = [m for m, _, n, _ in self.still if not n]  # manifest.unmatched, counted
        if blind:  # as in Verdict.words: a recognizer that never took a face says nothing
            out += (f" Not counted: {', '.join(blind)}, which did not recognise these faces "
                    "before the cloak either.")
        if stronger and self.unrecognised < self.faces:
            out += (f" A stronger cloak ({name(stronger)}) shows more and fools more: "
                    f"{measured_protection(stronger, self.everyone)}.")
        if self.large:
            out += (f" {self.large} of the faces still recognised "
                    f"{'is' if self.large == 1 else 'are'} {LARGE_FACE_PX} px wide or more, "
                    f"which the same visibility protects less"
                    f"{f' ({shrink} writes a smaller copy)' if shrink else ''}: "
                    f"{LARGE_FACES_MEASURED}.")
        if self.unrecognised:  # read as success: say what it was measured against
            out += (f" {AGAINST_OWN_PHOTOS}; the audit measures that, given other photos "
                    f"of the person {GIVE_GALLERY}.")
        return out


def tally(faces: Sequence[FaceRecord]) -> Tally:
    """The :class:`Tally` of the protected faces among ``faces``."""
    faces = [f for f in faces if f.protected]
    models = list(dict.fromkeys(m for f in faces for m in f.recognised))
    return Tally(
        faces=len(faces),
        # a face no recognizer measured is not one that got past them all
        unrecognised=sum(bool(f.recognised) and not any(f.recognised.values()) for f in faces),
        still=tuple((m, sum(f.recognised.get(m, False) for f in faces),
                     sum(m in f.recognised and f.took(m) for f in faces),
                     any(f.made_on.get(m, False) for f in faces)) for m in models),
        everyone=bool(faces) and all(f.person == NOBODY for f in faces),
        large=sum(f.box[2] - f.box[0] >= LARGE_FACE_PX and any(f.recognised.values())
                  for f in faces))
