"""Local inference: model catalog, artifact store, llama.cpp context pool, embeddings and
tokenizers. Imports nothing from ``appliance``."""
