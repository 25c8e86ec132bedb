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
