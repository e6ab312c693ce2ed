"""The wide zoo: more architectures of transformers 5.24 and diffusers 0.42 at tiny widths, each checked once
for the API and once for the CLI's default path (tests/zoo/test_wide_zoo.py); the zoo proper
(`zoo_models.py`) checks more of fewer. A factory the CLI can name: `tests/zoo/wide_models.py:qwen2`.

Found by sweeping them: SegFormer, BEiT, Swin, gpt-oss, AutoencoderTiny, Llama 4, Wan's VAE and diffusers'
VQModel ran ops the FLOP registry had no formula for; Qwen3-MoE and OLMoE had an MoE's routing offsets
reported as their narrowest representation.
"""

from __future__ import annotations

from typing import Any

from torch import nn

V = 96  # every language model's vocabulary; token inputs are drawn below it
TOKENS = ("2x12:long",)
SEQ2SEQ = ("2x12:long", "decoder_input_ids=2x6:long")
IMAGE = ("2x3x32x32",)


def _tf() -> Any:
    import transformers

    return transformers


def _decoder(config: str, **extra: Any) -> nn.Module:
    """A causal LM from its config class: 2 layers, width 32, 4 heads over 2 key/value heads."""
    sizes: dict[str, Any] = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, vocab_size=V, max_position_embeddings=64)
    return _tf().AutoModelForCausalLM.from_config(getattr(_tf(), config)(**{**sizes, **extra}))


def _encoder(config: str, head: str, **extra: Any) -> nn.Module:
    sizes: dict[str, Any] = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 vocab_size=V, max_position_embeddings=64)
    return getattr(_tf(), head)(getattr(_tf(), config)(**{**sizes, **extra}))


def _seq2seq(config: str, head: str) -> nn.Module:
    sizes = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                 encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=V, max_position_embeddings=64, pad_token_id=1,
                 decoder_start_token_id=2)
    return getattr(_tf(), head)(getattr(_tf(), config)(**sizes))


def _vision(config: str, head: str, **extra: Any) -> nn.Module:
    sizes: dict[str, Any] = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 image_size=32, patch_size=8)
    return getattr(_tf(), head)(getattr(_tf(), config)(**{**sizes, **extra}))


def _t5_like(config: str, head: str, **extra: Any) -> nn.Module:
    sizes: dict[str, Any] = dict(d_model=32, d_ff=64, d_kv=8, num_layers=2, num_decoder_layers=2, num_heads=4,
                                 vocab_size=V, decoder_start_token_id=0, pad_token_id=0)
    return getattr(_tf(), head)(getattr(_tf(), config)(**{**sizes, **extra}))


def _diffusers(cls: str, **config: Any) -> nn.Module:
    import diffusers

    return getattr(diffusers, cls)(**config)


_MOE = dict(num_experts=4, num_experts_per_tok=2)
BUILDS: dict[str, Any] = {
    # decoder-only language models, dense
    "qwen2": lambda: _decoder("Qwen2Config"),
    "qwen3": lambda: _decoder("Qwen3Config", head_dim=8),
    "gemma": lambda: _decoder("GemmaConfig", head_dim=8),
    "gemma2": lambda: _decoder("Gemma2Config", head_dim=8, sliding_window=8),
    "gemma3": lambda: _decoder("Gemma3TextConfig", head_dim=8, sliding_window=8),
    "phi3": lambda: _decoder("Phi3Config", pad_token_id=0),
    "granite": lambda: _decoder("GraniteConfig"),
    "cohere": lambda: _decoder("CohereConfig"),
    "starcoder2": lambda: _decoder("Starcoder2Config"),
    "stablelm": lambda: _decoder("StableLmConfig"),
    "gpt_neox": lambda: _decoder("GPTNeoXConfig", num_key_value_heads=4),
    "opt": lambda: _tf().OPTForCausalLM(_tf().OPTConfig(hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                                                        num_attention_heads=4, vocab_size=V,
                                                        max_position_embeddings=64, word_embed_proj_dim=32)),
    "falcon": lambda: _tf().FalconForCausalLM(_tf().FalconConfig(hidden_size=32, num_hidden_layers=2,
                                                                 num_attention_heads=4, vocab_size=V)),
    "bloom": lambda: _tf().BloomForCausalLM(_tf().BloomConfig(hidden_size=32, n_layer=2, n_head=4, vocab_size=V)),
    "gptj": lambda: _tf().GPTJForCausalLM(_tf().GPTJConfig(n_embd=32, n_layer=2, n_head=4, vocab_size=V,
                                                           n_positions=64, rotary_dim=4)),
    "mpt": lambda: _tf().MptForCausalLM(_tf().MptConfig(d_model=32, n_layers=2, n_heads=4, vocab_size=V,
                                                        max_seq_len=64)),
    # mixtures of experts, state-space and hybrid models
    "qwen2_moe": lambda: _decoder("Qwen2MoeConfig", **_MOE, moe_intermediate_size=16,
                                  shared_expert_intermediate_size=32),
    "olmoe": lambda: _decoder("OlmoeConfig", **_MOE),
    "gpt_oss": lambda: _decoder("GptOssConfig", num_local_experts=4, num_experts_per_tok=2, head_dim=8,
                                sliding_window=8, layer_types=["sliding_attention", "full_attention"]),
    "deepseek_v3": lambda: _decoder("DeepseekV3Config", moe_intermediate_size=16, n_routed_experts=4,
                                    n_shared_experts=1, num_experts_per_tok=2, n_group=1, topk_group=1,
                                    first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=16, qk_rope_head_dim=8,
                                    qk_nope_head_dim=8, v_head_dim=8, head_dim=8, num_key_value_heads=4),
    "llama4_text": lambda: _decoder("Llama4TextConfig", head_dim=8, num_local_experts=4, num_experts_per_tok=1,
                                    intermediate_size_mlp=64, interleave_moe_layer_step=1, no_rope_layers=[1, 0],
                                    attention_chunk_size=8),
    "jamba": lambda: _decoder("JambaConfig", **_MOE, attn_layer_period=2, attn_layer_offset=1, expert_layer_period=2,
                              expert_layer_offset=1, mamba_d_state=4, mamba_d_conv=4, mamba_expand=2,
                              use_mamba_kernels=False),
    "mamba": lambda: _tf().MambaForCausalLM(_tf().MambaConfig(hidden_size=32, num_hidden_layers=2, vocab_size=V,
                                                              state_size=4, expand=2, conv_kernel=4)),
    "mamba2": lambda: _decoder("Mamba2Config", num_heads=4, head_dim=16, state_size=8, expand=2, n_groups=1,
                               chunk_size=4),
    # encoders
    "roberta": lambda: _encoder("RobertaConfig", "RobertaForMaskedLM", pad_token_id=1),
    "electra": lambda: _encoder("ElectraConfig", "ElectraForMaskedLM", embedding_size=16),
    "albert": lambda: _encoder("AlbertConfig", "AlbertForMaskedLM", embedding_size=16),
    "modernbert": lambda: _encoder("ModernBertConfig", "ModernBertForMaskedLM", pad_token_id=0, bos_token_id=1,
                                   eos_token_id=2, cls_token_id=1, sep_token_id=2, global_attn_every_n_layers=2,
                                   local_attention=8),
    "distilbert": lambda: _tf().DistilBertForMaskedLM(_tf().DistilBertConfig(
        dim=32, hidden_dim=64, n_layers=2, n_heads=4, vocab_size=V, max_position_embeddings=64)),
    "clip_text": lambda: _encoder("CLIPTextConfig", "CLIPTextModel"),
    # encoder-decoders
    "pegasus": lambda: _seq2seq("PegasusConfig", "PegasusForConditionalGeneration"),
    "mbart": lambda: _seq2seq("MBartConfig", "MBartForConditionalGeneration"),
    "switch": lambda: _t5_like("SwitchTransformersConfig", "SwitchTransformersForConditionalGeneration",
                               num_experts=4),
    "longt5": lambda: _t5_like("LongT5Config", "LongT5ForConditionalGeneration", local_radius=4,
                               global_block_size=4, encoder_attention_type="transient-global"),
    "moonshine": lambda: _tf().MoonshineForConditionalGeneration(_tf().MoonshineConfig(
        hidden_size=32, intermediate_size=64, encoder_num_hidden_layers=2, decoder_num_hidden_layers=2,
        encoder_num_attention_heads=4, decoder_num_attention_heads=4, vocab_size=V, max_position_embeddings=64,
        decoder_start_token_id=1, pad_token_id=0)),
    # vision, audio, multimodal
    "swin": lambda: _tf().SwinForImageClassification(_tf().SwinConfig(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 4], window_size=4)),
    "convnext": lambda: _tf().ConvNextForImageClassification(_tf().ConvNextConfig(
        hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)),
    "dinov2": lambda: _vision("Dinov2Config", "Dinov2Model"),
    "beit": lambda: _vision("BeitConfig", "BeitForImageClassification", use_relative_position_bias=True),
    "siglip_vision": lambda: _vision("SiglipVisionConfig", "SiglipVisionModel"),
    "hubert": lambda: _tf().HubertModel(_tf().HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        layerdrop=0.0, mask_time_prob=0.0)),
    "clip": lambda: _tf().CLIPModel(_tf().CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         vocab_size=V, max_position_embeddings=64),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8), projection_dim=16)),
    # diffusers
    "unet_cond": lambda: _diffusers(
        "UNet2DConditionModel", sample_size=16, in_channels=4, out_channels=4, block_out_channels=(16, 32),
        layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16, attention_head_dim=4,
        norm_num_groups=8),
    "ae_tiny": lambda: _diffusers("AutoencoderTiny", encoder_block_out_channels=(8, 8, 8, 8),
                                  decoder_block_out_channels=(8, 8, 8, 8), num_encoder_blocks=(1, 1, 1, 1),
                                  num_decoder_blocks=(1, 1, 1, 1), latent_channels=4),
    "wan_vae": lambda: _diffusers("AutoencoderKLWan", base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1,
                                  attn_scales=[], temperal_downsample=[True]),
    "dit": lambda: _diffusers("DiTTransformer2DModel", num_attention_heads=2, attention_head_dim=8, in_channels=4,
                              num_layers=2, sample_size=8, patch_size=2, num_embeds_ada_norm=10),
    "sd3": lambda: _diffusers("SD3Transformer2DModel", sample_size=8, patch_size=2, in_channels=4, num_layers=2,
                              attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16,
                              caption_projection_dim=16, pooled_projection_dim=8, out_channels=4,
                              pos_embed_max_size=16),
    "flux": lambda: _diffusers("FluxTransformer2DModel", patch_size=1, in_channels=8, num_layers=1,
                               num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
                               joint_attention_dim=16, pooled_projection_dim=8, axes_dims_rope=(2, 2, 4)),
    "pixart": lambda: _diffusers("PixArtTransformer2DModel", num_attention_heads=2, attention_head_dim=8,
                                 in_channels=4, out_channels=8, num_layers=2, cross_attention_dim=16, sample_size=8,
                                 patch_size=2, caption_channels=16),
}

INPUTS: dict[str, tuple[str, ...]] = {
    **{name: TOKENS for name in BUILDS},
    **{name: SEQ2SEQ for name in ("pegasus", "mbart", "switch", "longt5")},
    **{name: IMAGE for name in ("swin", "convnext", "dinov2", "beit", "siglip_vision", "ae_tiny")},
    "moonshine": ("2x4000", "decoder_input_ids=2x6:long"),
    "hubert": ("2x400",),
    "clip": ("input_ids=2x7:long", "pixel_values=2x3x32x32"),
    "unet_cond": ("2x4x16x16", "timestep=2:long", "encoder_hidden_states=2x5x16"),
    "wan_vae": ("2x3x5x16x16",),
    "dit": ("2x4x8x8", "timestep=2:long", "class_labels=2:long"),
    "sd3": ("2x4x8x8", "encoder_hidden_states=2x5x16", "pooled_projections=2x8", "timestep=2:long"),
    "flux": ("2x16x8", "encoder_hidden_states=2x5x16", "pooled_projections=2x8", "timestep=2", "img_ids=16x3",
             "txt_ids=5x3"),
    "pixart": ("2x4x8x8", "encoder_hidden_states=2x5x16", "timestep=2:long"),
}


def build(name: str) -> nn.Module:
    """The model `name`, in eval mode (dropout off: FlopCounterMode's real run and aelab's trace agree)."""
    return BUILDS[name]().eval()


def __getattr__(name: str) -> Any:
    """`wide_models.qwen2()`: each entry is a factory the CLI can name."""
    if name in BUILDS:
        return lambda: build(name)
    raise AttributeError(name)
