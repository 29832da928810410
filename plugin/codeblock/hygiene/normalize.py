"""Normalisation for overlap detection: token streams, hashed n-grams, canonical Python functions.

Two token streams per text:

* **code** tokens: identifiers, numbers and single punctuation characters; all quote characters map to
  ``"`` so re-quoting (black, prettier) does not change them; whitespace and layout vanish.
* **text** tokens: lower-cased ``[a-z0-9]+`` words only (prose, docstrings, and code seen as words).

N-grams are 64-bit hashes (stable across processes: blake2b per token, then a polynomial roll in numpy).

Canonical Python functions: docstrings, annotations and comments removed, every non-builtin name renamed
to ``v0, v1, ...`` in order of first appearance; the sha256 of ``ast.dump`` is the fingerprint.

    >>> a = function_fingerprints("def add(a, b):\\n    '''Sum.'''\\n    return a + b  # plus\\n", min_nodes=1)
    >>> b = function_fingerprints("def plus(x,y): return x+y", min_nodes=1)
    >>> [f for f, _, _ in a] == [f for f, _, _ in b]
    True
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import re
import warnings

import numpy as np

CODE_TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[^\sA-Za-z0-9_]")
TEXT_TOKEN_RE = re.compile(r"[a-z0-9]+")
_QUOTES = {"'": '"', "`": '"'}
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for the polynomial n-gram roll
_token_cache: dict[str, int] = {}
_BUILTINS = frozenset(dir(builtins)) | {"self", "cls"}
_FENCE_RE = re.compile(r"```[\w+#.-]*[ \t]*\n(.*?)```", re.S)
_CODE_START_RE = re.compile(r"^(def |class |import |from |async def |@)", re.M)


def code_tokens(text: str) -> list[str]:
    return [_QUOTES.get(t, t) for t in CODE_TOKEN_RE.findall(text)]


def text_tokens(text: str) -> list[str]:
    return TEXT_TOKEN_RE.findall(text.lower())


def _token_hash(tok: str) -> int:
    return int.from_bytes(hashlib.blake2b(tok.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def token_ids(tokens: list[str]) -> np.ndarray:
    """Stable 64-bit hash per token (blake2b, memoised: set/map calls keep the hot loop in C)."""
    missing = set(tokens).difference(_token_cache)
    if missing:
        if len(_token_cache) > 2_000_000:
            _token_cache.clear()  # bound memory on huge inputs; values are recomputable
        for tok in missing:
            _token_cache[tok] = _token_hash(tok)
    return np.fromiter(map(_token_cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def ngram_hashes(tokens: list[str], n: int, unique: bool = True) -> np.ndarray:
    """Hashes of all token n-grams, sorted and unique unless ``unique=False`` (empty when fewer than n tokens)."""
    if len(tokens) < n or n < 1:
        return np.empty(0, dtype=np.uint64)
    ids = token_ids(tokens)
    m = len(tokens) - n + 1
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * _MULT + ids[j:j + m]
    return np.unique(h) if unique else h


def ngram_hashes_range(tokens: list[str], k_min: int, k_max: int) -> np.ndarray:
    """Hashes of all k-grams for k_min <= k <= k_max in one pass (same values as :func:`ngram_hashes`)."""
    if len(tokens) < k_min or k_max < k_min:
        return np.empty(0, dtype=np.uint64)
    ids = token_ids(tokens)
    h = np.zeros(len(tokens), dtype=np.uint64)
    parts = []
    with np.errstate(over="ignore"):
        for k in range(1, min(k_max, len(tokens)) + 1):
            h = h[:len(tokens) - k + 1] * _MULT + ids[k - 1:]
            if k >= k_min:
                parts.append(h)
    return np.concatenate(parts)


def batched_ngrams(token_lists: list[list[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, list index) of every n-gram of every token list, computed in one vectorised pass.

    Same hash values as :func:`ngram_hashes`; n-grams never straddle two lists.
    """
    lengths = np.array([len(t) for t in token_lists], dtype=np.int64)
    total = int(lengths.sum())
    if total < n or n < 1:
        return np.empty(0, np.uint64), np.empty(0, np.int32)
    ids = token_ids([tok for toks in token_lists for tok in toks])
    m = total - n + 1
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * _MULT + ids[j:j + m]
    owner = np.repeat(np.arange(len(token_lists), dtype=np.int32), lengths)[:m]
    ends = np.cumsum(lengths)
    valid = np.arange(m) + n <= ends[owner]
    return h[valid], owner[valid]


# ---------------------------------------------------------------- Python functions
class _Canon(ast.NodeTransformer):
    """Rename non-builtin identifiers by first appearance; drop docstrings and annotations."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _name(self, name: str) -> str:
        if name in _BUILTINS:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def _strip_doc(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node):
        node.name = self._name(node.name)
        node.returns = None
        node.decorator_list = []
        node.type_params = []
        self._strip_doc(node)
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        node.name = self._name(node.name)
        self._strip_doc(node)
        self.generic_visit(node)
        return node

    def visit_arg(self, node):
        node.arg = self._name(node.arg)
        node.annotation = None
        return node

    def visit_Name(self, node):
        node.id = self._name(node.id)
        return node

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        if node.value is None:
            return None
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno), node)

    def visit_Expr(self, node):
        # Bare string statements (docstring-like comments) carry no behaviour.
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        self.generic_visit(node)
        return node


def parse_python(text: str) -> ast.Module | None:
    """Parse ``text`` as Python; tries fenced blocks and the span from the first def/class/import line."""
    candidates = [text]
    candidates += _FENCE_RE.findall(text)
    m = _CODE_START_RE.search(text)
    if m and m.start() > 0:
        candidates.append(text[m.start():])
    for cand in candidates:
        if "def " not in cand:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning on odd escapes in training data
                return ast.parse(cand)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None


def _node_count(node: ast.AST) -> int:
    return sum(1 for _ in ast.walk(node))


def canonical_function(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, int]:
    """(sha256 of the canonical dump, node count after canonicalisation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = ast.parse(ast.unparse(fn)).body[0]  # re-parse: never mutate the caller's tree
    tree = _Canon().visit(fresh)
    dump = ast.dump(tree, annotate_fields=False, include_attributes=False)
    return hashlib.sha256(dump.encode()).hexdigest(), _node_count(tree)


def function_fingerprints(text: str, min_nodes: int = 40) -> list[tuple[str, str, int]]:
    """[(fingerprint, original function name, node count)] for each function in ``text`` of >= min_nodes nodes."""
    tree = parse_python(text)
    if tree is None:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            try:
                fp, size = canonical_function(node)
            except (SyntaxError, ValueError, RecursionError):
                continue
            if size >= min_nodes:
                out.append((fp, node.name, size))
    return out
