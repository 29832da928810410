"""`codeblock` command line: one entry, lazily imported subcommands.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so
``codeblock analyze`` never pays for torch and ``codeblock --help`` is instant.

    $ codeblock analyze - --lang python <<< 'x = 1'
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from codeblock.cli.arguments import accept_both_spellings

# name -> (module, one-line help). Keep help here so `codeblock --help` imports nothing.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("codeblock.cli.analyze", "Parse code (or a markdown response) into coding items, data flow, reach and bridge."),
    "demo": ("codeblock.cli.demo", "Run the pipeline on a bundled example with embedded defaults."),
    "prepare": ("codeblock.cli.prepare", "Select pairs and code items under a token budget and write training labels."),
    "train": ("codeblock.cli.train", "LoRA/QLoRA SFT with TRL on CodeBlock or baseline labels from one YAML."),
    "experiment": ("codeblock.experiments.runner", "Run prepare -> train -> eval for every arm of an experiment YAML, then compare."),
    "inspect": ("codeblock.prepare.inspect_html", "Render a prepared dataset as HTML with supervised tokens highlighted."),
    "decontaminate": ("codeblock.hygiene.decontaminate", "Drop training rows that overlap benchmark prompts, solutions or tests."),
    "scan-secrets": ("codeblock.hygiene.secrets_scan", "Find credentials and high-entropy literals; drop or redact the rows."),
    "dedup": ("codeblock.hygiene.dedup", "Remove exact and near-duplicate rows; optional balanced sampling."),
    "split": ("codeblock.hygiene.splits", "Temporal or grouped train/eval splits."),
    "verify": ("codeblock.hygiene.manifest", "Recompute the hashes in an artifact directory's manifest.json."),
}


def _usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    lines = ["usage: codeblock <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run `codeblock <command> --help` for the options of one command."]
    return "\n".join(lines)


def build_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """Import the module behind ``name`` and build its argument parser."""
    module_name, help_ = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"codeblock {name}", description=help_)
    module.add_arguments(parser)
    accept_both_spellings(parser)  # --snake_case documented, --kebab-case accepted (codeblock.cli.arguments)
    return parser, module


def configure_logging(level: int = logging.INFO) -> None:
    """Show the library's ``codeblock.*`` log records on stderr (rich on a terminal, plain lines in a log file).
    Does nothing when the application already configured logging."""
    logger = logging.getLogger("codeblock")
    if logger.handlers or logging.getLogger().handlers:
        return
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_path=False, log_time_format="%H:%M:%S")
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(name)s %(asctime)s] %(message)s", datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from codeblock._version import __version__

        print(f"codeblock {__version__}")
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        print(f"codeblock: unknown command {name!r}; valid commands: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    parser, module = build_parser(name)
    configure_logging()
    if getattr(module, "PASSES_UNKNOWN_ARGS", False):
        # e.g. `codeblock train --config x.yaml --max_steps 5`: the rest goes to TRL's own parser.
        args, rest = parser.parse_known_args(argv[1:])
        args.overrides = rest
    else:
        args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except BrokenPipeError:  # `codeblock analyze x.py | head`: the reader left; not our error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"codeblock {name}: interrupted", file=sys.stderr)
        return 130
