"""One flag style for every command line: ``--snake_case`` is documented, ``--kebab-case`` is accepted too.

Like Hugging Face's ``HfArgumentParser`` (so ``codeblock train --config x.yaml --max_steps 5`` overrides read the same):
after a command has added its options, :func:`accept_both_spellings` registers the other spelling of every long option
and shows only the snake_case one in ``--help``. Shared by every ``codeblock`` subcommand (:func:`codeblock.cli.build_parser`)
and ``codeblock-eval`` / ``eval/run_benchmarks.py``. Output locations are ``--output`` everywhere (``--out`` accepted).

    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--pair-selector")
    >>> accept_both_spellings(p)
    >>> p.parse_args(["--pair_selector", "ifd"]).pair_selector, p.parse_args(["--pair-selector", "ifd"]).pair_selector
    ('ifd', 'ifd')
"""

from __future__ import annotations

import argparse
from typing import Any, Iterable


def spellings(option: str) -> list[str]:
    """``--dry-run`` -> ``['--dry_run', '--dry-run']`` (snake_case first); short options stay as they are."""
    if not option.startswith("--"):
        return [option]
    body = option[2:]
    snake, kebab = "--" + body.replace("-", "_"), "--" + body.replace("_", "-")
    return [snake] if snake == kebab else [snake, kebab]


def _register(container, action: argparse.Action, option: str) -> None:
    table = container._option_string_actions  # shared by a parser and its argument groups
    owner = table.get(option)
    if owner is not None and owner is not action:
        raise ValueError(f"option {option} is defined twice ({owner.dest!r} and {action.dest!r})")
    table[option] = action


def alias(container, action: argparse.Action, *options: str) -> None:
    """Also accept ``options`` (both spellings each) for ``action``, without showing them in ``--help``."""
    for option in options:
        for spelling in spellings(option):
            _register(container, action, spelling)


# Synonyms: a command defining one of them accepts all; --help shows the first.
SYNONYMS = (("--output", "--out"),)


def accept_both_spellings(parser: argparse.ArgumentParser) -> None:
    """Register the snake_case and kebab-case spelling of every long option (and ``--output``/``--out`` for each
    other); ``--help`` shows the snake_case one (``--output``). Run once, after the command added its options."""
    for action in parser._actions:
        options = list(action.option_strings)
        for group in SYNONYMS:
            if any(o in group for o in options):
                options = [group[0]] + [o for o in options if o not in group] + list(group[1:])
        shown: list[str] = []
        for option in options:
            names = spellings(option)
            for name in names:
                _register(parser, action, name)
            if names[0] not in shown and not any(names[0] in g[1:] for g in SYNONYMS):
                shown.append(names[0])
        action.option_strings = shown


def option_names(parser: argparse.ArgumentParser) -> dict[str, set[str]]:
    """dest -> every long option string the parser accepts for it (for tests and docs)."""
    out: dict[str, set[str]] = {}
    for option, action in parser._option_string_actions.items():
        if option.startswith("--"):
            out.setdefault(action.dest, set()).add(option)
    return out


# ------------------------------------------------------------------ CodeBlockConfig knobs as flags
def add_knob_arguments(container, *, aliases: dict[str, Iterable[str]] | None = None) -> None:
    """One ``--<knob>`` flag per :func:`codeblock.config.knobs` field (values parsed later by :func:`knob_overrides`,
    so flags, YAML and Axolotl keys accept the same spellings). A knob whose flag the command already defines is left
    to that definition."""
    from codeblock.config import knobs

    for knob in knobs():
        option = f"--{knob.name}"
        if any(s in container._option_string_actions for s in spellings(option)):
            continue
        if knob.choices:
            metavar = "{" + ",".join(knob.choices) + "}"
        else:
            metavar = {bool: "BOOL", int: "N", float: "X", tuple: "A,B,..."}.get(knob.type, "TEXT")
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if knob.type is bool else {}
        default = ",".join(knob.default) if isinstance(knob.default, tuple) else knob.default
        action = container.add_argument(option, dest=knob.name, default=None, metavar=metavar,
                                        help=f"{knob.help} (default: {default})".replace("%", "%%"), **extra)
        alias(container, action, *(aliases or {}).get(knob.name, ()))


def knob_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The knobs given on the command line, parsed with :func:`codeblock.config.coerce_knob` (errors name the flag)."""
    from codeblock.config import coerce_knob, knobs

    return {k.name: coerce_knob(k.name, getattr(args, k.name), key=f"--{k.name}")
            for k in knobs() if getattr(args, k.name, None) is not None}
