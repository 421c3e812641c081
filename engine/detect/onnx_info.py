"""What a detector needs to know about an ONNX file before running it (its image input's name,
shape and element type, and the metadata_props strings), read straight from the protobuf wire
format so that neither backend has to load the model twice and the `onnx` package (a test
dependency) is not needed at run time.

Field numbers are those of onnx.proto3: ModelProto.graph = 7, ModelProto.metadata_props = 14;
GraphProto.initializer = 5, input = 11; ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type
= 1; TypeProto.Tensor.elem_type = 1, shape = 2; TensorShapeProto.dim = 1; Dimension.dim_value = 1;
TensorProto.name = 8; StringStringEntryProto.key = 1, value = 2."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
ELEM_FLOAT, ELEM_FLOAT16 = 1, 10  # TensorProto.DataType


class OnnxFormatError(ValueError):
    """Bytes that are not a readable ONNX model."""


@dataclass(frozen=True)
class OnnxInfo:
    """The model's first non-initializer graph input and its metadata_props; a dimension is None
    where the model leaves it dynamic."""

    input_name: str
    input_shape: tuple[int | None, ...]
    input_elem_type: int
    metadata: dict[str, str]


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise OnnxFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise OnnxFormatError("varint longer than 10 bytes")


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one message: ints for varint/fixed fields, bytes views otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxFormatError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(data):
                raise OnnxFormatError("truncated fixed-size field")
            yield number, int.from_bytes(data[pos:pos + size], "little")
            pos += size
        elif wire == _BYTES:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise OnnxFormatError(f"field {number} runs {pos + size - len(data)} bytes past the end")
            yield number, data[pos:pos + size]
            pos += size
        else:
            raise OnnxFormatError(f"unsupported protobuf wire type {wire}")


def _bytes_fields(data: memoryview, number: int) -> list[memoryview]:
    return [v for n, v in _fields(data) if n == number and isinstance(v, memoryview)]


def _text(data: memoryview) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OnnxFormatError(f"a name is not UTF-8 ({exc})") from None


def _first(data: memoryview, number: int) -> memoryview | None:
    found = _bytes_fields(data, number)
    return found[0] if found else None


def _dimension(dim: memoryview) -> int | None:
    for number, value in _fields(dim):
        if number == 1 and isinstance(value, int):
            return value if value > 0 else None
    return None  # dim_param (a symbolic name) or unset: dynamic


def _value_info(info: memoryview) -> tuple[str, tuple[int | None, ...], int]:
    name_field = _first(info, 1)
    type_proto = _first(info, 2)
    tensor = _first(type_proto, 1) if type_proto is not None else None
    if name_field is None or tensor is None:
        raise OnnxFormatError("a graph input has no name or is not a tensor")
    elem_type = next((v for n, v in _fields(tensor) if n == 1 and isinstance(v, int)), 0)
    shape = _first(tensor, 2)
    dims = tuple(_dimension(d) for d in _bytes_fields(shape, 1)) if shape is not None else ()
    return _text(name_field), dims, elem_type


def read_onnx_info(data: bytes) -> OnnxInfo:
    """The image input and metadata of a serialized ONNX ModelProto."""
    model = memoryview(data)
    graph = _first(model, 7)
    if graph is None:
        raise OnnxFormatError("no graph (not an ONNX model)")
    initializers = set()
    for tensor in _bytes_fields(graph, 5):
        name = _first(tensor, 8)
        if name is not None:
            initializers.add(_text(name))
    inputs = [_value_info(v) for v in _bytes_fields(graph, 11)]
    inputs = [i for i in inputs if i[0] not in initializers]  # IR < 4 lists weights as inputs too
    if not inputs:
        raise OnnxFormatError("the graph has no input")
    metadata: dict[str, str] = {}
    for entry in _bytes_fields(model, 14):
        key, value = _first(entry, 1), _first(entry, 2)
        if key is not None:
            metadata[_text(key)] = _text(value) if value is not None else ""
    name, shape, elem_type = inputs[0]
    return OnnxInfo(name, shape, elem_type, metadata)
