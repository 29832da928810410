"""Instruction embeddings for pair selection (method.md §2(a)): offline and deterministic.

Default ``tfidf_svd256``: TF-IDF over unigrams+bigrams with sublinear tf, TruncatedSVD to 256 dimensions
(``random_state=seed``), then L2 normalisation. Small corpora get fewer dimensions (SVD needs
``n_components < min(n_rows, n_features)``). Any other ``method`` is treated as a sentence-transformers model id
(optional dependency, imported lazily).

    >>> E = embed_texts(["sort a list", "sort a list of numbers", "open a file"], seed=0)
    >>> E.shape[0], bool(np.allclose(np.linalg.norm(E, axis=1), 1.0))
    (3, True)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_EMBEDDING = "tfidf_svd256"


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (an empty text is far from everything)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def embed_texts(texts: Sequence[str], method: str = DEFAULT_EMBEDDING, seed: int = 42, dim: int = 256) -> np.ndarray:
    """(N, d) float64 L2-normalised embeddings of ``texts``."""
    texts = ["" if t is None else str(t) for t in texts]
    if not texts:
        return np.zeros((0, 0))
    if method.startswith("tfidf_svd"):
        suffix = method[len("tfidf_svd") :]
        return _tfidf_svd(texts, int(suffix) if suffix else dim, seed)
    return _sentence_transformers(texts, method)


def _tfidf_svd(texts: list[str], dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float64)
    try:
        tfidf = vec.fit_transform(texts)
    except ValueError:  # empty vocabulary (all texts empty / stop words only)
        return np.zeros((len(texts), 1))
    n_comp = min(dim, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
    if n_comp < 1:
        return l2_normalize(tfidf.toarray())
    svd = TruncatedSVD(n_components=n_comp, random_state=seed, algorithm="randomized", n_iter=7)
    return l2_normalize(svd.fit_transform(tfidf))


def _sentence_transformers(texts: list[str], model_id: str) -> np.ndarray:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ValueError(
            f"embedding {model_id!r} is not {DEFAULT_EMBEDDING!r}, so it must be a sentence-transformers model id; "
            "install sentence-transformers or use embedding: tfidf_svd256"
        ) from exc
    model = SentenceTransformer(model_id)
    return l2_normalize(np.asarray(model.encode(texts, batch_size=64, show_progress_bar=False)))


def knn_mean_cosine_distance(emb: np.ndarray, k: int = 10, chunk: int = 1024) -> np.ndarray:
    """d_e = mean cosine distance from row e to its k nearest OTHER rows (brute force, chunked).

    Rows must be L2-normalised. Fewer than k others: the mean over all of them; a single row: 0.
    Only distance values enter the mean, so which of several tied neighbours is taken cannot change d.
    """
    emb = np.asarray(emb, dtype=np.float64)
    n = emb.shape[0]
    out = np.zeros(n)
    kk = min(k, n - 1)
    if kk < 1:
        return out
    for s in range(0, n, chunk):
        block = emb[s : s + chunk]
        dist = 1.0 - block @ emb.T
        np.clip(dist, 0.0, 2.0, out=dist)
        rows = np.arange(block.shape[0])
        dist[rows, rows + s] = np.inf  # never one's own neighbour
        nearest = np.partition(dist, kk - 1, axis=1)[:, :kk]
        out[s : s + chunk] = np.sort(nearest, axis=1).mean(axis=1)  # sorted: summation order is fixed
    return out


def longtail_from_distance(d) -> np.ndarray:
    """LT = 2/(1+exp(−d)) − 1 (= tanh(d/2)); d = 0 gives 0, d = 0.5 gives ≈ 0.244919."""
    return np.tanh(np.asarray(d, dtype=np.float64) / 2.0)
