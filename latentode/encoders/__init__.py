"""Encoders: an `IrregularBatch` → a Normal posterior over the latent initial state z0."""

from latentode.encoders.base import Encoder
from latentode.encoders.flowrnn import FlowRNNEncoder
from latentode.encoders.gru import GRUEncoder
from latentode.encoders.odernn import ODERNNEncoder

ENCODERS: dict[str, type[Encoder]] = {
    "flowrnn": FlowRNNEncoder,
    "gru": GRUEncoder,
    "odernn": ODERNNEncoder,
}

__all__ = ["ENCODERS", "Encoder", "FlowRNNEncoder", "GRUEncoder", "ODERNNEncoder"]
