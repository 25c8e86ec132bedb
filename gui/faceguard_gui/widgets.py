"""Small widgets the steps share: a step header and a list of ticks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)


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
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addWidget(self.text)


class TickList(QListWidget):
    """A list of named choices with a tick box each (defenses, recognizers, ...)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlternatingRowColors(False)
        self.setUniformItemSizes(True)

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
    """A word-wrapped label in the palette's muted text colour."""
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    palette = label.palette()
    palette.setColor(label.foregroundRole(), palette.color(palette.ColorRole.PlaceholderText))
    label.setPalette(palette)
    return label
