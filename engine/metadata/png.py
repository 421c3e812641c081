"""PNG text chunks: a bounded, CRC-checked reader and a writer that embeds a job's settings.

The reader walks the chunk list itself instead of decoding the image, so a huge, truncated or
hostile file is rejected with a precise message before any pixel is touched.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 4 * 1024 * 1024  # one text chunk, after decompression
MAX_CHUNKS = 100_000
TEXT_CHUNK_TYPES = (b"tEXt", b"zTXt", b"iTXt")


class MetadataError(ValueError):
    """An image's metadata cannot be read: not a PNG, truncated, corrupt or hostile chunks."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


@dataclass(frozen=True)
class _Chunk:
    kind: bytes
    data: bytes


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise MetadataError("", f"truncated file: {what} ends early")
    return data


def _inflate(data: bytes, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES + 1)
    except zlib.error as exc:
        raise MetadataError("", f"{what}: corrupt compressed text ({exc})") from None
    if len(out) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        raise MetadataError("", f"{what}: text larger than {MAX_TEXT_BYTES} bytes")
    return out


def _decode_text_chunk(chunk: _Chunk) -> tuple[str, str]:
    kind = chunk.kind.decode("ascii")
    key, sep, rest = chunk.data.partition(b"\x00")
    if not sep or not 1 <= len(key) <= 79:
        raise MetadataError("", f"{kind} chunk without a valid keyword")
    keyword = key.decode("latin-1")
    what = f"{kind} chunk {keyword!r}"
    if chunk.kind == b"tEXt":
        return keyword, rest.decode("latin-1")
    if chunk.kind == b"zTXt":
        if not rest or rest[0] != 0:
            raise MetadataError("", f"{what}: unknown compression method")
        return keyword, _inflate(rest[1:], what).decode("latin-1")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, text (UTF-8)
    if len(rest) < 2:
        raise MetadataError("", f"{what}: truncated header")
    compressed, method = rest[0], rest[1]
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) != 3:
        raise MetadataError("", f"{what}: truncated header")
    text = parts[2]
    if compressed:
        if method != 0:
            raise MetadataError("", f"{what}: unknown compression method")
        text = _inflate(text, what)
    try:
        return keyword, text.decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError("", f"{what}: text is not valid UTF-8") from None


def _iter_chunks(f: BinaryIO, size: int) -> list[_Chunk]:
    if f.read(8) != PNG_SIGNATURE:
        raise MetadataError("", "not a PNG file")
    chunks: list[_Chunk] = []
    for _ in range(MAX_CHUNKS):
        length, kind = struct.unpack(">I4s", _read_exact(f, 8, "chunk header"))
        if length > size - f.tell():
            raise MetadataError("", f"truncated file: {kind!r} chunk claims {length} bytes")
        if kind in TEXT_CHUNK_TYPES:
            if length > MAX_TEXT_BYTES:
                raise MetadataError("", f"{kind.decode()} chunk of {length} bytes is too large")
            data = _read_exact(f, length, "text chunk")
            (crc,) = struct.unpack(">I", _read_exact(f, 4, "chunk CRC"))
            if zlib.crc32(kind + data) != crc:
                raise MetadataError("", f"corrupt {kind.decode()} chunk (CRC mismatch)")
            chunks.append(_Chunk(kind, data))
        else:
            f.seek(length + 4, io.SEEK_CUR)
        if kind == b"IEND":
            return chunks
    raise MetadataError("", f"more than {MAX_CHUNKS} chunks")


def read_png_text(path: Path) -> dict[str, str]:
    """All text chunks of a PNG file as {keyword: text}; MetadataError on a bad file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            chunks = _iter_chunks(f, size)
    except MetadataError as exc:
        raise MetadataError(str(path), exc.reason) from None
    except (FileNotFoundError, IsADirectoryError):
        raise MetadataError(str(path), "no such file") from None
    except OSError as exc:
        raise MetadataError(str(path), exc.strerror or str(exc)) from None
    texts: dict[str, str] = {}
    for chunk in chunks:
        try:
            keyword, text = _decode_text_chunk(chunk)
        except MetadataError as exc:
            raise MetadataError(str(path), exc.reason) from None
        texts[keyword] = text
    return texts


def png_bytes_with_text(image: "PIL.Image.Image", texts: dict[str, str]) -> bytes:  # noqa: F821
    """Encode a PIL image as PNG with the given text chunks (UTF-8 iTXt where latin-1 won't do)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for keyword, text in texts.items():
        try:
            text.encode("latin-1")
            info.add_text(keyword, text)
        except UnicodeEncodeError:
            info.add_itxt(keyword, text)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()
