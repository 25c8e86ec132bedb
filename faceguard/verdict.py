"""The protection verdict in plain words: of a photo's faces, from their face records
(:func:`verdict`), of a whole batch, face by face (:func:`tally`), and of an audit, from
its protection table (:func:`audit_verdict`).

A cloak made on some recognizers may fool those and still be matched by a recognizer
it was never made on, which is what a platform runs. So the verdict always keeps the
two apart, and never calls a face protected while a recognizer it was not made on
still matches it, or when no such recognizer was checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from faceguard.manifest import FaceRecord
from faceguard.settings import measured_protection
from faceguard.visibility import in_words
from faceguard.words import GIVE_GALLERY, plural

#: an audited recognizer counts as fooled when it misses at least this share of the
#: faces it recognised without the cloak (with fewer than 10 of them: every one)
FOOLED_SHARE = 0.9

#: with fewer people known, being nearest someone else does not count in an audit's
#: ``protected`` figure (among 2 or 3 people a face past its threshold stays nearest its
#: own for want of choices: the audit said "not protected" where every face was past
#: dlib's threshold)
TOP1_PEOPLE = 10


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
    """

    faces: int
    unrecognised: int
    still: tuple[tuple[str, int, int, bool], ...]

    def words(self, stronger: str | None = None, name: Callable[[str], str] = str) -> str:
        """E.g. "Of 12 faces cloaked, 3 got past every recognizer. Faces still
        recognised, of those each recognizer recognised before the cloak: dlib 1 of 12,
        faceres 5 of 12 (made on); sface 11 of 12 (not made on)."; then, while a face is
        still recognised, what the ``stronger`` preset measured
        (:attr:`faceguard.settings.CloakSettings.stronger`), called by ``name`` as the
        shell calls it (``--preset high``)."""
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
                    f"{measured_protection(stronger)}.")
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
                     any(f.made_on.get(m, False) for f in faces)) for m in models))


def protected_share(row: Mapping) -> float | None:
    """A protection row's figure: of the faces the recognizer recognised uncloaked, the
    share the cloak turned, beyond the match threshold and (with :data:`TOP1_PEOPLE`
    people known or more) nearest to someone else (``protected``, see
    :mod:`faceguard.audit.protection`); None when it recognised none of them."""
    return row["protected"]


def recognised_clean(row: Mapping) -> float | None:
    """A protection row's share of the *clean* faces the recognizer recognised (nearest
    person right, or within the threshold), after the same defense (None: not measured)."""
    return row["clean_recognised"]


#: an audit verdict's status -> its first words
HEADLINES = {"protected": "Protected.", "partly": "Partly protected.",
             "unprotected": "Not protected.", "unchecked": "Not fully checked.",
             "unmeasured": "Not measured."}


@dataclass(frozen=True)
class AuditVerdict:
    """An audit's verdict: (fooled, checked) per threat, and how visible the cloak is.

    Attributes:
        made_on, not_made_on: recognizers fooled by the photos as published, of those
            checked, split by whether the cloak was made on them.
        reupload: recognizers still fooled after every re-upload (JPEG) checked.
        cleanup: recognizers still fooled after every deliberate clean-up (filters,
            super-resolution, a learned purifier) checked, counted as ``reupload`` is.
        visibility: the most visible face's figures (``ssimulacra2``, ``jpeg_equivalent``;
            see :mod:`faceguard.visibility`), {} when not measured.
        check_faces: when ``not_made_on`` comes from the held-out check (cloaks re-made
            without each family, :mod:`faceguard.audit.held_out`), on how many faces.
        among: how many people a recognizer picked each face out among (top-1, see
            :func:`protected_share`); 0 when it was judged by its match threshold alone.
        unrecognised: faces were measured, but no recognizer recognised one even without
            the cloak (the person has no other photo to be recognised by).
        other_photos: the faces were measured against photos of their person the cloak did
            not know (a Known people folder's); only against those it moved away from, it
            fares far better (100% against 0% on two people), and is never "protected".
        left_out: a protected person a recognizer fooled on 90% of all the faces still
            matches ("Ann is still recognised by faceres (0% of their faces protected)").
    """

    made_on: tuple[int, int]
    not_made_on: tuple[int, int]
    reupload: tuple[int, int]
    cleanup: tuple[int, int]
    visibility: dict
    check_faces: int = 0
    among: int = 0
    unknown: tuple[int, int] = (0, 0)
    unrecognised: bool = False
    other_photos: bool = True
    left_out: str = ""

    @property
    def status(self) -> str:
        """One of :data:`HEADLINES`: "protected" only when every recognizer is fooled as
        published and after re-upload, one it was not made on included (on the photos
        themselves, not only in the held-out check)."""
        groups = (self.made_on, self.not_made_on, self.unknown)
        if not sum(checked for _, checked in groups):
            return "unmeasured"
        if not sum(fooled_ for fooled_, _ in groups):
            return "unprotected"
        if any(fooled_ < checked for fooled_, checked in (*groups, self.reupload)):
            return "partly"
        # the held-out check's cloaks, made on face crops, transfer better than a cloak on
        # whole photos: not enough to call a platform's own recognizer fooled
        return ("protected" if self.not_made_on[1] and not self.check_faces and self.other_photos
                else "unchecked")

    @property
    def headline(self) -> str:
        """The verdict's first words, e.g. "Partly protected."."""
        return HEADLINES[self.status]

    def details(self) -> str:
        """What the headline rests on, e.g. "Protected against 3 of 3 recognizers it was
        made on; 1 of 1 it was not. After re-upload: still protected. After deliberate
        clean-up: protected against 2 of 4 recognizers. How visible: invisible at normal
        size, faint up close (like JPEG quality 91)."."""
        n, total = self.made_on
        m, others = self.not_made_on
        if self.unrecognised and self.status == "unmeasured":
            return ("No recognizer recognised the faces even without the cloak, so what the "
                    "cloak does could not be measured: they need other photos of the person "
                    "to recognise them by (the cloak run's reference photos, or the "
                    "person's folder among the known people).")
        if self.unknown[1]:  # no manifest: which ones the cloak was made on is not known
            first = (f"Protected against {self.unknown[0]} of "
                     f"{plural(self.unknown[1], 'recognizer')}; which of them the cloak was "
                     "made on is not known (no FaceGuard manifest), so none counts as a "
                     "platform's own")
        elif total:
            first = f"Protected against {n} of {plural(total, 'recognizer')} it was made on"
        else:
            first = "No recognizer the cloak was made on was checked"
        if not self.unknown[1]:
            first += (f"; {m} of {others} it was not{self._how_checked()}" if others else
                      "; none it was not made on was checked, so it cannot be called "
                      "protected against a platform's own")
        return " ".join(part for part in [
            first + ".", f"Not for everyone: {self.left_out}." if self.left_out else "",
            "After re-upload: " + _after(*self.reupload, "recognizer") + ".",
            "After deliberate clean-up: " + _after(*self.cleanup, "recognizer") + ".",
            f"How visible: {in_words(self.visibility)}.", self._against(),
            self._judged()] if part)

    def _against(self) -> str:
        """What the faces were measured against, when it flatters the cloak (not said of a
        cloak that fools none even so)."""
        if self.other_photos or self.status in ("unprotected", "unmeasured"):
            return ""
        return ("Measured against the photos the cloak was made to move away from (its "
                "reference photos, or the album's own): a platform matches against others, "
                f"which may still match; add other photos of the person {GIVE_GALLERY} to "
                "measure that.")

    def _judged(self) -> str:
        """How a recognizer counts as fooled, last (after the facts it defines): the
        audit's and the cloak's lines can differ, as a face past a recognizer's threshold
        may still be nearer its person than anyone else known."""
        if not self.made_on[1] + self.not_made_on[1] + self.unknown[1]:
            return ""
        named = (f" and nearer someone else than to them, among the {self.among} people known"
                 if self.among else "")
        return (f"A recognizer counts as fooled when {FOOLED_SHARE:.0%} or more of each "
                "protected person's faces it recognised without the cloak are beyond its "
                f"match threshold{named}.")

    def _how_checked(self) -> str:
        if not self.check_faces:
            return ""
        return (f" (checked only on quicker cloaks re-made on face crops without each one's "
                f"family, on {plural(self.check_faces, 'face')}: such cloaks fool recognizers "
                "they were not made on more easily than a cloak on whole photos, so this is "
                "at best an upper bound)")

    def words(self) -> str:
        """The whole verdict as one plain paragraph: headline, then details."""
        return f"{self.headline} {self.details()}"

    def to_json(self) -> dict:
        return {"status": self.status, "words": self.words(), "made_on": list(self.made_on),
                "not_made_on": list(self.not_made_on), "unknown": list(self.unknown),
                "reupload": list(self.reupload),
                "cleanup": list(self.cleanup), "visibility": self.visibility,
                "check_faces": self.check_faces, "among": self.among,
                "unrecognised": self.unrecognised, "other_photos": self.other_photos,
                "left_out": self.left_out}


def _after(fooled_: int, checked: int, what: str) -> str:
    if not checked:
        return "not checked"
    if fooled_ == checked:
        return "still protected"
    if not fooled_:
        return "not protected"
    return f"protected against {fooled_} of {plural(checked, what)}"


def _least_person(row: Mapping) -> float:
    """A protection row's share of the least protected person (1 when not measured)."""
    share = row.get("least_person_protected")
    return 1.0 if share is None else share


def audit_verdict(rows: Sequence[Mapping], visibility: dict | None = None,
                  people: int = 0, other_photos: bool = True) -> AuditVerdict:
    """The verdict of an audit's protection rows (``AuditResult.protection``).

    Args:
        rows: one per (defense, recognizer): ``defense``, ``model``, ``held_out`` (None:
            not known) and the shares of :func:`protected_share`; rows without a
            measured face are ignored, and so are those where the recognizer recognised
            none of the clean faces either: it cannot be said to be fooled by the cloak.
        visibility: the most visible face's figures (see :class:`AuditVerdict`).
        people: how many people the audit knew (its gallery's).
        other_photos: see :class:`AuditVerdict`.
    """
    from faceguard.audit.defenses import defense_kind

    measured = [r for r in rows if r["faces"]]
    rows = [r for r in measured if protected_share(r) is not None]

    def fooled_by(group: Sequence[Mapping]) -> bool:  # every protected person by themselves
        return all(protected_share(r) >= FOOLED_SHARE
                   and _least_person(r) >= FOOLED_SHARE for r in group)

    # a recognizer fooled on 90% of all faces, not of one person's: said by name
    left = next((r for r in rows if defense_kind(r["defense"]) == "none"
                 and protected_share(r) >= FOOLED_SHARE
                 and _least_person(r) < FOOLED_SHARE), None)

    def count(rows_of: Mapping[str, list]) -> tuple[int, int]:
        return sum(fooled_by(g) for g in rows_of.values()), len(rows_of)

    def by(key: str, kind: str, *held_out: bool | None) -> dict[str, list]:
        """Rows of defenses of ``kind`` by ``key``, of recognizers whose ``held_out`` is
        one of those given (any when none is)."""
        out: dict[str, list] = {}
        for r in rows:
            if defense_kind(r["defense"]) == kind and (not held_out or r["held_out"] in held_out):
                out.setdefault(r[key], []).append(r)
        return out

    return AuditVerdict(made_on=count(by("model", "none", False)),
                        not_made_on=count(by("model", "none", True)),
                        unknown=count(by("model", "none", None)),
                        reupload=count(by("model", "re-upload")),
                        cleanup=count(by("model", "clean-up")),
                        visibility=dict(visibility or {}),
                        check_faces=max((r["faces"] for r in rows if r.get("check")),
                                        default=0),
                        among=people if people >= TOP1_PEOPLE and any(
                            r["protected_top1"] is not None for r in rows) else 0,
                        unrecognised=bool(measured) and not rows,
                        other_photos=other_photos,
                        left_out=(f"{left['least_person']} is still recognised by "
                                  f"{left['model']} ({left['least_person_protected']:.0%} of "
                                  "their faces protected)") if left else "")
