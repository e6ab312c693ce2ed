"""The zoo: real architectures at tiny widths, each a factory the CLI can name (`tests/zoo/zoo_models.py:gpt2`).

transformers 5.24 and diffusers 0.42 models are built from their config classes (random weights, the
library's own modules and forward code); families whose package cannot be installed beside torch 2.13
are hand-written copies in examples/ (ResNet-18: no torchvision; compressai's factorized prior).
`ZOO` gives each factory its inputs at batch 2, as the CLI writes them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

VOCAB = 96  # every language model's vocabulary; token inputs are drawn below it


def _tiny_decoder(**extra: object) -> dict[str, object]:
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64, **extra)


def gpt2() -> nn.Module:
    """GPT-2 LM head, tied to the token embedding."""
    import transformers

    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=VOCAB)
    return transformers.GPT2LMHeadModel(cfg)


def llama() -> nn.Module:
    """Llama with grouped-query attention (4 heads, 2 key/value heads) and rotary positions."""
    import transformers

    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**_tiny_decoder()))


def mistral() -> nn.Module:
    """Mistral: Llama's layout with a sliding attention window (here 8 of 12 tokens)."""
    import transformers

    return transformers.MistralForCausalLM(transformers.MistralConfig(**_tiny_decoder(sliding_window=8)))


def mixtral() -> nn.Module:
    """Mixtral: 4 experts, top-2 routing; transformers 5's default experts run `aten._grouped_mm`."""
    import transformers

    cfg = transformers.MixtralConfig(**_tiny_decoder(num_local_experts=4, num_experts_per_tok=2))
    return transformers.MixtralForCausalLM(cfg)


def qwen3_moe() -> nn.Module:
    """Qwen3-MoE: 4 experts, top-2, grouped-mm experts fed the routing's integer group offsets."""
    import transformers

    cfg = transformers.Qwen3MoeConfig(**_tiny_decoder(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                                                      head_dim=8))
    return transformers.Qwen3MoeForCausalLM(cfg)


def bert() -> nn.Module:
    """BERT masked-LM head (its decoder tied to the word embedding)."""
    import transformers

    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, vocab_size=VOCAB, max_position_embeddings=64)
    return transformers.BertForMaskedLM(cfg)


def deberta_v2() -> nn.Module:
    """DeBERTa-v2: disentangled relative attention, `position_ids` and relative-position buffers."""
    import transformers

    cfg = transformers.DebertaV2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=64, vocab_size=VOCAB, max_position_embeddings=64,
                                       relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"])
    return transformers.DebertaV2Model(cfg)


def t5() -> nn.Module:
    """T5 encoder-decoder with relative position buckets and a tied LM head."""
    import transformers

    cfg = transformers.T5Config(d_model=32, d_ff=64, d_kv=8, num_layers=2, num_decoder_layers=2, num_heads=4,
                                vocab_size=VOCAB, decoder_start_token_id=0)
    return transformers.T5ForConditionalGeneration(cfg)


def bart() -> nn.Module:
    """BART encoder-decoder, learned positions, LM head tied to the shared embedding."""
    import transformers

    cfg = transformers.BartConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                  decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                                  vocab_size=VOCAB, max_position_embeddings=64)
    return transformers.BartForConditionalGeneration(cfg)


def whisper() -> nn.Module:
    """Whisper: conv stem over 8 mel bins x 32 frames, encoder, causal decoder (tied output projection)."""
    import transformers

    cfg = transformers.WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                     decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                                     num_mel_bins=8, max_source_positions=16, max_target_positions=32,
                                     vocab_size=VOCAB, decoder_start_token_id=1, pad_token_id=0, bos_token_id=1,
                                     eos_token_id=2, suppress_tokens=None, begin_suppress_tokens=None)
    return transformers.WhisperForConditionalGeneration(cfg)


def wav2vec2() -> nn.Module:
    """Wav2Vec2: conv feature encoder on raw audio, positional conv, transformer (no LayerDrop, no masking:
    those are random draws)."""
    import transformers

    cfg = transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 2),
                                      conv_kernel=(10, 3), num_conv_pos_embeddings=16,
                                      num_conv_pos_embedding_groups=4, layerdrop=0.0, mask_time_prob=0.0,
                                      vocab_size=VOCAB)
    return transformers.Wav2Vec2Model(cfg)


def vit() -> nn.Module:
    """ViT image classifier: 8x8 patches of a 32x32 image, CLS token."""
    import transformers

    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                 image_size=32, patch_size=8, num_labels=10)
    return transformers.ViTForImageClassification(cfg)


def autoencoder_kl() -> nn.Module:
    """diffusers AutoencoderKL (Stable Diffusion's VAE layout), two stages, mid-block attention."""
    import diffusers

    return diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                                   down_block_types=("DownEncoderBlock2D",) * 2,
                                   up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1,
                                   norm_num_groups=4, sample_size=16)


def unet2d() -> nn.Module:
    """diffusers UNet2DModel: time embedding, resnet blocks, an attention down/up block."""
    import diffusers

    return diffusers.UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                 attention_head_dim=8)


def segformer() -> nn.Module:
    """SegFormer: overlapping patch stages, spatial-reduction attention, a bilinear-upsampling all-MLP head."""
    import transformers

    return transformers.SegformerForSemanticSegmentation(transformers.SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
        strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16))


def vq_model() -> nn.Module:
    """diffusers VQModel: its VectorQuantizer finds codes with `torch.cdist` (`aten._euclidean_dist` on CPU)."""
    import diffusers

    return diffusers.VQModel(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                             up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, num_vq_embeddings=32,
                             norm_num_groups=8, vq_embed_dim=4)


def vqvae() -> nn.Module:
    """A conv VQ-VAE around vector-quantize-pytorch's EMA codebook (examples/vqvae.py)."""
    import vqvae as vq

    return vq.VQVAE(dim=16, codebook_size=32, hidden=16)


def resnet18() -> nn.Module:
    """torchvision's ResNet-18 layout written out (examples/zoo.py), widths 8-64."""
    import zoo

    return zoo.ResNet18(num_classes=10, width=8)


def factorized_prior() -> nn.Module:
    """compressai's bmshj2018-factorized, copied (examples/compression.py); its constructor refuses meta."""
    import compression

    return compression.FactorizedPrior(N=8, M=12)


@dataclass(frozen=True)
class Case:
    """A zoo entry: its factory, its CLI inputs (batch 2) and the parameters a trainable subset freezes."""

    factory: str
    inputs: tuple[str, ...]
    freeze: str  # parameter-name prefix frozen for the trainable-subset count
    xfail: dict[str, str] = field(default_factory=dict)  # check -> why it fails today


TOKENS = "2x12:long"
ZOO = {
    "gpt2": Case("gpt2", (TOKENS,), "transformer.h.0."),
    "llama": Case("llama", (TOKENS,), "model.layers.0."),
    "mistral": Case("mistral", (TOKENS,), "model.layers.0."),
    "mixtral": Case("mixtral", (TOKENS,), "model.layers.0."),
    "qwen3_moe": Case("qwen3_moe", (TOKENS,), "model.layers.0."),
    "bert": Case("bert", (TOKENS,), "bert.encoder.layer.0."),
    "deberta_v2": Case("deberta_v2", (TOKENS,), "encoder.layer.0."),
    "t5": Case("t5", (TOKENS, "decoder_input_ids=2x6:long"), "encoder"),
    "bart": Case("bart", (TOKENS, "decoder_input_ids=2x6:long"), "model.encoder"),
    "whisper": Case("whisper", ("2x8x32", "decoder_input_ids=2x6:long"), "model.encoder"),
    "wav2vec2": Case("wav2vec2", ("2x400",), "feature_extractor"),
    "vit": Case("vit", ("2x3x32x32",), "vit.embeddings"),
    "autoencoder_kl": Case("autoencoder_kl", ("2x3x16x16",), "encoder"),
    "unet2d": Case("unet2d", ("2x3x16x16", "timestep=2:long"), "down_blocks"),
    "vqvae": Case("vqvae", ("2x3x16x16",), "encoder"),
    "vq_model": Case("vq_model", ("2x3x16x16",), "encoder"),
    "segformer": Case("segformer", ("2x3x32x32",), "segformer.stages.0."),
    "resnet18": Case("resnet18", ("2x3x32x32",), "layer1"),
    "factorized_prior": Case("factorized_prior", ("2x3x32x32",), "g_a"),
}
