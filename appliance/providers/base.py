"""The one small interface every provider implements.

The pipeline's call step sees only this: a finished generation, a stream of deltas, or
embeddings, all in the internal types of ``appliance.types``. Each provider maps its own errors
onto ``appliance.errors`` here at its boundary. HTTP providers (cloud, site) keep translation
pure and separate from transport; the local provider adapts ``local_models``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from appliance.types import Delta, EmbeddingRequest, Generation, GenerationRequest, Usage

Zone = Literal["device", "site", "cloud"]
ModelKind = Literal["chat", "embedding"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a provider serves, as ``/v1/models`` and the router see it."""

    id: str
    kind: ModelKind
    owned_by: str
    context_length: int | None = None


@dataclass(slots=True)
class Embeddings:
    #: Float lists, or base64 strings when the client asked for encoding_format=base64.
    vectors: list[Any]
    usage: Usage
    model: str


class Provider(abc.ABC):
    name: str
    zone: Zone

    @abc.abstractmethod
    def models(self) -> list[ModelInfo]:
        """The models this provider serves now."""

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest) -> Generation:
        """A whole answer."""

    @abc.abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """The answer piece by piece; the last delta carries finish_reason and usage. Closing
        the iterator early must stop the upstream work."""

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        from appliance.errors import InvalidRequest

        raise InvalidRequest(f"Model '{request.model}' does not provide embeddings.",
                             param="model")

    def ready(self) -> bool:
        return True

    async def close(self) -> None:
        return None
