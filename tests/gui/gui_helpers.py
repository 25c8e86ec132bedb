"""Constants and helpers shared by the GUI tests (imported as ``gui_helpers``)."""

from __future__ import annotations

#: a cloak that takes a second or two per face on a CPU (enough to test the mechanics)
FAST = {"preset": "low", "eps": 8.0, "steps": 3, "robust": False, "models": ["dlib"],
        "audit_defenses": ["none", "jpeg75"], "audit_detectors": ["wlmp-linear"],
        "audit_models": ["dlib"]}

#: small album photos with one face each (two of one person, two of another; not img46,
#: whose necklace scores 0.92 as a face, see faceguard.mtcnn)
SMALL = {"a1": "person_img26/img45.jpg", "a2": "person_img26/img44.jpg",
         "b1": "person_img1/img5.jpg", "b2": "person_img1/img10.jpg"}

JOB_TIMEOUT = 300_000  # ms; the CPU is shared, so be generous


def wait_idle(qtbot, window) -> None:
    """Wait until the window's job (and any scan it queued) has finished."""
    qtbot.waitUntil(lambda: not window.jobs.busy and not window.ctx.album.unscanned(),
                    timeout=JOB_TIMEOUT)
