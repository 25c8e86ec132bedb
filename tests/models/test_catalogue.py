"""The catalogue's choice of recognizers for an audit."""

from __future__ import annotations

from faceguard.models import catalogue


def test_audit_models_take_one_per_installed_family(monkeypatch) -> None:
    installed = {"dlib", "faceres", "faceres-deep"}
    monkeypatch.setattr(catalogue, "is_installed", lambda name: name in installed)
    assert catalogue.audit_models() == ["dlib", "faceres"]
    installed.discard("faceres")  # the variant stands in when the base is missing
    assert catalogue.audit_models() == ["dlib", "faceres-deep"]
