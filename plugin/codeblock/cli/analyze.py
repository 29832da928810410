"""`codeblock analyze`: print the structure of a source file or markdown response as JSON.

    $ codeblock analyze solution.py
    $ cat reply.md | codeblock analyze - --response

Unparseable code is not an error: it yields broken items or an opaque unit with the reason, and
the exit code stays 0. A missing file or an unknown language is a one-line error, exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from codeblock.structure.languages import UnknownLanguageError, canonical_language, require_language

EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "tsx", ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp",
    ".cxx": "cpp", ".hpp": "cpp", ".go": "go", ".rs": "rust",
}


def add_arguments(parser) -> None:
    parser.add_argument("path", help="source file, or '-' to read standard input")
    parser.add_argument("--lang", default=None, help="language (python, javascript, typescript, java, c, cpp, go, rust "
                        "or an alias); default: from the file extension, else python. With --response: the language "
                        "of untagged fences and unfenced responses")
    parser.add_argument("--response", action="store_true", help="treat the input as a whole markdown response")
    parser.add_argument("--bridge-mode", choices=("betweenness", "articulation"), default="betweenness")
    parser.add_argument("--no-return-edges", action="store_true", help="drop return edges from the data-flow graph")
    parser.add_argument("--indent", type=int, default=None, help="pretty-print the JSON with this indent")


def _fail(message: str) -> int:
    print(f"codeblock analyze: {message}", file=sys.stderr)
    return 2


def read_input(path: str) -> str:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    # Undecodable bytes become U+FFFD so offsets stay valid for the text we report.
    return data.decode("utf-8", errors="replace")


def run(args) -> int:
    from codeblock.structure.analysis import StructureConfig, analysis_to_json, analyze_code, analyze_response

    if args.path != "-" and not os.path.isfile(args.path):
        return _fail(f"no such file: {args.path}")
    try:
        if args.lang is not None:
            language = require_language(args.lang)
        else:
            language = canonical_language(EXTENSIONS.get(Path(args.path).suffix.lower(), "")) or "python"
    except UnknownLanguageError as error:
        return _fail(str(error))
    try:
        text = read_input(args.path)
    except OSError as error:
        return _fail(f"cannot read {args.path}: {error.strerror or error}")
    config = StructureConfig(default_language=language, bridge_mode=args.bridge_mode,
                             return_edges=not args.no_return_edges)
    analysis = analyze_response(text, config) if args.response else analyze_code(text, language, config)
    json.dump(analysis_to_json(analysis), sys.stdout, indent=args.indent, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
