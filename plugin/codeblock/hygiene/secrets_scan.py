"""Find credentials in training rows and drop or redact them, without ever writing the secret anywhere.

Rules live in one data file, ``codeblock/data/secret_rules.yaml`` (AWS, GitHub, GitLab, Slack, Stripe,
Google API keys, JWTs, private key blocks, passwords in URLs and in assignments), plus a high-entropy check
on quoted literals. Reports carry the rule name and location (row, field, character offsets, length) only.

Policy ``redact`` replaces the secret span by ``<REDACTED:rule>``; rules capture only the value, so the quotes
around it stay and redacted code keeps parsing (checked with ``ast.parse``; a row whose Python stops parsing
is dropped instead, and counted).

    >>> rules = load_rules()
    >>> text = 'token = "ghp_' + 'a1B2' * 9 + '"'
    >>> [f.rule for f in find_secrets(text, rules)]
    ['github_token']
    >>> redact(text, find_secrets(text, rules), rules)
    'token = "<REDACTED:github_token>"'

    $ codeblock scan-secrets --data train.jsonl --output runs/secrets --policy redact
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from codeblock.hygiene import common
from codeblock.hygiene.rows import HygieneInputError, iter_text_fields, set_text_field

POLICIES = ("drop", "redact")
_FLAGS = {"IGNORECASE": re.IGNORECASE, "DOTALL": re.DOTALL, "MULTILINE": re.MULTILINE}
# Quoted literals without escapes or newlines: the candidates of the high-entropy check.
_LITERAL_RE = re.compile(r"\"([^\"\\\n]{16,512})\"|'([^'\\\n]{16,512})'|`([^`\\\n]{16,512})`")
_B64_RE = re.compile(r"^[A-Za-z0-9+/=_\-]+$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True)
class Rule:
    name: str
    regex: re.Pattern
    group: int = 0
    allow: re.Pattern | None = None


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    placeholder: str
    entropy: dict
    entropy_allow: re.Pattern | None
    source: str


@dataclass(frozen=True)
class Finding:
    rule: str
    start: int
    end: int

    def location(self, row: int, field: str) -> dict:
        return {"row": row, "field": field, "rule": self.rule, "start": self.start, "end": self.end,
                "length": self.end - self.start}


def default_rules_path() -> Path:
    return Path(str(resources.files("codeblock").joinpath("data/secret_rules.yaml")))


def load_rules(path: str | Path | None = None) -> RuleSet:
    path = Path(path) if path else default_rules_path()
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise HygieneInputError(f"cannot read secret rules {path}: {type(exc).__name__}") from None
    rules = []
    for r in spec.get("rules", []):
        flags = 0
        for f in r.get("flags") or []:
            flags |= _FLAGS[f]
        try:
            rules.append(Rule(name=r["name"], regex=re.compile(r["pattern"], flags), group=int(r.get("group", 0)),
                              allow=re.compile(r["allow"]) if r.get("allow") else None))
        except (re.error, KeyError) as exc:
            raise HygieneInputError(f"{path}: bad rule {r.get('name')!r}: {exc}") from None
    ent = dict(spec.get("high_entropy") or {})
    allow = ent.pop("allow", None)
    return RuleSet(rules=tuple(rules), placeholder=spec.get("placeholder", "<REDACTED:{rule}>"), entropy=ent,
                   entropy_allow=re.compile(allow) if allow else None, source=str(path))


def shannon_entropy(s: str) -> float:
    """Bits per character. ``shannon_entropy("aaaa") == 0.0``."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _high_entropy(text: str, rs: RuleSet) -> list[Finding]:
    cfg = rs.entropy
    if not cfg:
        return []
    out = []
    for m in _LITERAL_RE.finditer(text):
        g = next(i for i in (1, 2, 3) if m.group(i) is not None)
        value = m.group(g)
        if rs.entropy_allow and rs.entropy_allow.match(value):
            continue
        if _HEX_RE.match(value) and len(value) >= cfg.get("hex_min_length", 32):
            if shannon_entropy(value) >= cfg.get("hex_min_entropy", 3.0):
                out.append(Finding("high_entropy_hex", m.start(g), m.end(g)))
        elif _B64_RE.match(value) and len(value) >= cfg.get("base64_min_length", 20):
            if cfg.get("require_mixed_classes", True) and not (
                    any(c.isdigit() for c in value) and any(c.islower() for c in value)
                    and any(c.isupper() for c in value)):
                continue
            if shannon_entropy(value) >= cfg.get("base64_min_entropy", 4.2):
                out.append(Finding("high_entropy_base64", m.start(g), m.end(g)))
    return out


def find_secrets(text: str, rs: RuleSet) -> list[Finding]:
    """Non-overlapping findings in ``text`` (on overlap the earlier-starting, then earlier-listed rule wins)."""
    cands: list[tuple[int, int, int, Finding]] = []
    for prio, rule in enumerate(rs.rules):
        for m in rule.regex.finditer(text):
            start, end = m.span(rule.group)
            if start < 0 or end <= start:
                continue
            if rule.allow and rule.allow.search(m.group(rule.group)):
                continue
            cands.append((start, prio, -end, Finding(rule.name, start, end)))
    for f in _high_entropy(text, rs):
        cands.append((f.start, len(rs.rules), -f.end, f))
    cands.sort(key=lambda c: c[:3])
    out: list[Finding] = []
    for _, _, _, f in cands:
        if out and f.start < out[-1].end:
            continue
        out.append(f)
    return out


def redact(text: str, findings: list[Finding], rs: RuleSet) -> str:
    for f in sorted(findings, key=lambda f: f.start, reverse=True):
        text = text[:f.start] + rs.placeholder.format(rule=f.rule) + text[f.end:]
    return text


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def scan_rows(rows: list[dict], fields: list[str], rules: RuleSet | None = None, policy: str = "redact",
              row_ids: list[int] | None = None, progress: bool = True) -> tuple[list[dict], list[dict], dict]:
    """(kept rows, report, stats). Redacted rows are new dicts; the input rows are not modified."""
    import copy

    from tqdm.auto import tqdm

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    rs = rules or load_rules()
    row_ids = row_ids if row_ids is not None else list(range(len(rows)))
    kept, report = [], []
    by_rule: Counter = Counter()
    actions: Counter = Counter()
    for rid, row in zip(row_ids, tqdm(rows, desc="scan secrets", unit="row", disable=None if progress else True)):
        try:
            per_field = [(path, text, find_secrets(text, rs)) for path, text in iter_text_fields(row, fields)]
        except Exception as exc:  # never let the message (which could quote input) escape
            report.append({"row": rid, "reason": f"scan_error:{type(exc).__name__}"})
            actions["scan_error"] += 1
            continue
        hits = [(p, t, fs) for p, t, fs in per_field if fs]
        if not hits:
            kept.append(row)
            continue
        locations = [f.location(rid, p) for p, _, fs in hits for f in fs]
        by_rule.update(loc["rule"] for loc in locations)
        action = "dropped"
        if policy == "redact":
            new = copy.deepcopy(row)
            ok = True
            for path, text, fs in hits:
                red = redact(text, fs, rs)
                if _parses(text) and not _parses(red):
                    ok = False  # keep the promise that redacted code parses: drop instead
                set_text_field(new, path, red)
            if ok:
                kept.append(new)
                action = "redacted"
            else:
                action = "dropped_unparseable"
        actions[action] += 1
        report.append({"row": rid, "reason": "secret", "action": action,
                       "rules": sorted({loc["rule"] for loc in locations}), "findings": locations})
    stats = {"n_scanned": len(rows), "n_rows_with_secrets": sum(v for k, v in actions.items() if k != "scan_error"),
             "n_findings": sum(by_rule.values()), "findings_by_rule": dict(sorted(by_rule.items())),
             "rows_by_action": dict(sorted(actions.items())), "n_kept": len(kept)}
    return kept, report, stats


# ---------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_io_arguments(parser)
    parser.add_argument("--policy", choices=POLICIES, default="redact",
                        help="drop flagged rows, or replace each secret by <REDACTED:rule> (default)")
    parser.add_argument("--rules", default=None, help=f"rules YAML (default {default_rules_path().name} in the package)")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        rules = load_rules(args.rules)
        prep = common.prepare(args.data, args.fields)
    except HygieneInputError as exc:
        return common.usage_error("scan-secrets", str(exc))
    kept, report, stats = scan_rows(prep.rows, prep.fields, rules, args.policy, row_ids=prep.index)
    report += [dict(s) for s in prep.skips]
    stats = {"n_input": prep.n_input, "n_skipped": len(prep.skips), "skipped_by_reason": common.skip_counts(prep.skips),
             **stats, "fields": prep.fields, "policy": args.policy}
    inputs = {"data": args.data, "rules": rules.source}
    common.write_outputs(args.out, command="scan-secrets", kept=kept, report=report, stats=stats,
                         config={"policy": args.policy, "fields": prep.fields, "rules": Path(rules.source).name},
                         seeds={}, inputs=inputs, extra={"runtime_s": round(time.perf_counter() - started, 2)})
    common.print_summary(f"scan-secrets {args.data}", stats, started)
    return 0
