"""An audit's verdict in plain words, from its protection table (:func:`audit_verdict`).

As a photo's (:mod:`faceguard.verdict`), it keeps the recognizers the cloak was made on
apart from those it was not, and never says "protected" while one it was not made on
still matches a face, or when none such was checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faceguard.visibility import in_words
from faceguard.words import AGAINST_OWN_PHOTOS, GIVE_GALLERY, listed, plural

#: an audited recognizer counts as fooled when it misses at least this share of the
#: faces it recognised without the cloak (with fewer than 10 of them: every one)
FOOLED_SHARE = 0.9

#: with fewer people known, being nearest someone else does not count in an audit's
#: ``protected`` figure (among 2 or 3 people a face past its threshold stays nearest its
#: own for want of choices: the audit said "not protected" where every face was past
#: dlib's threshold)
TOP1_PEOPLE = 10


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
            see :func:`faceguard.visibility.most_visible`), {} when not measured.
        check_faces: when ``not_made_on`` comes from the held-out check (cloaks re-made
            without each family, :mod:`faceguard.audit.held_out`), on how many faces.
        among: how many people a recognizer picked each face out among (top-1, see
            :func:`protected_share`); 0 when it was judged by its match threshold alone.
        unrecognised: faces were measured, but no recognizer recognised one even without
            the cloak (the person has no other photo to be recognised by).
        unmeasured: when no face could be measured at all (no other photo of its person
            to measure it against), whom other photos are missing of; () otherwise.
        other_photos: the faces were measured against photos of their person the cloak did
            not know (a Known people folder's); only against those it moved away from, it
            fares far better (100% against 0% on two people), and is never "protected".
        left_out: a protected person a recognizer fooled on 90% of all the faces still
            matches ("Ann is still recognised by faceres (0% of their faces protected)").
        still_matched: the recognizers the cloak was not made on (or not known to be) that
            count as fooled yet still match a face ("sface still recognises 1 of the 10
            faces it recognised without the cloak"): a platform's own recognizer that
            matches one photo has found the person, so the cloak is not "protected".
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
    unmeasured: tuple[str, ...] = ()
    other_photos: bool = True
    left_out: str = ""
    still_matched: str = ""

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
        if self.still_matched or any(fooled_ < checked for fooled_, checked
                                     in (*groups, self.reupload)):
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
        if self.unmeasured and self.status == "unmeasured":  # "none checked" said nothing
            return ("No face could be measured: a face is measured against other photos of "
                    f"its person, and there are none of {listed(self.unmeasured)}. Add some "
                    f"{GIVE_GALLERY}, one sub-folder per person.")
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
            f"Not every face: {self.still_matched}." if self.still_matched else "",
            "After re-upload: " + _after(*self.reupload, "recognizer") + ".",
            "After deliberate clean-up: " + _after(*self.cleanup, "recognizer") + ".",
            f"How visible: {in_words(self.visibility)}.", self._against(),
            self._judged()] if part)

    def _against(self) -> str:
        """What the faces were measured against, when it flatters the cloak (not said of a
        cloak that fools none even so)."""
        if self.other_photos or self.status in ("unprotected", "unmeasured"):
            return ""
        return (f"{AGAINST_OWN_PHOTOS}; add other photos of the person {GIVE_GALLERY} to "
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
                "unrecognised": self.unrecognised, "unmeasured": list(self.unmeasured),
                "other_photos": self.other_photos,
                "left_out": self.left_out, "still_matched": self.still_matched}


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
                  people: int = 0, other_photos: bool = True,
                  unmeasured: Sequence[str] = ()) -> AuditVerdict:
    """The verdict of an audit's protection rows (``AuditResult.protection``).

    Args:
        rows: one per (defense, recognizer): ``defense``, ``model``, ``held_out`` (None:
            not known) and the shares of :func:`protected_share`; rows without a
            measured face are ignored, and so are those where the recognizer recognised
            none of the clean faces either: it cannot be said to be fooled by the cloak.
        visibility: the most visible face's figures (see :class:`AuditVerdict`).
        people: how many people the audit knew (its gallery's).
        other_photos: see :class:`AuditVerdict`.
        unmeasured: the people whose faces could not be measured (said when none was).
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

    # fooled on 90% of the faces is not on all: one a platform's recognizer still matches
    # shows it the person, as published or after the re-upload every platform does
    still = [r for r in rows if defense_kind(r["defense"]) in ("none", "re-upload")
             and r["held_out"] is not False and fooled_by([r]) and protected_share(r) < 1]
    published = {r["model"] for r in still if defense_kind(r["defense"]) == "none"}
    still = [r for r in still if defense_kind(r["defense"]) == "none"
             or r["model"] not in published]  # each recognizer said once

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
                        unmeasured=() if measured else tuple(unmeasured),
                        other_photos=other_photos,
                        left_out=(f"{left['least_person']} is still recognised by "
                                  f"{left['model']} ({left['least_person_protected']:.0%} of "
                                  "their faces protected)") if left else "",
                        still_matched="; ".join(_still_matched(r) for r in still))


def _still_matched(row: Mapping) -> str:
    """ "sface still recognises 1 of the 10 faces it recognised without the cloak", and
    after which re-upload where it is one."""
    from faceguard.audit.defenses import defense_kind, defense_label

    recognised = round(row["faces"] * recognised_clean(row))
    matched = max(1, round(recognised * (1 - protected_share(row))))
    after = (f" after {defense_label(row['defense'])}"
             if defense_kind(row["defense"]) == "re-upload" else "")
    check = " (in the held-out check)" if row.get("check") else ""
    return (f"{row['model']} still recognises {matched} of the {plural(recognised, 'face')} "
            f"it recognised without the cloak{after}{check}")
