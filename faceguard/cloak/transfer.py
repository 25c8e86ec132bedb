"""Transfer levers: make a cloak computed on our recognizers fool the ones it never saw.

An attacker runs their own recognizer. A cloak fitted too closely to ours exploits
their quirks and transfers poorly; each lever here randomises what the optimiser sees,
so only changes that fool a whole family of similar models survive.

- ``diversity``: input diversity (Xie et al., "Improving transferability of adversarial
  examples with input diversity", CVPR 2019): each draw resizes the aligned face by a
  random factor and pads it back at a random offset.
- ``dropout``: model augmentation (Zhong and Deng, "Towards transferable adversarial
  attack against deep face recognition", DFANet, TIFS 2021; Li et al., "Learning
  transferable adversarial examples via ghost networks", AAAI 2020): dropout on the
  feature maps of every block of every recognizer, anew at each forward pass, so each
  step sees a slightly different "ghost" model.
- ``purify``: purification in the loop: every other draw of the objective sees the
  face through a differentiable copy of the audit's bilateral defense
  (:func:`faceguard.cloak.transforms.bilateral`), so the cloak learns to survive it
  (as LowKey attacks a blurred copy of each image as well).
- ``log``: the objective's pooling over recognizers: the mean of log distances instead
  of capped distances, so the least-fooled recognizer gets the most weight and no model
  stops pulling once past a cap.

:data:`faceguard.settings.TRANSFER_LEVERS` names them; ``CloakSettings.transfer``
picks them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from faceguard.models.ensemble import Ensemble


def diversity(faces: torch.Tensor, generator: torch.Generator, low: float = 0.85
              ) -> torch.Tensor:
    """Resize (B, C, S, S) faces to a random side in [low * S, S] and pad them back to S
    at a random offset (edge padding), as one draw for the whole batch."""
    size = faces.shape[-1]
    side = int(torch.randint(round(low * size), size + 1, (1,), generator=generator))
    if side == size:
        return faces
    small = F.interpolate(faces, size=(side, side), mode="bilinear", align_corners=False,
                          antialias=True)
    left = int(torch.randint(0, size - side + 1, (1,), generator=generator))
    top = int(torch.randint(0, size - side + 1, (1,), generator=generator))
    return F.pad(small, (left, size - side - left, top, size - side - top), mode="replicate")


@contextmanager
def dropout(ensemble: Ensemble, generator: torch.Generator, p: float = 0.1
            ) -> Iterator[None]:
    """While active, every block of every recognizer but the embedding drops a share
    ``p`` of its output features (rescaled by 1 / (1 - p)), anew at each forward pass."""
    def drop(module, inputs, output):
        keep = torch.rand(output.shape, generator=generator) >= p
        return output * keep.to(output) / (1 - p)

    handles = [block.register_forward_hook(drop)
               for r in ensemble for block in list(r.layers().values())[:-1]]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
