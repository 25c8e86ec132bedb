"""The album the user is working on: its photos, their faces, its people.

Shared by the three steps; views listen to its signals instead of to each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from faceguard.album import AlbumPerson, PhotoFaces, relative_paths
from faceguard.detect import iou
from faceguard.io import Skipped, search
from faceguard_gui.jobs import FoundPerson, ScannedPhoto


@dataclass
class AlbumPhoto:
    """One photo of the album and what the scan found."""

    path: Path
    scanned: bool = False
    faces: PhotoFaces | None = None
    error: str | None = None
    thumbnail: QImage | None = None

    @property
    def face_count(self) -> int:
        return len(self.faces.faces) if self.faces else 0

    @property
    def problem(self) -> str | None:
        """Why this photo needs attention (None when it is fine or not scanned yet)."""
        if not self.scanned:
            return None
        if self.error:
            return self.error
        if not self.face_count:
            return "no face found: nothing to protect in this photo"
        return None


class AlbumState(QObject):
    """The album: inputs as the user gave them, photos in order, people found.

    Signals:
        photos_changed(): photos were added or removed.
        photo_scanned(Path): one photo's scan result arrived.
        people_changed(): the people were grouped again.
        choice_changed(): the people to protect were (un)ticked.
    """

    photos_changed = Signal()
    photo_scanned = Signal(object)
    people_changed = Signal()
    choice_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.inputs: list[Path] = []
        self.found: dict[Path, list[Path]] = {}  # input -> its photos (found once)
        self.skipped: list[Skipped] = []  # files in the added folders that are not photos
        self.photos: dict[Path, AlbumPhoto] = {}
        self.people: list[FoundPerson] = []
        self.scan_models: tuple[str, ...] = ()
        self.chosen: list[AlbumPerson] = []
        self.names: dict[tuple[Path, tuple], str] = {}  # (photo, box) -> name the user gave
        self.face_choices: dict[Path, dict[int, bool]] = {}  # clicked faces: cloak or not
        # photo -> (box, cloak) of the faces clicked, until a new look finds them again
        self._clicked_before: dict[Path, list[tuple[tuple, bool]]] = {}

    def add(self, paths: Iterable[Path]) -> list[Path]:
        """Add photos and folders (folders: every photo inside); returns the new photos.

        Files with an unknown suffix are kept too, so the scan can say why they fail.
        """
        new: list[Path] = []
        for given in paths:
            given = Path(given).resolve()
            if given in self.inputs:
                continue
            if given.is_dir():
                result = search([given])
                found = result.photos
                self.skipped += result.skipped
            elif given.is_file():
                if given in self.photos:  # already there through its folder
                    continue
                found = [given]
            else:  # e.g. given on the command line, or a recent folder since removed
                self.skipped.append(Skipped(given, "no such file or folder"))
                continue
            self.inputs.append(given)
            self.found[given] = found
            for path in found:
                if path not in self.photos:
                    self.photos[path] = AlbumPhoto(path)
                    new.append(path)
        if new:
            self.photos_changed.emit()
        return new

    def photo_jobs(self) -> list[tuple[Path, Path]]:
        """(photo, output-relative path) of every photo, as found when they were added."""
        return relative_paths([(given, self.found[given]) for given in self.inputs])

    def clear(self) -> None:
        self.inputs, self.photos, self.people, self.chosen = [], {}, [], []
        self.found, self.skipped, self.names, self.face_choices = {}, [], {}, {}
        self._clicked_before = {}
        self.scan_models = ()
        self.photos_changed.emit()
        self.people_changed.emit()
        self.choice_changed.emit()

    def choose(self, people: list[AlbumPerson]) -> None:
        """Set the people to protect."""
        self.chosen = list(people)
        self.choice_changed.emit()

    def record(self, photo: ScannedPhoto) -> None:
        """Store one photo's scan result (faces clicked before a new look keep their
        choice, known again by their boxes)."""
        entry = self.photos.get(photo.path)
        if entry is None:
            return
        entry.scanned, entry.faces, entry.error = True, photo.faces, photo.error
        entry.thumbnail = photo.thumbnail
        clicked = self._clicked_before.pop(photo.path, [])
        for j, face in enumerate(photo.faces.faces if photo.faces else []):
            for box, cloak in clicked:
                if _same_face(photo.path, face.box, photo.path, box):
                    self.face_choices.setdefault(photo.path, {})[j] = cloak
        self.photo_scanned.emit(photo.path)

    def set_people(self, people: list[FoundPerson]) -> None:
        """New grouping (after photos were added): people chosen before stay chosen, and
        named ones keep their names, recognised by their faces (photo and box), since
        the grouping numbers people anew."""
        before = [(path, face.box) for person in self.chosen for path, face in person.faces]
        # a photo taken out while the grouping ran is out of its people too
        people = [FoundPerson(kept, f.chip) for f in people
                  if (kept := self._in_album(f.person)) is not None]
        for found in people:
            name = next((name for path, face in found.person.faces
                         for (p, box), name in self.names.items()
                         if _same_face(path, face.box, p, box)), None)
            if name is not None:
                found.person = found.person.renamed(name)
        self.people = people
        self.chosen = [f.person for f in people
                       if any(_same_face(path, face.box, p, box)
                              for path, face in f.person.faces for p, box in before)]
        self.people_changed.emit()
        self.choice_changed.emit()

    def look_again(self) -> None:
        """Forget every photo's faces, to be looked for again (with other detector
        settings); the people chosen or named, and the faces clicked, are known again by
        their faces' boxes (a face's number may change)."""
        for path, choices in self.face_choices.items():
            faces = self.photos[path].faces
            self._clicked_before[path] = [(faces.faces[j].box, cloak)
                                          for j, cloak in choices.items()] if faces else []
        for photo in self.photos.values():
            photo.scanned, photo.faces, photo.error = False, None, None
        self.face_choices = {}
        self.photos_changed.emit()
        self.choice_changed.emit()

    def _in_album(self, person: AlbumPerson) -> AlbumPerson | None:
        """``person`` without the photos no longer in the album (None: none left)."""
        for path in {p for p, _ in person.faces} - self.photos.keys():
            if (person := person.without(path)) is None:
                return None
        return person

    def rename(self, person: AlbumPerson, name: str) -> None:
        """Call a person ``name`` (it goes into the manifest and the report)."""
        name = name.strip()
        if not name or name == person.name:
            return
        for path, face in person.faces:
            self.names[path, face.box] = name
        renamed = person.renamed(name)
        for found in self.people:
            if found.person is person:
                found.person = renamed
        self.chosen = [renamed if p is person else p for p in self.chosen]
        self.people_changed.emit()
        self.choice_changed.emit()

    def remove(self, path: Path) -> None:
        """Take one photo out of the album (the file stays where it is)."""
        if self.photos.pop(path, None) is None:
            return
        for given, found in self.found.items():
            self.found[given] = [p for p in found if p != path]
        self.inputs = [g for g in self.inputs if g != path]
        self.found.pop(path, None)  # a photo given on its own
        self.face_choices.pop(path, None)
        self._clicked_before.pop(path, None)
        people = []
        for found in self.people:
            if (rest := found.person.without(path)) is not None:
                people.append(FoundPerson(rest, found.chip))
        self.chosen = [rest for p in self.chosen if (rest := p.without(path)) is not None]
        self.people = people
        self.photos_changed.emit()
        self.people_changed.emit()
        self.choice_changed.emit()

    def is_cloaked(self, path: Path, index: int, everyone: bool = False) -> bool:
        """Whether face ``index`` of a photo will be cloaked: as clicked, else as its
        person is chosen (or everyone is)."""
        choice = self.face_choices.get(path, {}).get(index)
        if choice is not None:
            return choice
        photo = self.photos.get(path)
        if everyone or photo is None or photo.faces is None:
            return everyone
        if index >= len(photo.faces.faces):  # asked by a window showing an earlier look
            return False
        box = photo.faces.faces[index].box
        return any(p == path and f.box == box for person in self.chosen for p, f in person.faces)

    def toggle_face(self, path: Path, index: int, everyone: bool = False) -> bool:
        """Cloak face ``index`` of a photo or leave it, the other way round from now;
        returns whether it will be cloaked."""
        cloak = not self.is_cloaked(path, index, everyone)
        self.face_choices.setdefault(path, {})[index] = cloak
        self.choice_changed.emit()
        return cloak

    def scanned_faces(self) -> list[PhotoFaces]:
        """The scan results of every readable photo (for grouping)."""
        return [p.faces for p in self.photos.values() if p.faces is not None]

    def unscanned(self) -> list[Path]:
        return [p.path for p in self.photos.values() if not p.scanned]

    def photos_of(self, people: Iterable[AlbumPerson]) -> list[Path]:
        """Photos where any of these people appear, in album order."""
        wanted = {path for person in people for path, _ in person.faces}
        return [p for p in self.photos if p in wanted]

    @property
    def problems(self) -> list[AlbumPhoto]:
        return [p for p in self.photos.values() if p.problem]


def _same_face(photo: Path, box: tuple, other_photo: Path, other_box: tuple) -> bool:
    """Whether two faces found are one: in one photo, their boxes mostly overlapping (a
    look with other detector settings moves a box by a pixel or two)."""
    return photo == other_photo and iou(box, other_box) >= 0.5
