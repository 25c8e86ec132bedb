"""The protection verdict of a photo's faces, in plain words, from their face records.

A cloak made on some recognizers may fool those and still be matched by a recognizer
it was never made on, which is what a platform runs. So the verdict always keeps the
two apart, and never calls a face protected while a recognizer it was not made on
still matches it, or when no such recognizer was checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from faceguard.manifest import FaceRecord, fooled
from faceguard.words import plural


@dataclass(frozen=True)
class Verdict:
    """(fooled, measured) recognizers, split by whether the cloak was made on them.

    Attributes:
        made_on: recognizers the cloak was made on.
        not_made_on: installed recognizers it was not made on (measured when present).
        still_matching: names of the recognizers that still match a face.
    """

    made_on: tuple[int, int]
    not_made_on: tuple[int, int]
    still_matching: tuple[str, ...]

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
        return out


def verdict(faces: Sequence[FaceRecord]) -> Verdict:
    """The verdict of the protected faces among ``faces``."""
    faces = [f for f in faces if f.protected]
    matching = sorted({m for f in faces for m, hit in f.recognised.items() if hit})
    return Verdict(fooled(faces, made_on=True), fooled(faces, made_on=False),
                   tuple(matching))
