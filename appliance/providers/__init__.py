"""Provider adapters: one module per provider behind ``Provider`` (``base.py``)."""

from appliance.providers.base import Embeddings, ModelInfo, Provider, Zone

__all__ = ["Embeddings", "ModelInfo", "Provider", "Zone"]
