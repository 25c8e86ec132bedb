"""The output folder: where it may be, and making it."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceguard.album import AlbumError
from faceguard.output_folder import make_outdir

# /proc takes no new folders, even from root (a read-only folder would not stop root)
UNMAKEABLE = Path("/proc/faceguard-test/out")
needs_proc = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")


@needs_proc
def test_a_folder_the_system_refuses_is_one_line():
    with pytest.raises(AlbumError, match=r"^the output folder /proc/faceguard-test/out cannot "
                                         r"be made \(No such file or directory\)$"):
        make_outdir(UNMAKEABLE)


def test_a_folder_is_made_with_its_parents(tmp_path):
    make_outdir(tmp_path / "a" / "b")
    make_outdir(tmp_path / "a" / "b")  # already there: fine
    assert (tmp_path / "a" / "b").is_dir()


def test_one_run_at_a_time_writes_into_a_folder(tmp_path):
    """Two runs into one folder each rewrote the whole manifest after every photo: the
    last one's won, and could call the other run's plain copies "cloaked"."""
    pytest.importorskip("fcntl")
    from faceguard.output_folder import hold
    from faceguard.pipeline import CloakJob, cloak_album

    first = hold(tmp_path)
    with pytest.raises(AlbumError, match=f"another FaceGuard run is writing into {tmp_path}"):
        hold(tmp_path)
    photos = tmp_path.parent / f"{tmp_path.name}-photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"not read before the refusal")
    job = CloakJob(inputs=[photos], outdir=tmp_path, protect_all=True)
    with pytest.raises(AlbumError, match="another FaceGuard run"):  # before any work
        next(cloak_album(job, detector=object(), load_ensemble=lambda names: 1 / 0))
    first.close()
    hold(tmp_path).close()


def test_a_folder_that_cannot_be_written_into_is_said_first(tmp_path, monkeypatch):
    """(Root writes into read-only folders, so the system's refusal is stood in for.)
    It failed after the scan, naming the manifest's temporary file."""
    import tempfile

    def refused(**kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    with pytest.raises(AlbumError, match=r"^the output folder .* cannot be written into "
                                         r"\(Permission denied\)$"):
        make_outdir(tmp_path)


def test_an_unreadable_manifest_is_said_before_any_work(tmp_path):
    from faceguard.manifest import MANIFEST_NAME
    from faceguard.pipeline import CloakJob, cloak_album

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MANIFEST_NAME).write_text("{bad")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"not read before the refusal")
    job = CloakJob(inputs=[tmp_path / "in"], outdir=tmp_path / "out", protect_all=True)
    with pytest.raises(AlbumError, match="unreadable manifest .*; move it away to start"):
        next(cloak_album(job, detector=object(), load_ensemble=lambda names: 1 / 0))
