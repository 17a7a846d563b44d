import pytest
import torch

from vqvae.plumbing.cli import resolve_device


def test_auto_is_cuda_only_when_torch_sees_a_gpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_device_names_the_value():
    with pytest.raises(ValueError, match="'gpu0'"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_says_what_to_use():
    with pytest.raises(ValueError, match="--device cpu or auto"):
        resolve_device("cuda")
