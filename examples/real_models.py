"""Real third-party models for the bottleneck page (docs/bottleneck.md), built from their config classes.

Random weights; the CLI builds them on meta (no memory), so the full Stable Diffusion VAE config is cheap.

    aelab inspect examples/real_models.py:sd_vae --input 1x3x256x256 --bottleneck-only
    aelab inspect examples/real_models.py:t5 --input 2x12:long --input decoder_input_ids=2x6:long --bottleneck-only
"""

from __future__ import annotations

from torch import nn


def sd_vae(width: int = 128, groups: int = 32, layers: int = 2) -> nn.Module:
    """Stable Diffusion's VAE (diffusers `AutoencoderKL`): block_out_channels [w, 2w, 4w, 4w] = [128, 256, 512,
    512], 4 latent channels, 4 down blocks (3 of them downsample: 8x smaller)."""
    import diffusers

    return diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                                   block_out_channels=[width, 2 * width, 4 * width, 4 * width],
                                   down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                                   layers_per_block=layers, norm_num_groups=groups)


def t5(d_model: int = 32) -> nn.Module:
    """A small T5 encoder-decoder (transformers `T5ForConditionalGeneration`), vocabulary 96."""
    import transformers

    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=96, d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=2, num_heads=4, decoder_start_token_id=0))
