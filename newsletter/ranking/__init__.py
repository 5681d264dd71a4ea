"""Ranking: embeddings stored once per model, hybrid per-interest scoring, selection, reasons.

Pure parts (`lexical`, `authors`, `scoring`, `select`, `explain`) take arrays and strings;
`store` and `service` are the database edge; `embedder` is the only module that imports torch.
"""
