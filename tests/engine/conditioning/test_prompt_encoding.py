"""Prompt weighting, chunking and clip skip against A1111's documented behaviour and diffusers."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from engine.conditioning.clip import CHUNK_TOKENS, chunk_tokens, encode_prompt, pad_chunks
from engine.conditioning.prompt import parse_weighted_prompt
from engine.models.resources import RESOURCES_DIR, clip_tokenizer


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [  # the examples A1111 documents for its parser
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("\\(literal\\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
         [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
          (", sun, ", 1.1), ("sky", 1.4641), (".", 1.1)]),
        ("a red star <lora:ink:0.6>", [("a red star ", 1.0)]),
        ("cat BREAK dog", [("cat", 1.0), ("BREAK", -1.0), ("dog", 1.0)]),
        ("", [("", 1.0)]),
    ],
)
def test_parse_weighted_prompt(prompt: str, expected: list[tuple[str, float]]) -> None:
    got = [(f.text, round(f.weight, 6)) for f in parse_weighted_prompt(prompt)]
    assert got == [(t, round(w, 6)) for t, w in expected]


@pytest.fixture(scope="module")
def tokenizer():
    return clip_tokenizer(RESOURCES_DIR / "configs" / "sd1" / "tokenizer", RESOURCES_DIR / "tokenizers" / "clip")


@pytest.fixture(scope="module")
def encoder() -> CLIPTextModel:
    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                            num_attention_heads=4, max_position_embeddings=77)
    model = CLIPTextModel(config).eval()
    with torch.no_grad():  # a trained CLIP's final norm has a bias, so its outputs' mean is not ~0
        model.final_layer_norm.bias.copy_(torch.randn(32) * 0.5 + 0.3)
    return model


def test_plain_prompt_matches_diffusers_encoding(tokenizer, encoder) -> None:
    prompt = "a red star at the top left"
    ids = tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    reference = encoder(ids)[0]  # what diffusers' encode_prompt feeds the UNet
    ours = encode_prompt(tokenizer, encoder, prompt)
    assert ours.hidden.shape == (1, 77, 32) and ours.chunks == 1
    torch.testing.assert_close(ours.hidden, reference, rtol=0, atol=0)


def test_clip_skip_2_is_penultimate_layer_with_final_norm(tokenizer, encoder) -> None:
    ids = tokenizer("a blue ring", padding="max_length", max_length=77, return_tensors="pt").input_ids
    out = encoder(ids, output_hidden_states=True)
    expected = encoder.final_layer_norm(out.hidden_states[-2])
    torch.testing.assert_close(encode_prompt(tokenizer, encoder, "a blue ring", clip_skip=2).hidden, expected)
    with pytest.raises(ValueError, match="clip_skip"):
        encode_prompt(tokenizer, encoder, "x", clip_skip=0)


def test_weights_scale_tokens_and_keep_the_mean(tokenizer, encoder) -> None:
    plain = encode_prompt(tokenizer, encoder, "a red star").hidden
    weighted = encode_prompt(tokenizer, encoder, "a (red:1.5) star").hidden
    assert torch.allclose(weighted.mean(), plain.mean(), atol=1e-6)
    ratio = weighted / plain
    # token 2 ("red") is scaled 1.5x relative to its neighbours
    assert torch.allclose(ratio[0, 2] / ratio[0, 1], torch.full((32,), 1.5), atol=1e-4)
    assert torch.allclose(ratio[0, 3], ratio[0, 1], atol=1e-6)


def test_long_prompts_are_chunked_at_commas(tokenizer, encoder) -> None:
    words = ", ".join(f"red star number{i}" for i in range(40))
    chunks = chunk_tokens(tokenizer, words)
    assert len(chunks) >= 2
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    assert all(len(c.ids) <= CHUNK_TOKENS for c in chunks)
    assert chunks[0].ids[-1] == comma  # split right after a comma, not mid-phrase
    emb = encode_prompt(tokenizer, encoder, words)
    assert emb.hidden.shape == (1, 77 * len(chunks), 32)
    assert emb.chunks == len(chunks)


def test_break_forces_a_new_chunk_and_padding_batches(tokenizer, encoder) -> None:
    two = encode_prompt(tokenizer, encoder, "a cat BREAK a dog")
    one = encode_prompt(tokenizer, encoder, "blurry")
    empty = encode_prompt(tokenizer, encoder, "")
    assert two.chunks == 2 and one.chunks == 1
    a, b = pad_chunks(two, one, empty)
    assert a.hidden.shape == b.hidden.shape == (1, 154, 32)
    torch.testing.assert_close(b.hidden[:, 77:], empty.hidden)
    torch.testing.assert_close(b.hidden[:, :77], one.hidden)


def test_weighting_a_zero_mean_window_does_not_explode() -> None:
    from engine.conditioning.clip import _apply_weights

    hidden = torch.randn(1, 77, 8)
    hidden = hidden - hidden.mean()  # mean exactly ~0, as a layer norm without bias gives
    weights = [1.0] * 77
    weights[3] = 1.5
    out = _apply_weights(hidden, weights)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 3], hidden[0, 3] * 1.5)
