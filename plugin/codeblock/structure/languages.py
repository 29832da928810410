"""Languages: canonical names, fence aliases, tree-sitter grammars and parsing helpers.

Grammars come from the PyPI wheels (``tree-sitter-python`` etc.), so nothing is downloaded at
run time. Parsers are cached per language; tree-sitter works on UTF-8 bytes, so every parse
returns a :class:`ParsedCode` carrying a byte→char map to convert node offsets back to
``str`` indices.

>>> parsed = parse_code("x = 'é'\\n", "python")
>>> parsed.char(parsed.tree.root_node.end_byte)
8
"""

from __future__ import annotations

import bisect
import itertools
import importlib
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter

# Canonical language -> (grammar module, attribute returning the language pointer).
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
}

SUPPORTED_LANGUAGES = ("python", "javascript", "typescript", "java", "c", "cpp", "go", "rust")

# Fence info-string aliases (first word, lowercased) -> canonical language (method.md §2(b)).
ALIASES: dict[str, str] = {
    "python": "python", "py": "python", "python3": "python", "py3": "python",
    "javascript": "javascript", "js": "javascript", "jsx": "javascript", "node": "javascript",
    "mjs": "javascript", "cjs": "javascript",
    "typescript": "typescript", "ts": "typescript", "tsx": "tsx",
    "java": "java",
    "c": "c", "h": "c",
    "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp", "hxx": "cpp",
    "go": "go", "golang": "go",
    "rust": "rust", "rs": "rust",
}

# Bare statements are illegal at top level in these languages: retry inside a minimal
# enclosure (method.md §2(b) "snippet retry"). (prefix, suffix)
SNIPPET_WRAPPERS: dict[str, tuple[str, str]] = {
    "go": ("package p\nfunc _() {\n", "\n}"),
    "java": ("class _W {\nvoid _m() {\n", "\n}}"),
    "c": ("void _w() {\n", "\n}"),
    "cpp": ("void _w() {\n", "\n}"),
    "rust": ("fn _w() {\n", "\n}"),
}

# A unit with more than this share of its bytes under ERROR/MISSING nodes is opaque.
OPAQUE_ERROR_FRACTION = 0.20


class UnknownLanguageError(ValueError):
    """Raised for a language name that is neither canonical nor a known alias."""


def canonical_language(name: str | None) -> str | None:
    """Map a fence tag or CLI name to a canonical language, or None if unknown.

    >>> canonical_language("PY"), canonical_language("c++"), canonical_language("brainfuck")
    ('python', 'cpp', None)
    """
    if not name:
        return None
    return ALIASES.get(name.strip().lower())


def require_language(name: str) -> str:
    lang = canonical_language(name)
    if lang is None:
        valid = ", ".join(SUPPORTED_LANGUAGES)
        raise UnknownLanguageError(f"unknown language {name!r}; supported: {valid} (aliases like py, js, ts, c++, rs work too)")
    return lang


@lru_cache(maxsize=None)
def get_language(lang: str) -> tree_sitter.Language:
    module_name, attr = GRAMMARS[lang]
    module = importlib.import_module(module_name)
    return tree_sitter.Language(getattr(module, attr)())


@lru_cache(maxsize=None)
def _parser(lang: str) -> tree_sitter.Parser:
    return tree_sitter.Parser(get_language(lang))


@dataclass
class ParsedCode:
    """A parse of ``source`` (possibly wrapped) with offset conversion helpers.

    ``prefix_chars`` is the length of the snippet-wrapper prefix (0 if unwrapped): char
    offsets returned by :meth:`char` are relative to the *original* code.
    """

    source: str  # the original code (without wrapper)
    language: str
    tree: tree_sitter.Tree
    data: bytes  # the bytes that were parsed (wrapper included)
    prefix_bytes: int
    prefix_chars: int
    _char_starts: list[int] | None  # byte offset at which each char starts (None for pure ASCII)
    error_bytes: int = 0
    wrapped: bool = False

    @property
    def root(self) -> tree_sitter.Node:
        return self.tree.root_node

    def char(self, byte_offset: int) -> int:
        """Char offset (in the original code) of a byte offset in the parsed bytes."""
        if self._char_starts is None:  # pure ASCII: bytes and chars coincide
            return byte_offset - self.prefix_chars
        index = bisect.bisect_left(self._char_starts, byte_offset)
        return index - self.prefix_chars

    def span(self, node: tree_sitter.Node) -> tuple[int, int]:
        return self.char(node.start_byte), self.char(node.end_byte)

    def text(self, node: tree_sitter.Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    @property
    def error_fraction(self) -> float:
        code_bytes = len(self.source.encode("utf-8", "surrogatepass"))
        return self.error_bytes / code_bytes if code_bytes else 0.0

    def inside_original(self, start_byte: int, end_byte: int) -> bool:
        """True when a byte range lies wholly inside the original code (not the wrapper)."""
        original_end = self.prefix_bytes + len(self.source.encode("utf-8", "surrogatepass"))
        return self.prefix_bytes <= start_byte and end_byte <= original_end


def _char_starts(text: str, data: bytes) -> list[int] | None:
    if len(data) == len(text):
        return None
    # UTF-8 length of each char from its code point, accumulated: no per-char encode().
    lengths = [1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4 for o in map(ord, text)]
    return [0, *itertools.accumulate(lengths)]


def error_byte_count(root: tree_sitter.Node, lo: int = 0, hi: int | None = None) -> int:
    """Bytes of [lo, hi) covered by ERROR nodes, plus 1 per MISSING node (zero-width).

    Overlapping ERROR nodes are merged so no byte is counted twice.
    """
    hi = root.end_byte if hi is None else hi
    ranges: list[tuple[int, int]] = []
    missing = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if not node.has_error and not node.is_missing:
            continue
        if node.is_missing:
            missing += 1
            continue
        if node.is_error:
            ranges.append((max(node.start_byte, lo), min(node.end_byte, hi)))
            continue  # children of an ERROR node are already counted
        stack.extend(node.children)
    covered, last_end = 0, lo
    for start, end in sorted(ranges):
        start = max(start, last_end)
        if end > start:
            covered += end - start
            last_end = end
    return covered + missing


def parse_code(code: str, language: str, *, allow_wrap: bool = True) -> ParsedCode:
    """Parse ``code``; for Go/Java/C/C++/Rust retry inside a snippet wrapper when the plain
    parse leaves more than 20% error bytes, and keep the parse with fewer error bytes."""
    lang = require_language(language)
    plain = _parse_once(code, lang, "", "")
    code_len = len(code.encode("utf-8", "surrogatepass"))
    if not allow_wrap or lang not in SNIPPET_WRAPPERS or code_len == 0:
        return plain
    if plain.error_bytes <= OPAQUE_ERROR_FRACTION * code_len:
        return plain
    prefix, suffix = SNIPPET_WRAPPERS[lang]
    wrapped = _parse_once(code, lang, prefix, suffix)
    return wrapped if wrapped.error_bytes < plain.error_bytes else plain


def _parse_once(code: str, lang: str, prefix: str, suffix: str) -> ParsedCode:
    full = prefix + code + suffix
    data = full.encode("utf-8", "surrogatepass")  # lone surrogates (from JSON) must not crash
    tree = _parser(lang).parse(data)
    prefix_bytes = len(prefix.encode("utf-8"))
    code_bytes = len(code.encode("utf-8", "surrogatepass"))
    errors = error_byte_count(tree.root_node, prefix_bytes, prefix_bytes + code_bytes)
    return ParsedCode(
        source=code,
        language=lang,
        tree=tree,
        data=data,
        prefix_bytes=prefix_bytes,
        prefix_chars=len(prefix),
        _char_starts=_char_starts(full, data),
        error_bytes=errors,
        wrapped=bool(prefix),
    )


def parses_cleanly(code: str, language: str) -> bool:
    """True when ``code`` parses with no ERROR or MISSING node (used for unfenced responses)."""
    if not code.strip():
        return False
    parsed = parse_code(code, language, allow_wrap=False)
    return not parsed.root.has_error


def error_ranges(root: tree_sitter.Node) -> list[tuple[int, int]]:
    """Byte ranges of ERROR nodes and (zero-width, widened to one byte) MISSING nodes, sorted.

    An item is *broken* when its byte span overlaps one of these (method.md §2(b) rule 6).
    """
    ranges: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            ranges.append((node.start_byte, node.start_byte + 1))
            continue
        if node.is_error:
            ranges.append((node.start_byte, node.end_byte))
            continue
        if node.has_error:
            stack.extend(node.children)
    return sorted(ranges)


def overlaps_any(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    """True when [start, end) overlaps any range (a MISSING range at ``end`` counts: it is where the
    parser wanted the statement to continue)."""
    return any(a < end and start < b or (a == b == end) or (a == end and b == end + 1) for a, b in ranges)
