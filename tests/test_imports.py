"""Which way imports go: the layout of GUIDE.md section 1, checked on the source.

Every ``import`` and ``from ... import`` is read from the files (top-level and inside
functions alike), without running them.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[0] == "gui":
        parts = parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) pairs a file imports (name None for ``import module``)."""
    out = []
    package = _module(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            out += [(base, a.name) for a in node.names]
    return out


def _files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def _imported(folder: str) -> dict[str, list[tuple[str, str | None]]]:
    return {str(p.relative_to(REPO)): _imports(p) for p in _files(folder)}


def _is(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_audit_never_imports_the_cloak():
    bad = [(f, m) for f, imps in _imported("faceguard/audit").items()
           for m, name in imps if _is(m, "faceguard.cloak")
           or (m == "faceguard" and name == "cloak")]
    assert not bad, bad


def test_settings_and_album_import_nothing_from_the_cloak():
    for rel in ("faceguard/settings.py", "faceguard/album.py"):
        bad = [m for m, name in _imports(REPO / rel) if _is(m, "faceguard.cloak")]
        assert not bad, (rel, bad)


def test_shells_import_only_public_core_names():
    """The CLI and the GUI use the core's public names, never a private ``_name``."""
    bad = []
    for folder in ("faceguard/cli", "gui/faceguard_gui"):
        for f, imps in _imported(folder).items():
            for m, name in imps:
                if not _is(m, "faceguard") or _is(m, "faceguard.cli"):
                    continue
                if any(map(_private, m.split("."))) or _private(name or ""):
                    bad.append((f, m, name))
    assert not bad, bad


def test_the_core_never_imports_the_shells():
    bad = [(f, m) for f, imps in _imported("faceguard").items() for m, _ in imps
           if _is(m, "faceguard_gui") or (_is(m, "faceguard.cli") and "/cli/" not in f
                                          and not f.endswith("__main__.py"))]
    assert not bad, bad


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_models_have_no_import_cycle():
    """catalogue <- install -> registry -> human -> catalogue: no module reaches itself
    (the package's ``__init__``, which gathers the public names, left aside)."""
    modules = {_module(p) for p in _files("faceguard/models")} - {"faceguard.models"}
    graph = {}
    for f, imps in _imported("faceguard/models").items():
        targets = {f"{m}.{name}" if f"{m}.{name}" in modules else m for m, name in imps}
        graph[_module(REPO / f)] = targets & modules

    def cycle(path: list[str]) -> list[str] | None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == path[0]:
                return [*path, nxt]
            if nxt not in path and (found := cycle([*path, nxt])):
                return found
        return None

    cycles = [c for m in sorted(modules) if (c := cycle([m]))]
    assert not cycles, cycles
