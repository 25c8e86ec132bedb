"""The core never imports Qt: importing every module of ``faceguard`` leaves Qt unloaded.

The GUI (``faceguard_gui``) imports the core, never the reverse (napari's rule), so the
CLI, servers and notebooks never pay for, or depend on, a GUI toolkit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib, pkgutil, sys
import faceguard
names = sorted(m.name for m in pkgutil.walk_packages(faceguard.__path__, "faceguard.")
               if not m.name.endswith("__main__"))  # __main__ would run the CLI
if sys.argv[1:] == ["--no-imports"]:
    names = []
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
qt = sorted(m for m in sys.modules if m.split(".")[0] in
            ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "qtpy"))
print(len(names))
print("|".join(failed))
print("|".join(qt))
"""


def test_importing_every_core_module_never_imports_qt():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True,
                         text=True, timeout=600, check=True).stdout.splitlines()
    count, failed, qt = int(out[0]), out[1], out[2]
    assert count > 30  # every module was tried (the package has dozens)
    assert failed == "", f"core modules that failed to import: {failed}"
    assert qt == "", f"Qt was imported by the core: {qt}"


def test_the_check_would_see_qt(tmp_path):
    """The same check run after importing PySide6 does report it (so it can fail)."""
    script = "import PySide6.QtCore\n" + SCRIPT
    out = subprocess.run([sys.executable, "-c", script, "--no-imports"], cwd=REPO,
                         capture_output=True, text=True, timeout=600,
                         check=True).stdout.splitlines()
    assert "PySide6.QtCore" in out[2].split("|")
