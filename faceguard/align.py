"""Face alignment as differentiable warps: photo -> aligned face, and back.

A recognizer sees a face aligned to its own 5-point template. FaceGuard optimises the
cloak in the photo's own full-resolution pixels, so the photo -> face warp must be
differentiable: it is an ``affine_grid``/``grid_sample`` warp, preceded by an
average-pool when the face is larger than the model input, so that every photo pixel
(not only the few that bilinear sampling would touch) receives a gradient.

Coordinates are pixel coordinates with pixel centres on integers (as OpenCV), x to the
right, y down. A transform is a (2, 3) float64 numpy matrix ``A`` mapping a point
``p`` (column ``[x, y, 1]``) to ``A @ p``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: The 112x112 ArcFace (insightface) template: where the 5 MTCNN landmarks (left eye,
#: right eye, nose tip, left and right mouth corner, as seen in the photo) sit.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two
    point patterns", without reflection.

    Args:
        src: (N, 2) points, e.g. landmarks in the photo.
        dst: (N, 2) points, e.g. the template.

    Returns:
        (2, 3) matrix A with ``dst ~ A @ [src; 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / s.var(0).sum()
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def invert(transform: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine transform."""
    full = np.vstack([transform, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) transform applying ``inner`` first, then ``outer``."""
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2]


def translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) transform to (N, 2) points."""
    return np.asarray(points, dtype=np.float64) @ transform[:, :2].T + transform[:, 2]


def jitter_landmarks(landmarks: np.ndarray, rng: np.random.Generator, shift: float = 0.04,
                     scale: float = 0.04, rotate: float = 4.0) -> np.ndarray:
    """Landmarks moved by a small random similarity transform, one per face.

    Recognizers of other people align faces with other detectors; optimising through
    slightly different alignments makes the cloak hold under theirs (alignment EOT).

    Args:
        landmarks: (5, 2) or (B, 5, 2).
        shift: largest shift, as a fraction of the face size (2.2 x the eye distance).
        scale: largest relative change of size.
        rotate: largest rotation, degrees.
    """
    marks = np.asarray(landmarks, dtype=np.float64)
    out = []
    for m in marks.reshape(-1, 5, 2):
        centre = m.mean(0)
        size = 2.2 * np.linalg.norm(m[1] - m[0])
        a = np.deg2rad(rng.uniform(-rotate, rotate))
        s = 1 + rng.uniform(-scale, scale)
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        out.append((m - centre) @ rot.T + centre + rng.uniform(-shift, shift, 2) * size)
    return np.stack(out).reshape(marks.shape)


def face_transform(landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(2, 3) transform from photo pixels to the aligned face of ``template``."""
    return similarity_transform(landmarks, template)


def source_region(transform: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    """Photo-pixel bounding box (x0, y0, x1, y1) of what an aligned face of ``size`` sees.

    Args:
        transform: photo -> face (2, 3) transform.
        size: side of the aligned face in pixels.
        margin: extra border in face pixels around the aligned square.
    """
    c = np.array([[-margin, -margin], [size + margin, -margin], [-margin, size + margin],
                  [size + margin, size + margin]]) - 0.5
    pts = transform_points(invert(transform), c)
    return np.concatenate([pts.min(0), pts.max(0)])


def _pixel_to_norm(width: int, height: int) -> np.ndarray:
    # grid_sample with align_corners=False: normalised = (2 * pixel + 1) / size - 1
    return np.array([[2.0 / width, 0.0, 1.0 / width - 1.0],
                     [0.0, 2.0 / height, 1.0 / height - 1.0]])


def warp(
    image: torch.Tensor,
    transform: np.ndarray,
    size: int | tuple[int, int],
    antialias: bool = True,
) -> torch.Tensor:
    """Differentiably warp ``image`` with ``transform`` (image pixels -> output pixels).

    Args:
        image: (B, C, H, W) tensor.
        transform: (2, 3) matrix mapping image pixel coordinates to output coordinates,
            or (B, 2, 3), one per image.
        size: output side, or (height, width).
        antialias: average-pool first when the warp shrinks by 2x or more, so that
            all source pixels contribute (and receive gradient).

    Returns:
        (B, C, out_h, out_w) tensor; outside the image is zero.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    transforms = np.broadcast_to(np.asarray(transform, dtype=np.float64),
                                 (image.shape[0], 2, 3))
    h, w = image.shape[-2:]
    scale = float(np.sqrt(np.abs(np.linalg.det(transforms[:, :, :2]))).max())  # out px / image px
    factor = int(1.0 / scale) if antialias and scale < 0.5 else 1
    if factor > 1:
        image = F.avg_pool2d(image, factor, ceil_mode=True)
        # pooled pixel j covers image pixels [j*f, j*f+f): its centre is j*f + (f-1)/2
        pooled_to_image = np.array([[factor, 0.0, (factor - 1) / 2],
                                    [0.0, factor, (factor - 1) / 2]])
        transforms = [compose(t, pooled_to_image) for t in transforms]
        h, w = image.shape[-2:]
    to_norm, from_norm = _pixel_to_norm(w, h), invert(_pixel_to_norm(out_w, out_h))
    theta = np.stack([compose(to_norm, compose(invert(t), from_norm)) for t in transforms])
    theta_t = torch.as_tensor(theta, dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta_t, [image.shape[0], image.shape[1], out_h, out_w],
                         align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def align_face(
    image: torch.Tensor, landmarks: np.ndarray, template: np.ndarray, size: int
) -> torch.Tensor:
    """Aligned face (B, 3, size, size) from a photo tensor (B, 3, H, W) and its landmarks (5, 2)."""
    return warp(image, face_transform(landmarks, template), size)


def feather_mask(
    height: int, width: int, feather: float = 0.15, ellipse: bool = True
) -> torch.Tensor:
    """(1, 1, H, W) mask in [0, 1]: 1 inside, falling smoothly to 0 at the border.

    Args:
        feather: width of the soft edge as a fraction of the shorter side.
        ellipse: inscribed ellipse (faces) rather than the whole rectangle.
    """
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    if ellipse:
        r = torch.sqrt(xx**2 + yy**2)
    else:
        r = torch.maximum(xx.abs(), yy.abs())
    edge = max(feather * 2, 1e-6)
    mask = ((1 - r) / edge).clamp(0, 1)
    mask = mask * mask * (3 - 2 * mask)  # smoothstep: no visible seam
    return mask[None, None]


def paste_back(
    photo: torch.Tensor,
    face: torch.Tensor,
    transform: np.ndarray,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Blend an aligned face back into the photo with a feathered mask.

    Args:
        photo: (B, C, H, W) photo.
        face: (B, C, s, s) aligned face (e.g. purified or cloaked).
        transform: the photo -> face transform used to align it.
        mask: (1, 1, s, s) blend weights in face space; default a feathered ellipse.

    Returns:
        (B, C, H, W) photo with the face region replaced, smoothly.
    """
    s = face.shape[-1]
    if mask is None:
        mask = feather_mask(s, s)
    mask = mask.to(face)
    h, w = photo.shape[-2:]
    inverse = invert(transform)
    back = warp(face * mask, inverse, (h, w), antialias=False)
    weight = warp(mask.expand(face.shape[0], 1, s, s), inverse, (h, w), antialias=False)
    return photo * (1 - weight) + back
