"""Azure OpenAI: the OpenAI translation with Azure's URL, auth and ``api-version``.

Azure addresses a *deployment*, not a model: the config maps each model id clients use to
the deployment that serves it. The key goes in an ``api-key`` header. Bodies, streams and
errors are OpenAI's, so nothing else is overridden.
"""

from __future__ import annotations

from urllib.parse import quote

from appliance.providers.config import DEFAULT_AZURE_API_VERSION
from appliance.providers.openai import OpenAIProvider


class AzureOpenAIProvider(OpenAIProvider):
    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.secret.reveal()} if self.secret else {}

    def deployment(self, model: str) -> str:
        models = self.config.models
        assert isinstance(models, dict)  # ProviderConfig guarantees it for azure_openai
        return models.get(model, model)

    def upstream_model(self, model: str) -> str:
        return self.deployment(model)

    def request_target(self, model: str) -> tuple[str, dict[str, str]]:
        path = f"/openai/deployments/{quote(self.deployment(model), safe='')}/chat/completions"
        return path, {"api-version": self.config.api_version or DEFAULT_AZURE_API_VERSION}
