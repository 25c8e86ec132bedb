"""Face recognizer quality on celeb24 and speed on this CPU, per installed model.

Quality (celeb24: 24 people x ~30 aligned 112x112 ArcFace crops), for ``dlib``,
``faceres``, ``mobileface`` and ``faceres-deep``, with
:func:`faceguard.models.human.verification_metrics`: verification ROC AUC over all pairs,
rank-1 identification (leave-one-out nearest neighbour), TAR at FAR 1e-2, plus the
genuine accept / false accept rates at the model's own same-person threshold. Each is
measured

- ``given``: on the given crops, warped from the ArcFace 112 template to the model's
  template (:func:`faceguard.align.warp`; a similarity transform, so a 224 model sees the
  crop upsampled 2x and dlib's wider 150 px chip has black borders where the crop ends);
- ``mtcnn``: through FaceGuard's own alignment: :class:`faceguard.detect.FaceDetector` on
  each bare crop, then :func:`faceguard.align.align_face` onto the model's template;
- ``mtcnn_padded``: the same with the crop edge-replicated by 56 px for detection only
  (MTCNN places landmarks badly when the face fills the frame); the crop itself is
  aligned, as in ``mtcnn``.

Also the faceres preprocessing check (BGR minus the VGG means vs 0..255 RGB, through
:func:`faceguard.models.human.load_human_model`), and speed per face at batch 1 and 16:
forward, and forward + backward to the input (what a cloak step costs), with the dlib
port side by side with dlib's own C++ ``compute_face_descriptor`` on the same chips.

Run from the repository root::

    .venv/bin/python benchmarks/recognition.py [--quick] [--threads 2] [--models dlib,...]

Writes ``benchmarks/results/recognition.json`` (``recognition-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import time

import common
import numpy as np
import torch

from faceguard.io import to_tensor  # (N, H, W, 3) uint8 -> (N, 3, H, W) in [0, 1]

MODELS = ("dlib", "faceres", "mobileface", "faceres-deep")
PAD = 56  # px of edge-replicated border around a 112 crop for the padded detection


def given_transform(model) -> np.ndarray:
    """(2, 3) transform from a celeb24 crop (ArcFace 112 template) to ``model``'s face."""
    from faceguard.align import ARCFACE_112, similarity_transform

    return similarity_transform(ARCFACE_112, model.template)


def aligned_given(model, crops: torch.Tensor) -> torch.Tensor:
    """The crops (N, 3, 112, 112) warped to the model's template: (N, 3, S, S)."""
    from faceguard.align import warp

    return warp(crops, given_transform(model), model.input_size)


def aligned_mtcnn(model, crops: torch.Tensor, landmarks: list[np.ndarray]) -> torch.Tensor:
    """Each crop aligned from its own landmarks (5, 2): (N, 3, S, S)."""
    from faceguard.align import align_face

    return torch.cat([align_face(crops[i:i + 1], landmarks[i], model.template,
                                 model.input_size) for i in range(len(crops))])


@torch.no_grad()
def embed(model, faces: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """(N, 3, S, S) aligned faces -> (N, D) embeddings."""
    return torch.cat([model.embed(faces[i:i + batch_size])
                      for i in range(0, len(faces), batch_size)])


def rates_at_threshold(embeddings: torch.Tensor, labels: list[str], distance: str,
                       threshold: float) -> dict:
    """Genuine accept and false accept rates over all pairs at ``threshold`` (below = same)."""
    e = embeddings.double()
    if distance == "cosine":
        e = torch.nn.functional.normalize(e, dim=1)
        d = (1 - e @ e.T).numpy()
    else:
        d = torch.cdist(e, e).numpy()
    lab = np.asarray(labels)
    iu = np.triu_indices(len(lab), k=1)
    same, accept = (lab[:, None] == lab[None, :])[iu], d[iu] < threshold
    return {"threshold_used": threshold, "genuine_accept_rate": float(accept[same].mean()),
            "false_accept_rate": float(accept[~same].mean())}


def quality(model, faces: torch.Tensor, labels: list[str]) -> dict:
    from faceguard.models.human import verification_metrics

    emb = embed(model, faces)
    return {**verification_metrics(emb, labels, model.distance),
            "at_model_threshold": rates_at_threshold(emb, labels, model.distance,
                                                     model.threshold)}


def detect_landmarks(images: np.ndarray, pad: int) -> dict:
    """MTCNN landmarks (5, 2) in crop pixels for each crop; the given template where it
    finds no face (counted). Deviation = mean distance of the 5 points from ARCFACE_112."""
    import cv2

    from faceguard.align import ARCFACE_112
    from faceguard.detect import FaceDetector

    detector = FaceDetector(device="cpu")
    landmarks, found, deviation = [], [], []
    start = time.perf_counter()
    for im in images:
        x = cv2.copyMakeBorder(im, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else im
        faces = detector(x)
        if faces:  # the largest face: the crop's own
            points = faces[0].landmarks - pad
            deviation.append(float(np.linalg.norm(points - ARCFACE_112, axis=1).mean()))
        else:
            points = ARCFACE_112.copy()
        landmarks.append(points)
        found.append(bool(faces))
    seconds = time.perf_counter() - start
    return {"landmarks": landmarks, "found": np.array(found), "summary": {
        "pad_px": pad, "crops": len(images), "faces_found": int(sum(found)),
        "fallback_to_given_alignment": int(len(found) - sum(found)),
        "landmark_deviation_px_mean": float(np.mean(deviation)) if deviation else None,
        "landmark_deviation_px_median": common.median(deviation),
        "landmark_deviation_px_p90": float(np.quantile(deviation, 0.9)) if deviation else None,
        "seconds_per_crop": seconds / len(images)}}


def speed(model, crops: torch.Tensor, batches: tuple[int, ...], repeats: dict[int, int]
          ) -> dict:
    """Seconds per face: forward (inference mode) and forward + backward to the input."""
    out = {}
    for b in batches:
        x = aligned_given(model, crops[:b]).contiguous()

        def forward(x=x) -> None:
            with torch.inference_mode():
                model.embed(x)

        def forward_backward(x=x) -> None:
            xg = x.clone().requires_grad_(True)
            model.embed(xg).square().sum().backward()

        n = repeats[b]
        out[f"batch{b}"] = {
            "forward_s_per_face": common.time_call(forward, n, warmup=2) / b,
            "forward_backward_s_per_face": common.time_call(forward_backward, n, warmup=2) / b,
        }
    return out


def dlib_side_by_side(model, crops: torch.Tensor, batches: tuple[int, ...],
                      repeats: dict[int, int]) -> dict:
    """The dlib port against dlib's C++ ``compute_face_descriptor`` on the same uint8 chips."""
    import dlib

    from faceguard.models.dlib_format import dlib_model_path

    net = dlib.face_recognition_model_v1(str(dlib_model_path()))
    chips_t = aligned_given(model, crops[:max(batches)])
    chips = (chips_t.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    chips = np.ascontiguousarray(chips)
    x = to_tensor(chips)  # the port sees exactly the chips dlib sees
    out = {}
    for b in batches:
        xb = x[:b].contiguous()
        batch = [chips[i] for i in range(b)]

        def cpp(batch=batch) -> None:
            if len(batch) == 1:
                net.compute_face_descriptor(batch[0])
            else:
                net.compute_face_descriptor(batch)

        def port(xb=xb) -> None:
            with torch.inference_mode():
                model.embed(xb)

        n = repeats[b]
        cpp_s = common.time_call(cpp, n, warmup=1) / b
        port_s = common.time_call(port, n, warmup=2) / b
        out[f"batch{b}"] = {"dlib_cpp_s_per_face": cpp_s, "port_forward_s_per_face": port_s,
                            "port_speedup": cpp_s / port_s}
    reference = np.array([np.array(net.compute_face_descriptor(c)) for c in chips])
    with torch.inference_mode():
        ported = model.embed(x).double().numpy()
    out["agreement"] = {
        "chips": len(chips),
        "max_abs_difference": float(np.abs(reference - ported).max()),
        "max_euclidean_distance": float(np.linalg.norm(reference - ported, axis=1).max()),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 6 crops per person, fewer timing repeats")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated models (default {','.join(MODELS)})")
    parser.add_argument("--threads", default="2",
                        help="torch threads for the speed numbers; a comma list measures each "
                             "(default 2; the quality part runs with the first)")
    args = parser.parse_args()
    started = time.perf_counter()

    from faceguard.models import load_recognizer
    from faceguard.models.human import load_face_folder, load_human_model

    threads = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(threads[0])
    names = args.models.split(",")
    celeb24 = common.data_dir("celeb24")
    images, labels = load_face_folder(celeb24)
    if args.quick:
        keep = [i for i, lab in enumerate(labels) if labels[:i].count(lab) < 6]
        images, labels = images[keep], [labels[i] for i in keep]
    crops = to_tensor(images)
    print(f"celeb24: {len(images)} crops of {len(set(labels))} people", flush=True)

    detections = {"mtcnn": detect_landmarks(images, 0),
                  "mtcnn_padded": detect_landmarks(images, PAD)}
    for key, det in detections.items():
        print(f"{key}: {det['summary']}", flush=True)

    batches = (1, 16)
    repeats = {1: 5, 16: 2} if args.quick else {1: 15, 16: 4}
    results: dict = {"detection_on_crops": {k: d["summary"] for k, d in detections.items()},
                     "models": {}}
    for name in names:
        model = load_recognizer(name, device="cpu")
        torch.set_num_threads(threads[0])
        row: dict = {"input_size": model.input_size, "distance": model.distance,
                     "threshold": model.threshold, "family": model.family,
                     "preprocessing": getattr(model, "preprocessing", "rgb minus mean / 256"),
                     "template": model.template.tolist()}
        given = aligned_given(model, crops)
        row["embedding_dim"] = int(embed(model, given[:1]).shape[1])
        if model.input_size != 112 and name != "dlib":  # the warp is a plain 2x upsampling?
            resized = torch.nn.functional.interpolate(crops, size=model.input_size,
                                                      mode="bilinear", align_corners=False)
            diff = (given - resized).abs()
            # the warp samples zeros half a pixel outside the crop, a resize repeats the edge
            row["given_warp_vs_bilinear_resize"] = {
                "max_abs": float(diff.max()),
                "max_abs_without_outer_pixel": float(diff[..., 1:-1, 1:-1].max())}
        row["given"] = quality(model, given, labels)
        del given
        for key, det in detections.items():
            faces = aligned_mtcnn(model, crops, det["landmarks"])
            row[key] = quality(model, faces, labels)
            found = det["found"]
            if not found.all():
                row[key]["detected_only"] = quality(
                    model, faces[torch.from_numpy(found)],
                    [lab for lab, ok in zip(labels, found, strict=True) if ok])
            del faces
        print(f"{name}: " + "; ".join(
            f"{k} AUC {row[k]['auc']:.3f} rank-1 {row[k]['rank1']:.3f} TAR {row[k]['tar']:.3f}"
            for k in ("given", *detections)), flush=True)
        row["speed"] = {}
        for t in threads:
            torch.set_num_threads(t)
            row["speed"][f"threads{t}"] = speed(model, crops, batches, repeats)
            if name == "dlib":
                row["speed"][f"threads{t}"]["dlib_cpp_side_by_side"] = dlib_side_by_side(
                    model, crops, batches, repeats)
        print(f"{name} speed: {row['speed']}", flush=True)
        results["models"][name] = row
        del model

    torch.set_num_threads(threads[0])
    if "faceres" in names:  # the preprocessing check, through the package loader
        check = {}
        for pre in ("bgr_mean", "rgb255"):
            model = load_human_model("faceres", preprocessing=pre)
            check[pre] = quality(model, aligned_given(model, crops), labels)
            del model
        results["faceres_preprocessing"] = check
        print("faceres preprocessing: " + "; ".join(
            f"{p} AUC {m['auc']:.3f} rank-1 {m['rank1']:.3f} TAR {m['tar']:.3f}"
            for p, m in check.items()), flush=True)

    settings = {
        "celeb24": str(celeb24),
        "crops": len(images),
        "people": len(set(labels)),
        "models": names,
        "loader": "faceguard.models.load_recognizer (installed, converted models); the "
                  "preprocessing check uses faceguard.models.human.load_human_model",
        "metrics": "faceguard.models.human.verification_metrics: AUC over all pairs, rank-1 "
                   "leave-one-out nearest neighbour, TAR at FAR 1e-2 (impostor quantile)",
        "alignment": {
            "given": "warp(crop, similarity_transform(ARCFACE_112, model.template), size)",
            "mtcnn": "FaceDetector() on the bare 112 crop, largest face, then "
                     "align_face(crop, landmarks, model.template, model.input_size)",
            "mtcnn_padded": f"as mtcnn, detection on the crop edge-replicated by {PAD} px",
            "no_face": "falls back to the given alignment (counted; detected_only metrics "
                       "are added when it happens)",
        },
        "speed": {"torch_threads": threads, "batches": list(batches),
                  "repeats": {f"batch{b}": n for b, n in repeats.items()},
                  "timing": "median of repeats after 2 warm-up calls, divided by the batch",
                  "forward": "model.embed under torch.inference_mode()",
                  "forward_backward": "embed(x).square().sum().backward(), gradient to the "
                                      "input only (weights frozen)",
                  "input": "given crops aligned to the model template (alignment not timed)",
                  "dlib_cpp": "dlib.face_recognition_model_v1.compute_face_descriptor on the "
                              "same uint8 150x150 chips (a list for batch 16); dlib's own "
                              "threading, not torch's"},
    }
    # other models than the default set go to their own file, not over recognition.json
    name = "recognition" if tuple(names) == MODELS else "recognition-" + "-".join(names)
    out = common.write_results(name, settings, results, quick=args.quick,
                               started=started)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
