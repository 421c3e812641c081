"""User upscaler files: random-weight RRDBNet, SRVGGNetCompact, SwinIR and HAT saved in their original key layouts
are recognised and give the same output as the network that wrote them; tiled runs stay within a small
bound of whole-image runs; bad files get a clear error; the CLI and the hires fix take them."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from engine.data import HELDOUT_SEEDS, make_sample
from engine.models import ModelKind, ModelLoadError, detect_path
from engine.upscale import upscale_image
from engine.upscale.esrgan import RRDBNet
from engine.upscale.model_file import load_upscaler_file
from engine.upscale.registry import UpscalerError
from engine.upscale.srvgg import SRVGGNetCompact
from engine.upscale.hat import HAT, HATShape
from engine.upscale.swinir import SwinIR, SwinIRShape, relative_index, shift_mask
from studio.cli import main

FEATURES, BLOCKS, GROWTH = 8, 2, 4


def rrdbnet(stages: int = 2, unshuffle: int = 1, seed: int = 0) -> RRDBNet:
    """A tiny random RRDBNet whose output spans the colour range: its last conv rescaled so a scene
    comes out with mean 0.5 and deviation 0.15 per channel (as drawn, the output is ~0 and clamps flat)."""
    torch.manual_seed(seed)
    net = RRDBNet(3, 3, FEATURES, BLOCKS, GROWTH, stages, unshuffle).eval()
    with torch.no_grad():
        out = net(as_input(scene(48)))  # (1, 3, h, w)
        mean, std = out.mean(dim=(0, 2, 3)), out.std(dim=(0, 2, 3))
        net.conv_last.weight.mul_((0.15 / std)[:, None, None, None])
        net.conv_last.bias.copy_(0.5 + (net.conv_last.bias - mean) * 0.15 / std)
    return net


def srvgg(scale: int = 4, convs: int = 3, seed: int = 0) -> SRVGGNetCompact:
    torch.manual_seed(seed)
    return SRVGGNetCompact(3, FEATURES, convs, scale).eval()


def swinir(upsampler: str, scale: int, three_conv: bool = False, seed: int = 0) -> SwinIR:
    """A tiny random SwinIR: width 16, two groups of two blocks (2 and 4 heads), 4 px windows."""
    torch.manual_seed(seed)
    net = SwinIR(SwinIRShape(3, 16, (2, 2), (2, 4), 4, 2.0, three_conv, True, True, upsampler, scale)).eval()
    with torch.no_grad():  # as trained tables are: not all zero, so a wrong index would show
        for name, p in net.named_parameters():
            if name.endswith("relative_position_bias_table"):
                p.normal_(0, 0.5)
    return net


def swinir_release_layout(net: SwinIR) -> dict[str, torch.Tensor]:
    """The state dict as the SwinIR repository's files hold it: the parameters plus two derived buffers
    per block, relative_position_index and (in shifted blocks) attn_mask for the training size (64 px)."""
    out = {k: v.clone() for k, v in net.state_dict().items()}
    window = net.shape.window
    for g, depth in enumerate(net.shape.depths):
        for b in range(depth):
            prefix = f"layers.{g}.residual_group.blocks.{b}."
            out[prefix + "attn.relative_position_index"] = relative_index(window)
            if b % 2:
                out[prefix + "attn_mask"] = shift_mask(64, 64, window, window // 2)
    return out


def hat(scale: int, seed: int = 0) -> HAT:
    """A tiny random HAT: width 16, two groups of two blocks, 4 px windows, 6 px overlapping windows."""
    torch.manual_seed(seed)
    net = HAT(HATShape(3, 16, (2, 2), (2, 4), 4, 6, 3, 4, 2.0, True, True, True, scale)).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("relative_position_bias_table"):
                p.normal_(0, 0.5)
    return net


def hat_release_layout(net: HAT) -> dict[str, torch.Tensor]:
    """As the HAT repository's files hold it: the parameters plus the two relative position index buffers."""
    from engine.upscale.hat import overlap_index

    out = {k: v.clone() for k, v in net.state_dict().items()}
    out["relative_position_index_SA"] = relative_index(net.shape.window)
    out["relative_position_index_OCA"] = overlap_index(net.shape.window, net.shape.overlap_window)
    return out


def basicsr_layout(net: RRDBNet) -> dict[str, torch.Tensor]:
    """BasicSR / Real-ESRGAN names: conv_first, body.N.rdbM.convK, conv_body, conv_upK, conv_hr, conv_last."""
    return {k: v.clone() for k, v in net.state_dict().items()}


def esrgan_trunk_layout(net: RRDBNet) -> dict[str, torch.Tensor]:
    """The ESRGAN repository's RRDBNet_arch names: RRDB_trunk.N.RDBM.convK, trunk_conv, upconvK, HRconv."""
    out = {}
    for key, value in net.state_dict().items():
        parts = key.split(".")
        if parts[0] == "body":
            key = f"RRDB_trunk.{parts[1]}.RDB{parts[2][-1]}.{parts[3]}.{parts[4]}"
        else:
            key = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}.get(parts[0], parts[0].replace("conv_up", "upconv"))
            key += "." + parts[1]
        out[key] = value.clone()
    return out


def esrgan_sequential_layout(net: RRDBNet) -> "OrderedDict[str, torch.Tensor]":
    """The first ESRGAN release's flat nn.Sequential: model.0 first conv, model.1.sub.N.RDBM.convK.0,
    model.1.sub.<blocks> trunk conv, then (upsample, conv, lrelu) per x2 stage, HR conv, lrelu, last conv."""
    sd = net.state_dict()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for kind in ("weight", "bias"):
        out[f"model.0.{kind}"] = sd[f"conv_first.{kind}"]
        for b in range(BLOCKS):
            for r in range(1, 4):
                for c in range(1, 6):
                    out[f"model.1.sub.{b}.RDB{r}.conv{c}.0.{kind}"] = sd[f"body.{b}.rdb{r}.conv{c}.{kind}"]
        out[f"model.1.sub.{BLOCKS}.{kind}"] = sd[f"conv_body.{kind}"]
        for s in range(net.stages):
            out[f"model.{3 + 3 * s}.{kind}"] = sd[f"conv_up{s + 1}.{kind}"]
        hr = 3 * net.stages + 2
        out[f"model.{hr}.{kind}"] = sd[f"conv_hr.{kind}"]
        out[f"model.{hr + 2}.{kind}"] = sd[f"conv_last.{kind}"]
    return out


def save(state: dict[str, torch.Tensor], path: Path, wrapper: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({wrapper: state} if wrapper else state, path)
    return path


def scene(size: int = 72) -> np.ndarray:
    low = make_sample(HELDOUT_SEEDS.start + 5, 4 * size, low_size=size).low_image
    assert low is not None
    return np.ascontiguousarray(low[:, : size - 6])  # not a multiple of 4: a pixel unshuffle must pad


def as_input(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)[None]


CASES = {
    # name: (network, layout writer, suffix, wrapper key)
    "esrgan-x4-sequential.pth": (lambda: rrdbnet(2), esrgan_sequential_layout, ".pth", None),
    "esrgan-x2-sequential.safetensors": (lambda: rrdbnet(1), esrgan_sequential_layout, ".safetensors", None),
    "esrgan-x1-sequential.pth": (lambda: rrdbnet(0), esrgan_sequential_layout, ".pth", None),
    "esrgan-x8-trunk.pth": (lambda: rrdbnet(3), esrgan_trunk_layout, ".pth", None),
    "realesrgan-x4plus.pth": (lambda: rrdbnet(2), basicsr_layout, ".pth", "params_ema"),
    "realesrgan-x2plus.pth": (lambda: rrdbnet(2, unshuffle=2), basicsr_layout, ".pth", "params_ema"),
    "realesrgan-x1.safetensors": (lambda: rrdbnet(2, unshuffle=4), basicsr_layout, ".safetensors", None),
    "realesr-general-x4v3.pth": (lambda: srvgg(4), lambda n: n.state_dict(), ".pth", "params"),
    "compact-x2.safetensors": (lambda: srvgg(2, convs=5), lambda n: n.state_dict(), ".safetensors", None),
    "001_classicalSR_x2.pth": (lambda: swinir("pixelshuffle", 2), swinir_release_layout, ".pth", "params"),
    "001_classicalSR_x3.pth": (lambda: swinir("pixelshuffle", 3), swinir_release_layout, ".pth", "params"),
    "002_lightweightSR_x4.pth": (lambda: swinir("pixelshuffledirect", 4), swinir_release_layout, ".pth", "params"),
    "003_realSR_x4_3conv.pth": (lambda: swinir("nearest+conv", 4, True), swinir_release_layout, ".pth", "params_ema"),
    "005_colorDN.safetensors": (lambda: swinir("", 1), swinir_release_layout, ".safetensors", None),
    "HAT_SRx4.pth": (lambda: hat(4), hat_release_layout, ".pth", "params_ema"),
    "HAT_SRx3.safetensors": (lambda: hat(3), hat_release_layout, ".safetensors", None),
}
ARCHITECTURE_OF = {RRDBNet: "RRDBNet", SRVGGNetCompact: "SRVGGNetCompact", SwinIR: "SwinIR", HAT: "HAT"}


@pytest.mark.parametrize("name", list(CASES))
def test_original_layouts_are_recognised_and_match(tmp_path: Path, name: str) -> None:
    make, layout, suffix, wrapper = CASES[name]
    net = make()
    path = save(layout(net), tmp_path / name, wrapper)
    assert detect_path(path).kind == ModelKind.UPSCALER  # the model store files it as an upscaler too
    loaded = load_upscaler_file(path)
    assert loaded.scale == net.scale and loaded.dtype == torch.float32
    assert loaded.architecture == ARCHITECTURE_OF[type(net)]
    x = as_input(scene(36))  # 36 x 30: odd multiples, so x1/x2 models pad before their unshuffle
    with torch.no_grad():
        expected = net(x)
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)
    assert expected.shape[-2:] == (36 * net.scale, 30 * net.scale)


@pytest.mark.parametrize("name", ["realesrgan-x4plus.pth", "realesrgan-x2plus.pth", "realesrgan-x1.safetensors",
                                  "realesr-general-x4v3.pth", "001_classicalSR_x2.pth", "HAT_SRx4.pth"])
def test_tiled_stays_close_to_whole_image(tmp_path: Path, name: str) -> None:
    make, layout, suffix, wrapper = CASES[name]
    path = save(layout(make()), tmp_path / name, wrapper)
    image = scene(96)
    whole = upscale_image(image, path, 2, tile=4096).astype(np.int16)
    assert whole.std() > 10  # a picture, not a flat clamp: a difference would show
    tiled = upscale_image(image, path, 2, tile=64).astype(np.int16)
    diff = np.abs(tiled - whole)
    # measured with 64 px tiles (16 px overlap, starts on the unshuffle grid / attention window): max 0-1,
    # mean <= 0.007 (the x1, whose trunk runs at a quarter of the size and sees furthest); 128 px: identical.
    # Without the grid the x1 differed by up to 35 and the SwinIR by 46.
    assert diff.max() <= 2 and diff.mean() < 0.02


def test_x1_tiles_start_on_the_unshuffle_grid(tmp_path: Path) -> None:
    path = save(basicsr_layout(rrdbnet(2, unshuffle=4)), tmp_path / "x1.safetensors")
    image = scene(96)
    calls: list[tuple[int, int]] = []
    out = upscale_image(image, path, 1.5, tile=64, on_tile=lambda d, t: calls.append((d, t)))
    assert out.shape == (144, 135, 3) and calls[-1][0] == calls[-1][1] > 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_on_cuda(tmp_path: Path) -> None:
    path = save(basicsr_layout(rrdbnet(2)), tmp_path / "x4.safetensors")
    half = load_upscaler_file(path, "cuda")
    full = load_upscaler_file(path, "cuda", half=False)
    assert half.dtype == torch.float16 and next(half.module.parameters()).dtype == torch.float16
    x = as_input(scene(64)).cuda()
    assert (half(x) - full(x)).abs().max() < 0.02


# --- bad files -------------------------------------------------------------------------------


class NotWeights:
    pass


def bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = tmp / "good.safetensors"
    save(basicsr_layout(rrdbnet(2)), good)
    cut = tmp / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    noise = tmp / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    code = tmp / "code.pth"
    torch.save({"model": NotWeights()}, code)
    unet = tmp / "other.safetensors"
    save_file({"conv_in.weight": torch.zeros(4, 4, 3, 3), "time_embedding.linear_1.weight": torch.zeros(8, 4)}, str(unet))
    partial = tmp / "partial.pth"
    state = basicsr_layout(rrdbnet(2))
    del state["conv_hr.weight"]
    torch.save(state, partial)
    grey = tmp / "grey.pth"
    torch.manual_seed(0)
    torch.save(RRDBNet(1, 1, FEATURES, BLOCKS, GROWTH).state_dict(), grey)
    text = tmp / "notes.txt"
    text.write_text("hello")
    return {
        "cut": (cut, "corrupt or truncated .safetensors file"),
        "noise": (noise, "corrupt or truncated"),
        "code": (code, "refused: the file needs pickle code to load"),
        "other": (unet, "not an upscaler architecture Atelier reads itself"),
        "partial": (partial, "looks like a RRDBNet but its tensors do not fit one"),
        "grey": (grey, "for 1-channel images; Atelier upscales RGB images"),
        "text": (text, "not an upscaler model file: expected one of .safetensors"),
        "missing": (tmp / "gone.pth", "the upscaler model file does not exist"),
    }


@pytest.mark.parametrize("kind", ["cut", "noise", "code", "other", "partial", "grey", "text", "missing"])
def test_bad_files_get_a_clear_error(tmp_path: Path, kind: str) -> None:
    path, message = bad_files(tmp_path)[kind]
    with pytest.raises(UpscalerError, match=None) as info:
        upscale_image(scene(36), path, 2)
    assert message in str(info.value) and (kind == "missing" or str(path) in str(info.value))


def test_swinir_shifted_window_attention_matches_a_per_pixel_computation() -> None:
    """A shifted block's attention against plain loops: the map rolled by half a window, each pixel
    attending to its window's pixels with the relative position bias, and only to those that came
    from the same side of the wrap (the released code's -100 mask)."""
    net = swinir("pixelshuffle", 2)
    block = net.layers[0].residual_group.blocks[1]
    ws, shift, heads = block.window, block.shift, block.attn.heads
    h, w, c = 8, 12, 16
    torch.manual_seed(2)
    x = torch.randn(1, h * w, c)
    with torch.no_grad():
        expected = block(x, (h, w), shift_mask(h, w, ws, shift))
        rolled = torch.roll(block.norm1(x).view(h, w, c), (-shift, -shift), dims=(0, 1))
        q, k, v = block.attn.qkv(rolled).view(h, w, 3, c).unbind(2)

        def region(y: int, xx: int) -> tuple[int, int]:  # which side of the wrap a rolled pixel came from
            return (0 if y < h - ws else 1 if y < h - shift else 2), (0 if xx < w - ws else 1 if xx < w - shift else 2)
        d = c // heads
        out = torch.zeros(h, w, c)
        for y in range(h):
            for xx in range(w):
                top, left = y // ws * ws, xx // ws * ws
                cells = [(ky, kx) for ky in range(top, top + ws) for kx in range(left, left + ws)]
                for head in range(heads):
                    sl = slice(head * d, (head + 1) * d)
                    logits = torch.stack([
                        q[y, xx, sl] @ k[ky, kx, sl] * d**-0.5
                        + block.attn.relative_position_bias_table[(y - ky + ws - 1) * (2 * ws - 1) + (xx - kx + ws - 1), head]
                        + (0.0 if region(ky, kx) == region(y, xx) else -100.0) for ky, kx in cells])
                    out[y, xx, sl] = logits.softmax(0) @ torch.stack([v[ky, kx, sl] for ky, kx in cells])
        attended = torch.roll(block.attn.proj(out), (shift, shift), dims=(0, 1)).reshape(1, h * w, c)
        naive = x + attended
        naive = naive + block.mlp(block.norm2(naive))
    torch.testing.assert_close(expected, naive, rtol=1e-5, atol=1e-5)


def test_hat_overlapping_attention_matches_a_per_pixel_computation() -> None:
    """The OCAB's unfold-based gathering against plain loops: each query pixel attends to the zero-padded
    ow x ow neighbourhood centred on its window, with the released code's relative position index."""
    net = hat(2)
    block = net.layers[0].residual_group.overlap_attn
    ws, ow, heads = block.window, block.overlap, block.heads
    h, w, c = 8, 12, 16
    torch.manual_seed(1)
    x = torch.randn(1, h * w, c)
    with torch.no_grad():
        expected = block(x, (h, w))
        q, k, v = block.qkv(block.norm1(x)).view(h, w, 3, c).unbind(2)
        pad = (ow - ws) // 2
        k, v = (torch.nn.functional.pad(t, (0, 0, pad, pad, pad, pad)) for t in (k, v))  # zero keys and values
        out = torch.zeros(h, w, c)
        d = c // heads
        for y in range(h):
            for xx in range(w):
                top, left = y // ws * ws, xx // ws * ws  # the window's corner; its neighbourhood in padded coords
                keys = k[top:top + ow, left:left + ow].reshape(-1, c)
                values = v[top:top + ow, left:left + ow].reshape(-1, c)
                qy, qx = y - top, xx - left
                ky, kx = torch.meshgrid(torch.arange(ow), torch.arange(ow), indexing="ij")
                index = ((ky - qy + ws - ow + 1) * (ws + ow - 1) + (kx - qx + ws - ow + 1)).reshape(-1)
                for head in range(heads):
                    sl = slice(head * d, (head + 1) * d)
                    logits = keys[:, sl] @ q[y, xx, sl] * d**-0.5 + block.relative_position_bias_table[index, head]
                    out[y, xx, sl] = logits.softmax(0) @ values[:, sl]
        naive = block.proj(out.reshape(1, h * w, c)) + x
        naive = naive + block.mlp(block.norm2(naive))
    torch.testing.assert_close(expected, naive, rtol=1e-5, atol=1e-5)


def test_unknown_architecture_names_what_atelier_reads(tmp_path: Path) -> None:
    dat_like = tmp_path / "4xNomos8kDAT.safetensors"
    save_file({"conv_first.weight": torch.zeros(60, 3, 3, 3),
               "layers.0.blocks.0.attn.attns.0.pos.pos_proj.weight": torch.zeros(8, 2)}, str(dat_like))
    with pytest.raises(ModelLoadError, match="not an upscaler architecture Atelier reads itself .*HAT.*spandrel"):
        load_upscaler_file(dat_like)
    cut = tmp_path / "swinir-without-tables.safetensors"
    save_file({k: v.contiguous() for k, v in swinir("pixelshuffle", 2).state_dict().items()
               if "relative_position_bias_table" not in k}, str(cut))
    with pytest.raises(ModelLoadError, match="looks like a SwinIR but its tensors do not fit one: no tensor "
                                             "'layers.0.residual_group.blocks.0.attn.relative_position_bias_table'"):
        load_upscaler_file(cut)


def test_cli_upscales_with_a_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = save(srvgg(4).state_dict(), tmp_path / "realesr-general-x4v3.pth", "params")
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(scene(48)).save(src)
    assert main(["upscale", str(src), "--scale", "2", "--model", str(model), "--tile", "64", "-o", str(out)]) == 0
    assert Image.open(out).size == (84, 96)
    expected = upscale_image(scene(48), model, 2, tile=64)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), expected)
    capsys.readouterr()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x80\x04junk")
    assert main(["upscale", str(src), "--scale", "2", "--model", str(bad), "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.pth" in err[-1] and not (tmp_path / "o.png").exists()
