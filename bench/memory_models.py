"""Model factories for the memory docs and benchmark: `aelab memory bench/memory_models.py:llama2_7b ...`."""

from __future__ import annotations

from torch import nn


def llama2_7b() -> nn.Module:
    """Llama-2-7B's shape (32 layers, hidden 4096, 32 heads, MLP 11008, vocab 32000): 6,738,415,616 parameters.
    Build it under `torch.device("meta")` (the CLI does): it is never materialised."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                        max_position_embeddings=4096))
