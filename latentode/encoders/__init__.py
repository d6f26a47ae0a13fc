"""Encoders: an `IrregularBatch` → a Normal posterior over the latent initial state z0."""

from latentode.encoders.base import Encoder
from latentode.encoders.gru import GRUEncoder
from latentode.encoders.odernn import ODERNNEncoder

ENCODERS: dict[str, type[Encoder]] = {"gru": GRUEncoder, "odernn": ODERNNEncoder}

__all__ = ["ENCODERS", "Encoder", "GRUEncoder", "ODERNNEncoder"]
