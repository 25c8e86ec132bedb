"""The device: a GPU runs without cuDNN; constants kept there are copied once, equal to the
CPU's, usable with gradients."""

import pytest
import torch

from faceguard.cloak.transforms import dct_matrix
from faceguard.device import constant_like, pick_device


def test_picking_a_gpu_turns_cudnn_off_and_the_cpu_leaves_it(monkeypatch):
    # cuDNN plans each shape once per thread, and each job cloaks in a new thread
    was = torch.backends.cudnn.enabled
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # only named: no GPU used
    try:
        torch.backends.cudnn.enabled = True
        assert pick_device("cpu") == "cpu" and torch.backends.cudnn.enabled
        assert pick_device("cuda:0") == "cuda:0"
        assert not torch.backends.cudnn.enabled
    finally:
        torch.backends.cudnn.enabled = was


def test_a_device_that_is_not_there_is_one_plain_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU is available here"):
        pick_device("cuda")
    for name in ("tpu", "nonsense"):
        with pytest.raises(ValueError, match="choose cpu or cuda"):
            pick_device(name)
    assert pick_device(None) == "cpu"


def test_a_constant_is_copied_once_per_dtype_with_the_same_values():
    single, double = torch.zeros(1), torch.zeros(1, dtype=torch.float64)
    first = constant_like(dct_matrix, single)
    assert constant_like(dct_matrix, single) is first  # kept, not copied again
    assert first.dtype == torch.float32 and first.device == single.device
    again = constant_like(dct_matrix, double)
    assert again.dtype == torch.float64
    assert torch.equal(first, dct_matrix().to(single))
    assert torch.equal(again, dct_matrix().to(double))


def test_a_constant_first_made_in_inference_mode_still_takes_gradients():
    with torch.inference_mode():
        d = constant_like(dct_matrix, torch.zeros(1, dtype=torch.float16))
    x = torch.ones(8, 8, dtype=torch.float16, requires_grad=True)
    (d @ x).sum().backward()  # an inference tensor would refuse to be saved for backward
    assert x.grad is not None and not d.is_inference()
