"""Small models for the ladder's CLI tests: each refuses meta execution in its own way, none is wrong."""

from __future__ import annotations

import math

import torch
import transformers
from torch import nn


class RefusesMeta(nn.Module):
    """compressai-style: the constructor reads a value of a tensor it just made (meta has none)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        bound = float(torch.linspace(0.0, 1.0, 5).sum().item())  # a value: refuses the meta device
        self.register_buffer("bound", torch.tensor(bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).clamp(max=self.bound)


class SinusoidalReads(nn.Module):
    """A buffer computed in the constructor from constants, and read in forward (`if ... .item()`)."""

    def __init__(self, length: int = 16, dim: int = 8) -> None:
        super().__init__()
        pos = torch.arange(length).unsqueeze(1)
        freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        table = torch.zeros(length, dim)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq)
        self.register_buffer("table", table)
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        if self.table[:steps].abs().max().item() > 1.5:  # never: sin and cos stay in [-1, 1]
            return x
        return self.fc(x + self.table[:steps])


class PythonCheck(nn.Module):
    """Python code that refuses meta tensors though a real forward runs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_meta:
            raise RuntimeError("this layer wants real tensors")
        return self.fc(x)


class Wrong(nn.Module):
    """Really wrong: 4 features into a layer that takes 5."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def llama_7b() -> nn.Module:
    """Llama-2-7B's shape (the done-when benchmark; only ever built on meta)."""
    cfg = transformers.LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=32, vocab_size=32000, use_cache=False)
    return transformers.LlamaForCausalLM(cfg)


def gpt2() -> nn.Module:
    """Full-size GPT-2 (124,439,808 parameters, lm_head tied to wte)."""
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(use_cache=False))
