"""The models the memory predictions are checked on: small, but each with megabytes of activations.

Each entry: a factory (seeded, real CPU weights) and its inputs. Language models take token ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.utils.checkpoint
from torch import nn


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.GELU(), nn.Linear(1024, 256))


def convnet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                         nn.Flatten(), nn.Linear(64 * 16, 10))


def conv_ae() -> nn.Module:
    enc = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1),
                        nn.ReLU())
    dec = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
                        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1), nn.Sigmoid())
    return nn.Sequential(enc, dec)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class ResNet18(nn.Module):
    """ResNet-18 written out (torchvision's layout: 2-2-2-2 basic blocks), at a quarter of the width."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], width
        for i, cout in enumerate([width, width * 2, width * 4, width * 8]):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=2000, n_positions=128, n_embd=128, n_layer=2, n_head=4)
    return GPT2LMHeadModel(cfg)


def llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=2000, hidden_size=128, intermediate_size=344, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return LlamaForCausalLM(cfg)


def mixtral() -> nn.Module:
    """Grouped-mm experts (transformers 5's default): the meta/fake kernel of `aten._grouped_mm` wants bf16, the
    CPU one runs fp32; the step stands in the CPU kernel's output sizes."""
    from transformers import MixtralConfig, MixtralForCausalLM

    cfg = MixtralConfig(vocab_size=2000, hidden_size=128, intermediate_size=344, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                        num_local_experts=4, num_experts_per_tok=2)
    return MixtralForCausalLM(cfg)


def bert() -> nn.Module:
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(vocab_size=2000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=512, max_position_embeddings=128)
    return BertForMaskedLM(cfg)


class LSTMAE(nn.Module):
    """Sequence autoencoder: a 2-layer LSTM encoder, its last state repeated into an LSTM decoder."""

    def __init__(self, features: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.encoder = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)
        z = h[-1].unsqueeze(1).expand(-1, x.shape[1], -1)
        y, _ = self.decoder(z)
        return self.out(y)


def half_frozen() -> nn.Module:
    net = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                        nn.ReLU(), nn.Linear(1024, 64))
    for p in [*net[0].parameters(), *net[2].parameters()]:
        p.requires_grad_(False)
    return net


class Checkpointed(nn.Module):
    """Four FFN blocks, each run under `torch.utils.checkpoint` (non-reentrant)."""

    def __init__(self, d: int = 256) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
                                    for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = x + torch.utils.checkpoint.checkpoint(b, x, use_reentrant=False)
        return x


@dataclass
class Case:
    name: str
    factory: Callable[[], nn.Module]
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    high: int = 2000  # token ids below this
    kw: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        return self.factory()

    def inputs(self, batch: int | None = None) -> list[torch.Tensor]:
        shape = (batch, *self.shape[1:]) if batch else self.shape
        torch.manual_seed(1)
        if self.dtype == torch.long:
            return [torch.randint(0, self.high, shape)]
        return [torch.randn(shape)]


CASES = [
    Case("mlp", mlp, (64, 512)),
    Case("convnet", convnet, (16, 3, 32, 32)),
    Case("conv_ae", conv_ae, (16, 1, 28, 28)),
    Case("resnet18", ResNet18, (4, 3, 64, 64)),
    Case("gpt2", gpt2, (4, 64), torch.long),
    Case("llama", llama, (4, 64), torch.long),
    Case("bert", bert, (4, 64), torch.long),
    Case("mixtral", mixtral, (4, 64), torch.long),
    Case("lstm_ae", LSTMAE, (16, 50, 32)),
    Case("half_frozen", half_frozen, (64, 256)),
    Case("checkpointed", Checkpointed, (64, 256)),
]
