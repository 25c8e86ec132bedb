"""The trajectory detector's classifier heads (trajectory-detector paper, section 4):
an LSTM over the blocks or an MLP on the flattened trajectory, each ending in one logit."""

from __future__ import annotations

import torch
from torch import nn


class LSTMHead(nn.Module):
    """(B, L, C) trajectory -> (B,) logit: LSTM over blocks, last hidden state -> FC."""

    def __init__(self, n_classes: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_classes, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1]).squeeze(-1)


class MLPHead(nn.Module):
    """(B, L, C) trajectory -> (B,) logit: flatten -> FC(hidden) -> ReLU -> dropout -> FC."""

    def __init__(self, n_layers: int, n_classes: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_layers * n_classes, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
