"""Image quality figures of a cloak: L-inf, PSNR and SSIM over the face region."""

from __future__ import annotations

import numpy as np


def linf(original: np.ndarray, cloaked: np.ndarray) -> float:
    """Largest per-pixel change, in grey levels (0-255). Arrays (H, W, 3) in [0, 1]."""
    return float(np.abs(cloaked.astype(np.float64) - original).max() * 255)


def psnr(original: np.ndarray, cloaked: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (inf when identical). Arrays in [0, 1]."""
    mse = float(np.mean((cloaked.astype(np.float64) - original) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def ssim(original: np.ndarray, cloaked: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) averaged over colour channels, in [-1, 1]."""
    from skimage.metrics import structural_similarity

    h, w = original.shape[:2]
    win = min(7, h, w)
    win -= 1 - win % 2  # odd window, as SSIM needs
    return float(structural_similarity(original, cloaked, data_range=1.0, channel_axis=2,
                                       win_size=max(win, 3)))


def face_quality(original: np.ndarray, cloaked: np.ndarray,
                 box: tuple[float, float, float, float]) -> dict[str, float]:
    """L-inf, PSNR and SSIM of the face box of two full-resolution photos (H, W, 3)."""
    # a face at the photo's edge has a box reaching past it: measure the part inside
    h, w = original.shape[:2]
    x0, y0 = (max(0, int(round(v))) for v in box[:2])
    x1, y1 = min(w, int(round(box[2]))), min(h, int(round(box[3])))
    a, b = original[y0:y1, x0:x1], cloaked[y0:y1, x0:x1]
    return {"linf": round(linf(a, b), 2), "psnr": round(psnr(a, b), 2),
            "ssim": round(ssim(a, b), 4)}
