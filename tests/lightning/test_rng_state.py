"""RNGState: checkpoints carry torch's CPU and CUDA generator states (CUDA faked on a CPU)."""

from __future__ import annotations

import io

import pytest
import torch

from latentode.lightning.checkpointing import RNGState


class FakeCuda:
    """Stands in for ``torch.cuda``'s RNG functions and records what is set."""

    def __init__(self, n_devices: int) -> None:
        # a CUDA generator state is a ByteTensor (seed and offset); these are told apart
        self.states = [torch.full((16,), 10 + i, dtype=torch.uint8) for i in range(n_devices)]
        self.n_devices = n_devices
        self.restored: list[list[torch.Tensor]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch, *, initialised: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialised)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: self.n_devices)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: list(self.states))
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", self.restored.append)


def _no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("CUDA RNG touched on a machine without CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", refuse)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", refuse)


def _through_a_checkpoint_file(state: dict) -> dict:
    """The state as a resume reads it back: saved, then loaded with ``weights_only=True``."""
    buffer = io.BytesIO()
    torch.save({"callbacks": {"RNGState": state}}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)["callbacks"]["RNGState"]


def test_cuda_states_are_saved_and_restored_when_cuda_is_in_use(monkeypatch):
    cuda = FakeCuda(n_devices=2)
    cuda.install(monkeypatch)
    state = _through_a_checkpoint_file(RNGState().state_dict())
    assert len(state["cuda"]) == 2
    for saved, original in zip(state["cuda"], cuda.states, strict=True):
        assert torch.equal(saved, original)
    RNGState().load_state_dict(state)
    assert len(cuda.restored) == 1
    for restored, original in zip(cuda.restored[0], cuda.states, strict=True):
        assert torch.equal(restored, original)


def test_the_cpu_state_is_restored_alongside(monkeypatch):
    FakeCuda(n_devices=1).install(monkeypatch)
    torch.manual_seed(3)
    state = _through_a_checkpoint_file(RNGState().state_dict())
    expected = torch.rand(4)
    RNGState().load_state_dict(state)
    assert torch.equal(torch.rand(4), expected)


def test_cuda_that_was_never_initialised_is_neither_started_nor_saved(monkeypatch):
    cuda = FakeCuda(n_devices=1)
    cuda.install(monkeypatch, initialised=False)
    assert "cuda" not in RNGState().state_dict()


def test_a_cpu_only_machine_saves_no_cuda_state(monkeypatch):
    _no_cuda(monkeypatch)
    assert set(RNGState().state_dict()) == {"torch"}


def test_a_gpu_checkpoint_resumes_on_a_cpu_only_machine(monkeypatch):
    FakeCuda(n_devices=2).install(monkeypatch)
    state = _through_a_checkpoint_file(RNGState().state_dict())
    assert "cuda" in state
    _no_cuda(monkeypatch)
    torch.manual_seed(5)
    state["torch"] = torch.get_rng_state()
    expected = torch.rand(4)
    RNGState().load_state_dict(state)  # no error; the CUDA states are ignored
    assert torch.equal(torch.rand(4), expected)


def test_a_checkpoint_without_cuda_states_resumes_on_a_gpu(monkeypatch):
    cuda = FakeCuda(n_devices=1)
    cuda.install(monkeypatch)
    RNGState().load_state_dict({"torch": torch.get_rng_state()})
    assert cuda.restored == []


def test_fewer_devices_than_were_saved_restore_those_there_are(monkeypatch):
    FakeCuda(n_devices=3).install(monkeypatch)
    state = RNGState().state_dict()
    fewer = FakeCuda(n_devices=2)
    fewer.install(monkeypatch)
    RNGState().load_state_dict(state)
    assert [int(s[0]) for s in fewer.restored[0]] == [10, 11]
