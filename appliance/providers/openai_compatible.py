"""OpenAI-compatible servers: vLLM, llama-server, Ollama's ``/v1``, TGI, OpenAI-style SaaS.

The OpenAI adapter with three differences: the zone comes from the config (``site`` for a
server on the premises, ``cloud`` for a SaaS); the key is optional; and ``max_tokens`` is sent
under its old name, which every such server understands.

Some of these servers omit ``usage`` (older llama-server, some proxies, streams that ignore
``stream_options``). Then usage is *approximate*: about four characters a token for the
prompt (plus four per message) and for a whole generated text, one token per streamed chunk. The ledger is charged that
estimate rather than nothing; a debug log line says when it happened.
"""

from __future__ import annotations

from appliance.providers.openai import OpenAIProvider


class OpenAICompatibleProvider(OpenAIProvider):
    default_base_url = ""  # ProviderConfig requires base_url for this kind
    max_tokens_field = "max_tokens"
    usage_optional = True
