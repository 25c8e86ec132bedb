"""Words for people: counts with the right singular or plural, and plain names.

Every registry (defenses, cloak detectors, cloak methods) gives each entry a
:class:`Named`: the plain name the app, the CLI summary and the report show, and a
sentence about it; the technical name stays the registry key (in tooltips and JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: the audit's figures that are plain numbers, not shares: shown "0.95", never "95%" (a
#: distance of 0.95 thresholds is a face still matched)
RATIOS = frozenset({"mean_distance", "roc_auc"})


#: how to give the audit clean photos of known people, in the CLI and the app
GIVE_GALLERY = "(--gallery DIR; in the app, Known people)"
#: what a cloak run's and an audit's distances are to, when that flatters the cloak (on a
#: test album the faces missed against other photos of the person were 22-62%, against
#: these 47-86%: benchmarks/results/protection-album-other-photos-12-07.json)
AGAINST_OWN_PHOTOS = ("Measured against the photos the cloak was made to move away from "
                      "(its reference photos, or the album's own): a platform matches "
                      "against others, which may still match")


def figure_text(value, key: str = "") -> str:
    """A table's figure as the app and the report show it: shares as "95%", :data:`RATIOS`
    as "0.95", yes/no as "yes" or "", nothing measured as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.0%}" if 0 <= value <= 1 and key not in RATIOS else f"{value:.2f}"
    return str(value)


@dataclass(frozen=True)
class Named:
    """A registry entry's words.

    Attributes:
        label: the plain name people read, e.g. "re-upload (JPEG 75)".
        description: one plain sentence on what it is.
    """

    label: str
    description: str


def plural(n: int, word: str, many: str | None = None) -> str:
    """A count and its noun: 1 -> "1 photo", 3 -> "3 photos" (or ``many``).

    >>> plural(1, "person", "people"), plural(0, "face")
    ('1 person', '0 faces')
    """
    return f"{n} {word if n == 1 else many or word + 's'}"


def listed(items: Sequence[str], most: int = 4) -> str:
    """Items in a sentence: "a", "a and b", "a, b and c"; "" for none; beyond ``most``,
    the first few and how many others ("a, b, c and 12 others").

    >>> listed(["Sam", "Jo", "the person in a.jpg"])
    'Sam, Jo and the person in a.jpg'
    """
    if len(items) > most:
        items = [*items[:most - 1], f"{len(items) - most + 1} others"]
    return " and ".join(filter(None, [", ".join(items[:-1]), *items[-1:]]))
