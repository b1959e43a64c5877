"""Sentence embeddings from all-MiniLM-L6-v2 (ONNX, int8) for /v1/embeddings and the semantic cache.

The model returns one 384-wide hidden state per token; a sentence vector is their mean over the
real (unpadded) tokens, L2-normalized, which is how sentence-transformers defines this model's
output. Normalized vectors make cosine similarity a plain dot product for the cache.

Thread safety: `onnxruntime.InferenceSession.run` may be called from several threads at once.
A `tokenizers.Tokenizer` may be shared for encoding, but changing its truncation or padding
while another thread encodes raises "Already borrowed" (huggingface/tokenizers#537). So both
tokenizers below are configured once in `load` and never changed afterwards: one truncates and
pads for the model, the other counts tokens as the client sent them, for usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import os

# onnxruntime otherwise keeps a telemetry queue (with a device id) under ~/.cache and ships
# an upload endpoint; only this variable, set before the import, turns it off.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import onnxruntime  # type: ignore[import-untyped]  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

__all__ = ["MiniLMEmbedder"]

#: sentence-transformers' max_seq_length for this model; longer input is truncated.
MAX_TOKENS = 256
#: Texts per session.run: bounds memory (batch x longest x 384 floats) and padding waste.
BATCH_SIZE = 32


class MiniLMEmbedder:
    """all-MiniLM-L6-v2: texts in, L2-normalized float32 vectors of 384 dimensions out."""

    dimensions = 384

    def __init__(
        self, session: onnxruntime.InferenceSession, encoder: Tokenizer, counter: Tokenizer
    ) -> None:
        self._session = session
        self._encoder = encoder
        self._counter = counter
        self._input_names = {graph_input.name for graph_input in session.get_inputs()}
        self._output_name = session.get_outputs()[0].name

    @classmethod
    def load(cls, model_path: Path, tokenizer_path: Path, *, threads: int = 1) -> MiniLMEmbedder:
        """Open the model and tokenizer; the paths come from `ArtifactStore.ensure_verified`.

        `threads` bounds the cores one embed call uses (intra-op); inter-op parallelism is off
        because this graph is a single chain and extra pools only compete with llama.cpp.
        """
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        width = session.get_outputs()[0].shape[-1]
        if width != cls.dimensions:
            raise ValueError(f"{model_path}: output width {width}, expected {cls.dimensions}")

        encoder = Tokenizer.from_file(str(tokenizer_path))
        encoder.enable_truncation(max_length=MAX_TOKENS)
        pad_id = encoder.token_to_id("[PAD]")
        # The file pads every input to 128; pad a batch only to its longest text instead.
        encoder.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        counter = Tokenizer.from_file(str(tokenizer_path))
        counter.no_truncation()
        counter.no_padding()
        return cls(session, encoder, counter)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit vector per text, shape (len(texts), 384), in input order."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        vectors = [
            self._embed_batch(texts[start : start + BATCH_SIZE])
            for start in range(0, len(texts), BATCH_SIZE)
        ]
        if not vectors:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.concatenate(vectors, axis=0)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text including [CLS] and [SEP], before truncation: usage.prompt_tokens."""
        if isinstance(texts, str):
            raise TypeError("count_tokens() takes a sequence of texts, not one string")
        if not texts:
            return []
        return [len(encoding.ids) for encoding in self._counter.encode_batch(list(texts))]

    def _embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        encodings = self._encoder.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {key: value for key, value in feeds.items() if key in self._input_names}
        (hidden,) = self._session.run([self._output_name], feeds)
        weights = mask[:, :, np.newaxis].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit
