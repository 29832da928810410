"""One flag style (issue 15 item 5) and one knob schema (item 1), checked over every command's real parser.

* every option of every ``codeblock`` subcommand and of ``codeblock-eval`` accepts ``--snake_case`` and ``--kebab-case``,
  ``--help`` shows the snake_case one, and a command writing somewhere accepts ``--output`` and ``--out``;
* every CodeBlockConfig knob is a ``codeblock prepare`` flag whose value lands in the resolved config, and an Axolotl
  ``codeblock_*`` key with the knob's type, default and help.
"""

from __future__ import annotations

import argparse
import typing

import pytest

from codeblock.cli import SUBCOMMANDS, build_parser
from codeblock.cli.arguments import accept_both_spellings, option_names, spellings
from codeblock.config import CodeBlockConfig, ConfigError, coerce_knob, knobs


def _eval_parser():
    from codeblock_eval.arguments import build_parser as build_eval_parser

    return build_eval_parser()


PARSERS = {f"codeblock {name}": (lambda n=name: build_parser(n)[0]) for name in SUBCOMMANDS}
PARSERS["codeblock-eval"] = _eval_parser


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_option_has_both_spellings(command):
    parser = PARSERS[command]()
    accepted = parser._option_string_actions
    checked = 0
    for action in parser._actions:
        for shown in action.option_strings:
            assert not (shown.startswith("--") and "-" in shown[2:]), f"{command}: --help shows kebab-case {shown}"
            for spelling in spellings(shown):
                assert accepted.get(spelling) is action, f"{command}: {spelling} is not accepted for {action.dest}"
                checked += 1
    assert checked >= 2  # at least --help
    for dest, options in option_names(parser).items():
        if {"--output", "--out"} & options:
            assert {"--output", "--out"} <= options, f"{command}: {dest} accepts {sorted(options)}"


def test_output_and_out_are_one_option_for_commands_that_write():
    parser, _ = build_parser("prepare")
    for flag in ("--output", "--out"):
        args = parser.parse_args(["--data", "d.jsonl", "--model", "m", flag, "runs/x"])
        assert args.out == "runs/x"
    args = _eval_parser().parse_args(["--list_benchmarks", "--out", "r"])
    assert args.output == "r"


def test_two_options_clashing_after_spelling_is_an_error():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--dry_run", dest="other")
    with pytest.raises(ValueError, match="defined twice"):
        accept_both_spellings(parser)


# ------------------------------------------------------------------ one knob schema
def _other_valid_value(knob) -> str:
    """A command-line value different from the knob's default that CodeBlockConfig accepts on its own."""
    if knob.choices:
        candidates = [c for c in knob.choices if c != knob.default]
    elif knob.type is bool:
        candidates = [str(not knob.default).lower()]
    elif knob.type is int:
        candidates = [str(knob.default + 1)]
    elif knob.type is float:
        candidates = [str(knob.default / 2 if knob.default else 0.5)]
    elif knob.type is tuple:
        candidates = ["python,go"]
    else:
        candidates = ["javascript", "custom-value"]
    for value in candidates:
        try:
            if CodeBlockConfig.from_dict({knob.name: value}) != CodeBlockConfig():
                return value
        except ConfigError:
            continue
    raise AssertionError(f"no valid non-default value found for {knob.name}")


@pytest.mark.parametrize("knob", knobs(), ids=lambda k: k.name)
def test_every_knob_is_a_prepare_flag_that_reaches_the_config(knob):
    from codeblock.cli.prepare import resolve_config

    parser, _ = build_parser("prepare")
    value = _other_valid_value(knob)
    expected = coerce_knob(knob.name, value)
    for flag in spellings(f"--{knob.name}"):
        args = parser.parse_args(["--data", "d", "--model", "m", "--output", "o", flag, value])
        assert getattr(resolve_config(args), knob.name) == expected, flag


def test_older_prepare_flag_names_still_work_and_bad_values_name_the_flag():
    from codeblock.cli.prepare import resolve_config

    parser, _ = build_parser("prepare")
    base = ["--data", "d", "--model", "m", "--out", "o"]
    config = resolve_config(parser.parse_args(base + ["--budget", "0.05", "--keep-ratio", "0.3", "--pair-selector",
                                                      "none", "--supervise_eos", "--merge_units"]))
    assert (config.budget_ratio, config.pair_keep_ratio, config.pair_selector) == (0.05, 0.3, "none")
    assert config.supervise_eos is True and config.merge_units is True  # a bare bool flag means true
    with pytest.raises(ConfigError, match=r"^--budget_ratio must be a number, got 'lots'$"):
        resolve_config(parser.parse_args(base + ["--budget_ratio", "lots"]))


@pytest.mark.parametrize("knob", knobs(), ids=lambda k: k.name)
def test_every_knob_is_a_typed_axolotl_key(knob):
    pytest.importorskip("pydantic")
    from codeblock.integrations.axolotl.args import DERIVED_FROM_AXOLOTL, CodeBlockArgs

    info = CodeBlockArgs.model_fields[f"codeblock_{knob.name}"]
    assert info.description.startswith(knob.help)
    default = None if knob.name in DERIVED_FROM_AXOLOTL else knob.default
    assert info.default == (list(default) if isinstance(default, tuple) else default)
    assert typing.Any not in typing.get_args(info.annotation) and info.annotation is not typing.Any
    value = _other_valid_value(knob)
    if knob.name == "packing":  # the standalone switch; Axolotl has its own (sample_packing)
        with pytest.raises(ValueError, match="sample_packing"):
            CodeBlockArgs(codeblock_packing=value)
        return
    parsed = getattr(CodeBlockArgs(**{f"codeblock_{knob.name}": value}), f"codeblock_{knob.name}")
    expected = coerce_knob(knob.name, value)
    assert parsed == (list(expected) if isinstance(expected, tuple) else expected)


def test_ill_typed_axolotl_value_is_one_line_naming_the_key():
    pytest.importorskip("pydantic")
    from codeblock.integrations.axolotl.args import check_codeblock_keys

    with pytest.raises(ConfigError) as err:
        check_codeblock_keys({"codeblock_max_item_tokens": "many", "sequence_len": 512})
    assert str(err.value) == "codeblock_max_item_tokens must be an integer, got 'many'"
    with pytest.raises(ConfigError, match="^codeblock_nl_share=2.0 must be in"):
        check_codeblock_keys({"codeblock_nl_share": 2.0})
    with pytest.raises(ConfigError, match="did you mean 'codeblock_nl_share'"):
        check_codeblock_keys({"codeblock_nl_shar": 0.1})
