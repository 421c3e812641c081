"""Tiny YOLOv8-format ONNX files whose head output is known: GlobalAveragePool over the
letterboxed input, a 1x1 Conv (weights x channel means + bias), Reshape to (1, 4 + nc, N)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_yolo_onnx(path: Path, bias: np.ndarray, weights: np.ndarray | None = None,
                    input_hw: tuple[int, int] | None = (64, 64), names: dict[int, str] | None = None,
                    transposed: bool = False, metadata: dict[str, str] | None = None,
                    half_input: bool = False) -> Path:
    """Write a model whose output[0, c, n] = bias[c, n] + weights[c, n] . (mean R, G, B of the
    (1, 3, H, W) input); `transposed` gives (1, N, 4 + nc) instead; input_hw None is dynamic;
    `names` is stored as ultralytics does (a dict literal), next to any other `metadata`;
    `half_input` takes a float16 image (as `yolo export half=True` does) and casts it."""
    c, n = bias.shape
    w = np.zeros((c, n, 3), np.float32) if weights is None else weights.astype(np.float32)
    conv_w = numpy_helper.from_array(w.reshape(c * n, 3, 1, 1), "conv_w")
    conv_b = numpy_helper.from_array(bias.astype(np.float32).reshape(c * n), "conv_b")
    shape = numpy_helper.from_array(np.array([1, c, n], np.int64), "shape")
    nodes = [helper.make_node("Cast", ["images"], ["images_f"], to=TensorProto.FLOAT)] if half_input else []
    nodes += [helper.make_node("GlobalAveragePool", ["images_f" if half_input else "images"], ["pooled"]),
             helper.make_node("Conv", ["pooled", "conv_w", "conv_b"], ["conv"], kernel_shape=[1, 1]),
             helper.make_node("Reshape", ["conv", "shape"], ["head" if transposed else "output0"])]
    out_shape = [1, c, n]
    if transposed:
        nodes.append(helper.make_node("Transpose", ["head"], ["output0"], perm=[0, 2, 1]))
        out_shape = [1, n, c]
    dims = [1, 3, *input_hw] if input_hw is not None else ["batch", 3, "height", "width"]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT16 if half_input else TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
        initializer=[conv_w, conv_b, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="atelier-tests")
    model.ir_version = 8
    props = dict(metadata or {})
    if names is not None:
        props.update(names=repr(names), task="detect")
    if props:
        helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
