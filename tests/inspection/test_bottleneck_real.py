"""The bottleneck of real third-party models, built from their config classes with tiny widths.

The truths come from real forwards: a forward hook on the layer that reads the latent gives its shape,
and the output's shape against the input's decides autoencoder against sequence-to-sequence. The verdict
must follow the data path, not the names of the modules (`encoder`, `decoder`, `predictions.decoder`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from aelab.inspection.bottleneck import Bottleneck, find_bottleneck
from aelab.inspection.hints import collect_hints
from aelab.render.bottleneck_text import bottleneck_lines
from aelab.trace.record import record
from aelab.trace.recorder import run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


def analyse(model: nn.Module, inputs: list[Any] | None = None, kwinputs: dict[str, Any] | None = None) -> Bottleneck:
    b = find_bottleneck(record(model, inputs or [], kwinputs, backward=False), collect_hints(model))
    assert b is not None
    return b


def analyse_real(model: nn.Module, x: torch.Tensor) -> Bottleneck:
    """A real forward (and backward) at the batch of `x`: a VQ layer's argmin needs real values."""
    b = find_bottleneck(run(model, [x], {}, execution="real"), collect_hints(model))
    assert b is not None
    return b


def input_shape_of(model: nn.Module, layer: str, *args: Any, **kwargs: Any) -> list[int]:
    """The shape of what `layer` reads in a real forward."""
    seen: list[list[int]] = []
    handle = model.get_submodule(layer).register_forward_pre_hook(lambda m, a: seen.append(list(a[0].shape)))
    with torch.no_grad():
        model(*args, **kwargs)
    handle.remove()
    return seen[0]


def output_shape_of(model: nn.Module, layer: str, *args: Any, **kwargs: Any) -> list[int]:
    seen: list[list[int]] = []

    def hook(m: nn.Module, a: Any, out: Any) -> None:
        seen.append(list((out[0] if isinstance(out, tuple) else out).shape))

    handle = model.get_submodule(layer).register_forward_hook(hook)
    with torch.no_grad():
        model(*args, **kwargs)
    handle.remove()
    return seen[0]


def notes(b: Bottleneck) -> str:
    return "\n".join(b.notes)


# --- Stable Diffusion's AutoencoderKL --------------------------------------------------------------------
def sd_vae(widths: list[int], groups: int, layers: int = 1) -> nn.Module:
    return diffusers.AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=widths, latent_channels=4,
                                   down_block_types=["DownEncoderBlock2D"] * len(widths),
                                   up_block_types=["UpDecoderBlock2D"] * len(widths), layers_per_block=layers,
                                   norm_num_groups=groups)


def test_sd_vae_latent_is_the_posterior_mean_decode_reads() -> None:
    torch.manual_seed(0)
    model = sd_vae([8, 16, 32, 32], groups=8).eval()
    x = torch.randn(2, 3, 32, 32)
    latent = input_shape_of(model, "post_quant_conv", x)  # real: what decode() hands to post_quant_conv
    assert latent == [2, 4, 4, 4]
    b = analyse(model, [(2, 3, 32, 32)])
    assert b.shape == latent and b.latent_source == "method" and b.is_autoencoder
    assert b.compression_ratio == 3 * 32 * 32 / (4 * 4 * 4) == 48
    assert "post_quant_conv" in b.decoder and "post_quant_conv" not in b.encoder
    assert "quant_conv" in b.encoder and b.encoder[-1] == b.layer
    assert "DiagonalGaussianDistribution" in notes(b) and "is its mean" in notes(b)
    assert "post_quant_conv runs inside decode()" in notes(b)


def test_sd_vae_sampled_posterior() -> None:
    """sample_posterior=True: the latent is mean + std * noise, still what decode() reads."""

    class SampledVAE(diffusers.AutoencoderKL):  # type: ignore[misc]
        def forward(self, x: torch.Tensor) -> Any:
            return super().forward(x, sample_posterior=True)

    model = SampledVAE(in_channels=3, out_channels=3, block_out_channels=[8, 16], latent_channels=4,
                       down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                       layers_per_block=1, norm_num_groups=4).train()
    assert input_shape_of(model, "post_quant_conv", torch.randn(2, 3, 16, 16)) == [2, 4, 8, 8]
    b = analyse(model, [(2, 3, 16, 16)])
    assert b.shape == [2, 4, 8, 8] and b.latent_source == "sample" and b.compression_ratio == 3
    assert "post_quant_conv" in b.decoder and "drawn from its" in notes(b)
    assert "encode" not in type(model).__dict__  # the wrapped method is restored (it is inherited)


def test_sd_vae_config_on_meta_at_256() -> None:
    """The done-when number: the Stable Diffusion VAE config at 1x3x256x256, on meta (no weights)."""
    with torch.device("meta"):
        model = sd_vae([128, 256, 512, 512], groups=32, layers=2)
    b = analyse(model, [(1, 3, 256, 256)])
    assert b.shape == [1, 4, 32, 32] and b.compression_ratio == 48
    assert b.verdict.startswith("Compresses 48x") and "post_quant_conv" in b.decoder


class NormalVAE(nn.Module):
    """encode() returns a torch.distributions.Normal; forward samples it (training) or takes its mean."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 8))
        self.decoder = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 32))

    def encode(self, x: torch.Tensor) -> torch.distributions.Normal:
        mu, log_sigma = self.encoder(x).chunk(2, dim=-1)
        return torch.distributions.Normal(mu, log_sigma.exp())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.encode(x)
        return self.decode(q.rsample() if self.training else q.mean)


@pytest.mark.parametrize("train", [True, False])
def test_torch_distribution_latent(train: bool) -> None:
    model = NormalVAE().train(train)
    assert input_shape_of(model, "decoder", torch.randn(3, 32)) == [3, 4]
    b = analyse(model, [(3, 32)])
    assert b.shape == [3, 4] and b.compression_ratio == 8 and b.is_autoencoder
    assert b.latent_source == ("sample" if train else "attribute")  # encode() and `encoder` agree
    if not train:
        assert "encode() returns a Normal" in notes(b) and "is its loc" in notes(b)


# --- VQ-VAEs ----------------------------------------------------------------------------------------------
def conv_vq(quantiser: nn.Module) -> nn.Module:
    class VQVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Sequential(nn.Conv2d(3, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 8, 4, 2, 1))
            self.vq = quantiser
            self.up = nn.Sequential(nn.ConvTranspose2d(8, 16, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(16, 3, 4, 2, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            quantised, _, _ = self.vq(self.down(x))
            return self.up(quantised)

    return VQVAE()


@pytest.mark.parametrize("kwargs", [{"rotation_trick": False}, {}], ids=["straight-through", "rotation-trick"])
def test_vector_quantize_pytorch(kwargs: dict[str, Any]) -> None:
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(0)
    model = conv_vq(vqp.VectorQuantize(dim=8, codebook_size=32, accept_image_fmap=True, **kwargs)).train()
    x = torch.randn(2, 3, 16, 16)
    assert input_shape_of(model, "up", x) == [2, 8, 4, 4]
    b = analyse_real(model, x)
    assert (b.layer, b.type, b.shape) == ("vq", "VectorQuantize", [2, 8, 4, 4])  # the model's layout
    assert b.compression_ratio == 6 and b.bypass_per_sample == 0 and b.verdict.startswith("Compresses 6x")
    assert "Skip connections" not in notes(b) and "Tied weights" not in notes(b)
    if kwargs:
        assert "straight-through estimator" in notes(b)


def test_diffusers_vq_model_latent_is_what_encode_returns() -> None:
    """diffusers' VQModel: `encode()` ends at `quant_conv`, `decode()` quantises (cdist, argmin, embedding,
    straight-through) before `post_quant_conv`; no real run needed beside the meta one but the codes' argmin."""
    torch.manual_seed(0)
    model = diffusers.VQModel(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                              up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, num_vq_embeddings=32,
                              norm_num_groups=8, vq_embed_dim=4).eval()
    x = torch.randn(2, 3, 16, 16)
    assert output_shape_of(model, "quant_conv", x) == [2, 4, 8, 8]
    b = analyse(model, [x])
    assert (b.layer, b.shape, b.compression_ratio) == ("quant_conv", [2, 4, 8, 8], 3)
    assert b.verdict.startswith("Compresses 3x") and b.bypass_per_sample == 0
    assert "Skip connections" not in notes(b) and "Tied weights" not in notes(b)
    assert "quant_conv" in b.encoder and "post_quant_conv" in b.decoder


class HandVQ(nn.Module):
    """The textbook VQ-VAE: nearest code by cdist + argmin, nn.Embedding lookup, z + (z_q - z).detach()."""

    def __init__(self, named: bool) -> None:
        super().__init__()
        down = nn.Sequential(nn.Conv2d(3, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 8, 4, 2, 1))
        up = nn.Sequential(nn.ConvTranspose2d(8, 16, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(16, 3, 4, 2, 1))
        self.parts = ("encoder", "decoder") if named else ("down", "up")
        self.add_module(self.parts[0], down)
        self.add_module(self.parts[1], up)
        self.codebook = nn.Embedding(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = getattr(self, self.parts[0])(x)
        n, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        codes = torch.cdist(flat, self.codebook.weight).argmin(1)
        z_q = self.codebook(codes).view(n, h, w, c).permute(0, 3, 1, 2)
        z_q = z + (z_q - z).detach()
        return getattr(self, self.parts[1])(z_q)


@pytest.mark.parametrize("named", [True, False])
def test_straight_through_is_not_a_skip_and_the_codebook_is_not_tied(named: bool) -> None:
    torch.manual_seed(0)
    model = HandVQ(named)
    x = torch.randn(2, 3, 16, 16)
    assert input_shape_of(model, model.parts[1], x) == [2, 8, 4, 4]
    b = analyse_real(model, x)
    assert b.shape == [2, 8, 4, 4] and b.compression_ratio == 6 and b.bypass_per_sample == 0
    assert b.verdict.startswith("Compresses 6x:")
    assert "Skip connections" not in notes(b) and "Tied weights" not in notes(b)
    assert "straight-through estimator" in notes(b) and "The latent is quantised" in notes(b)
    assert "codebook" in b.encoder and b.decoder == [f"{model.parts[1]}.{i}" for i in range(3)]


# --- compressai's factorized prior (hand-written copy: compressai needs torchvision) ----------------------
@pytest.mark.parametrize("train", [True, False])
def test_factorized_prior_latent_in_the_models_layout(train: bool) -> None:
    import compression

    torch.manual_seed(0)
    model = compression.FactorizedPrior(8, 12).train(train)
    x = torch.randn(2, 3, 64, 64)
    assert output_shape_of(model, "entropy_bottleneck", x) == [2, 12, 4, 4]
    b = analyse(model, [(2, 3, 64, 64)])
    assert (b.layer, b.shape) == ("entropy_bottleneck", [2, 12, 4, 4])  # not its (12, 1, 32) internal view
    assert b.compression_ratio == 64 and b.is_autoencoder


# --- encoder-decoders and language models: not autoencoders -----------------------------------------------
def t5() -> nn.Module:
    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=99, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4, decoder_start_token_id=0))


def bart() -> nn.Module:
    return transformers.BartForConditionalGeneration(transformers.BartConfig(
        vocab_size=99, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64))


def marian() -> nn.Module:
    return transformers.MarianMTModel(transformers.MarianConfig(
        vocab_size=99, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
        pad_token_id=0, decoder_start_token_id=0))


def whisper() -> nn.Module:
    return transformers.WhisperForConditionalGeneration(transformers.WhisperConfig(
        vocab_size=99, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=8, max_source_positions=10,
        max_target_positions=16, pad_token_id=0, decoder_start_token_id=1))


IDS = {"input_ids": torch.ones(2, 7, dtype=torch.long), "decoder_input_ids": torch.ones(2, 5, dtype=torch.long)}
AUDIO = {"input_features": torch.randn(2, 8, 20), "decoder_input_ids": IDS["decoder_input_ids"]}
SEQ2SEQ = {"t5": (t5, IDS), "bart": (bart, IDS), "marian": (marian, IDS), "whisper": (whisper, AUDIO)}


@pytest.mark.parametrize("name", sorted(SEQ2SEQ))
def test_sequence_to_sequence_is_not_an_autoencoder(name: str) -> None:
    build, kwargs = SEQ2SEQ[name]
    torch.manual_seed(0)
    model = build().eval()
    first = next(iter(kwargs.values()))
    with torch.no_grad():
        logits = model(**kwargs).logits  # real: the output follows the decoder's ids, not the input
    assert list(logits.shape[:2]) == [2, 5] and logits.shape != first.shape
    b = analyse(model, kwinputs=kwargs)
    assert b.verdict.startswith("Sequence-to-sequence, not an autoencoder")
    assert (b.layer, b.latent_source, b.is_autoencoder, b.encoder, b.decoder) == ("", "none", False, [], [])
    lines = bottleneck_lines(b)
    assert lines[0] == "Bottleneck: none" and "second input decoder_input_ids (N, 5)" in b.verdict


def albert() -> nn.Module:
    return transformers.AlbertForMaskedLM(transformers.AlbertConfig(
        vocab_size=512, embedding_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64))


def bert() -> nn.Module:
    return transformers.BertModel(transformers.BertConfig(
        vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64))


def gpt2() -> nn.Module:
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=99, n_embd=16, n_layer=1, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0))


def qwen3_moe() -> nn.Module:
    """Its experts' grouped mm reads the routing's integer group offsets: the gate's route is a layer longer than
    the hidden states', and its narrowest value, the offsets of 4 experts, was reported as the representation."""
    return transformers.Qwen3MoeForCausalLM(transformers.Qwen3MoeConfig(
        vocab_size=99, hidden_size=16, intermediate_size=32, moe_intermediate_size=8, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, num_experts=4, num_experts_per_tok=2,
        max_position_embeddings=64))


@pytest.mark.parametrize("build", [albert, bert, gpt2, qwen3_moe], ids=["albert-mlm", "bert", "gpt2", "qwen3-moe"])
def test_language_models_have_no_bottleneck(build: Any) -> None:
    torch.manual_seed(0)
    model = build().eval()
    ids = torch.ones(2, 7, dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids)
    hidden = out.logits if hasattr(out, "logits") else out.last_hidden_state
    assert hidden.shape[:2] == ids.shape and hidden.numel() > ids.numel()  # real: no reconstruction, no narrowing
    b = analyse(model, kwinputs={"input_ids": ids})
    assert (b.layer, b.latent_source, b.is_autoencoder) == ("", "none", False)  # no "bottleneck" at a LayerNorm
    assert b.verdict.startswith("Not an autoencoder") and "no bottleneck" in b.verdict
    if build is albert:
        assert "`predictions.decoder`" in notes(b)


def test_a_network_that_never_narrows_has_no_bottleneck_row() -> None:
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 16))
    b = analyse(model, [(4, 8)])
    assert (b.layer, b.latent_source, b.path) == ("", "none", [])
    assert bottleneck_lines(b)[0] == "Bottleneck: none"


def test_no_bottleneck_record_renders_without_a_latent() -> None:
    import aelab

    report = aelab.inspect(nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 16)), (4, 8))
    html = report._repr_html_()
    assert "there is no bottleneck to report" in html and "Latent:" not in html
    assert "Bottleneck: none" in str(report)
    from aelab.errors import UsageError
    from aelab.render.hourglass import hourglass_svg

    with pytest.raises(UsageError, match="no hourglass to draw: Not an autoencoder"):
        hourglass_svg(report.bottleneck)


def test_docs_sd_vae_excerpt_is_real_output(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/bottleneck.md shows the first lines of the SD-VAE section and its split notes: each is real."""
    import re
    import shlex

    from aelab.cli import main

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    doc = (root / "docs" / "bottleneck.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```text\n\$ (aelab [^\n]*sd_vae[^\n]*)\n(.*?)```", doc, flags=re.S)
    command, excerpt = block
    with pytest.raises(SystemExit) as done:
        main(shlex.split(command)[1:])
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    for line in excerpt.strip().splitlines():
        assert line in out, line
