"""Derive the CLIP tokenizer files Atelier ships (resources/tokenizers/clip/) from the BPE vocab
inside the open-clip-torch wheel, so loading a model never needs the Hugging Face hub.

How the files were made (run once; the output is committed, open-clip-torch is not a runtime
dependency):

    pip install open-clip-torch==3.3.0          # any version shipping bpe_simple_vocab_16e6.txt.gz
    python packaging/derive_clip_tokenizer.py   # or: --bpe PATH/TO/bpe_simple_vocab_16e6.txt.gz

The derivation is the one OpenAI's CLIP `SimpleTokenizer` does at start-up: the first line of
the gzip is a version header, the next 49152 - 256 - 2 lines are the merges; the vocab is the 256
byte symbols, the same with the end-of-word suffix `</w>`, one entry per merge, and the two
special tokens. Ids therefore match OpenAI CLIP (and Hugging Face's openai/clip-vit-large-patch14
files): "a photo of a cat" -> [49406, 320, 1125, 539, 320, 2368, 49407], which this script checks
before it writes anything.

Outputs (gzip, fixed mtime so the bytes are reproducible):
    resources/tokenizers/clip/vocab.json.gz   token -> id, Hugging Face `vocab.json` format
    resources/tokenizers/clip/merges.txt.gz   Hugging Face `merges.txt` format
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path

BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
CHECK_TEXT = "a photo of a cat"
CHECK_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]
OUT_DIR = Path(__file__).resolve().parents[1] / "resources" / "tokenizers" / "clip"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def find_bpe_file() -> Path:
    """The BPE file inside the installed open_clip package, found without importing it."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("open_clip is not installed; pass --bpe PATH to the BPE vocab gzip")
    path = Path(next(iter(spec.submodule_search_locations))) / BPE_NAME
    if not path.is_file():
        raise SystemExit(f"{path} not found; pass --bpe PATH")
    return path


def derive(bpe_path: Path) -> tuple[dict[str, int], list[str]]:
    """The CLIP vocab (token -> id) and merge list from OpenAI's BPE vocab gzip."""
    lines = gzip.decompress(bpe_path.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : N_MERGES + 1]
    if len(merges) != N_MERGES or any(len(m.split()) != 2 for m in merges):
        raise SystemExit(f"{bpe_path}: expected {N_MERGES} merge lines of two symbols each")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != 49408:
        raise SystemExit(f"derived vocab has {len(vocab)} distinct tokens, expected 49408")
    return vocab, merges


def check(vocab: dict[str, int], merges: list[str]) -> None:
    """Tokenize the reference text with transformers' CLIPTokenizer and compare to OpenAI's ids."""
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer(vocab, [tuple(m.split()) for m in merges])
    ids = tok(CHECK_TEXT)["input_ids"]
    if ids != CHECK_IDS:
        raise SystemExit(f"tokenizer check failed: {CHECK_TEXT!r} -> {ids}, expected {CHECK_IDS}")


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with mtime 0 and no file name, so the same input always gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Derive, check and write the tokenizer files; print their sizes and sha256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpe", type=Path, default=None, help=f"path to {BPE_NAME}")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    bpe_path = args.bpe or find_bpe_file()
    vocab, merges = derive(bpe_path)
    check(vocab, merges)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "vocab.json.gz": json.dumps(vocab, ensure_ascii=False).encode("utf-8"),
        "merges.txt.gz": ("#version: 0.2\n" + "\n".join(merges) + "\n").encode("utf-8"),
    }
    for name, data in files.items():
        blob = gzip_bytes(data)
        (args.out / name).write_bytes(blob)
        print(f"{args.out / name}: {len(blob)} bytes, sha256 {hashlib.sha256(blob).hexdigest()}")
    print(f"source: {bpe_path} (sha256 {hashlib.sha256(bpe_path.read_bytes()).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
