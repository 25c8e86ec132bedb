"""Small widgets the steps share: a step header, a list of ticks, a muted note, a
scrolling column, a plot that fits its width; the file dialogs' photo filter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from faceguard.io import SUPPORTED_SUFFIXES

#: the file dialogs' filter for photos FaceGuard reads
PHOTO_FILTER = ("Photos (" + " ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES))
                + ");;All files (*)")


class FittingLabel(QLabel):
    """A word-wrapped label that claims the height its text needs at its width, so a
    crowded layout cannot cut it mid-line (it takes the room from stretchy neighbours).

    It sets that height as its minimum instead of answering height-for-width, which
    layouts honour only in part (a form squeezes its rows to fit the answer).
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return False

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(super().sizeHint().width(), self.minimumHeight())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self._fit()

    def _fit(self) -> None:
        needed = self.heightForWidth(self.width()) if self.text() else 0
        if needed != self.minimumHeight():
            self.setMinimumHeight(max(needed, 0))


class FittingImage(QLabel):
    """An image shown whole: scaled down (never up) to the label's width, aspect kept,
    so a wide plot (one column per recognizer) is never cut at the window's edge; its
    height follows. Text (a "no plot" message) shows as in any label."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # any width: the image shrinks to it instead of widening its column
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def setPixmap(self, pixmap: QPixmap) -> None:  # noqa: N802 - Qt's name
        self._source = pixmap
        if pixmap.isNull():
            super().setPixmap(pixmap)  # the image goes (and any text: set it after)
        self._fit()

    def clear(self) -> None:
        self._source = QPixmap()  # else the next resize shows the image again
        super().clear()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._source.isNull():  # a text, or nothing (QLabel.setPixmap clears the text)
            self.setMinimumHeight(self.fontMetrics().height() if self.text() else 0)
            return
        width = max(1, min(self.width(), self._source.width()))
        if width == self._source.width():
            shown = self._source
        else:
            shown = self._source.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
        super().setPixmap(shown)
        self.setMinimumHeight(shown.height())


class StepHeader(QWidget):
    """The title of a step and one sentence on what to do in it."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        self.title = QLabel(title)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title.setFont(font)
        self.text = FittingLabel(text)
        self.text.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addWidget(self.text)


class TickList(QListWidget):
    """A list of named choices with a tick box each (defenses, recognizers, ...)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlternatingRowColors(False)
        self.setUniformItemSizes(True)
        self.setMinimumHeight(self.fontMetrics().height() * 3 + 8)  # three rows, then scroll

    def set_choices(self, choices: Sequence[tuple[str, str, str]], ticked: Iterable[str],
                    disabled: Iterable[str] = ()) -> None:
        """Fill with (key, label, tooltip) choices; tick those in ``ticked``."""
        ticked, disabled = set(ticked), set(disabled)
        self.clear()
        for key, label, tip in choices:
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setToolTip(tip)
            flags = Qt.ItemFlag.ItemIsUserCheckable
            if key not in disabled:
                flags |= Qt.ItemFlag.ItemIsEnabled
            item.setFlags(flags)
            on = key in ticked and key not in disabled
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.addItem(item)

    def ticked(self) -> list[str]:
        """Keys of the ticked choices, in list order."""
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())
                if self.item(i).checkState() == Qt.CheckState.Checked]

    def set_ticked(self, keys: Iterable[str]) -> None:
        keys = set(keys)
        for i in range(self.count()):
            item = self.item(i)
            if item.flags() & Qt.ItemFlag.ItemIsEnabled:
                on = item.data(Qt.ItemDataRole.UserRole) in keys
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)


def note(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A word-wrapped :class:`FittingLabel` in the palette's muted text colour."""
    label = FittingLabel(text, parent)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    palette = label.palette()
    palette.setColor(label.foregroundRole(), palette.color(palette.ColorRole.PlaceholderText))
    label.setPalette(palette)
    return label


def scrolling(*widgets: QWidget, frame: bool = True) -> QScrollArea:
    """``widgets`` in a column that scrolls when the space is short (large fonts, small
    screens) instead of squeezing them; without ``frame``, borderless."""
    inner = QWidget()
    layout = QVBoxLayout(inner)
    if not frame:
        layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w)
    layout.addStretch(1)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(inner)
    if not frame:
        area.setFrameShape(QFrame.Shape.NoFrame)
    return area


class FolderField(QLineEdit):
    """A folder's path: whole while it is being edited, else elided in the middle
    (``/home/…/trip-protected``), or at the start where the folder's own name would be
    cut (``…/trip-protected``), with the whole path in the tooltip.

    :meth:`text` and :meth:`setText` are the whole path; ``textChanged`` fires when it
    changes, never when only the elided form does.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._path = ""
        self.textChanged.connect(self._typed)  # connected first: runs before the others

    def text(self) -> str:
        return self._path

    def setText(self, path: str) -> None:  # noqa: N802 - Qt's name
        changed = path != self._path
        self._path = path
        self._show()
        if changed:
            self.textChanged.emit(path)

    def _typed(self, text: str) -> None:
        self._path = text
        self.setToolTip(text)

    def _show(self) -> None:
        self.setToolTip(self._path)
        shown = self._path
        if not self.hasFocus():
            room = self.contentsRect().width() - self.textMargins().left() \
                - self.textMargins().right() - 8
            metrics, room = self.fontMetrics(), max(room, 0)
            shown = metrics.elidedText(self._path, Qt.TextElideMode.ElideMiddle, room)
            if not shown.endswith(Path(self._path).name):  # the folder's own name, whole
                shown = metrics.elidedText(self._path, Qt.TextElideMode.ElideLeft, room)
        if shown != super().text():
            self.blockSignals(True)
            super().setText(shown)
            self.blockSignals(False)

    def focusInEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._show_after(super().focusInEvent, event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._show_after(super().focusOutEvent, event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._show_after(super().resizeEvent, event)

    def _show_after(self, handler, event) -> None:
        handler(event)
        self._show()


class StepArea(QScrollArea):
    """A step, filling the window, that scrolls only when the window is smaller than
    the step's minimum size (large fonts, small screens) instead of cutting it.

    (Not ``setWidgetResizable``: for a step with wrapped text that sizes the step to
    its preferred height, so it would scroll even in a large window.)
    """

    def __init__(self, step: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidget(step)
        step.installEventFilter(self)  # its minimum size may change with its content

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        step, room = self.widget(), self.viewport().size()
        least = step.minimumSizeHint().expandedTo(step.minimumSize())
        step.resize(max(room.width(), least.width()), max(room.height(), least.height()))
