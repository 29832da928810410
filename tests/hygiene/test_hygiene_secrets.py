"""Secret scanning: every rule type is caught, secrets never reach stdout/stderr/reports, redacted code parses."""

from __future__ import annotations

import ast
import json
import logging
import random
import string

import pytest
from support.hyg_helpers import read_jsonl, write_jsonl

from codeblock.cli import main
from codeblock.hygiene.secrets_scan import find_secrets, load_rules, redact, scan_rows, shannon_entropy

_rng = random.Random(1234)


def _rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    # Fake secrets are generated at run time: the repository holds no credential-shaped literals.
    classes = [f for f in (str.isdigit, str.islower, str.isupper) if any(f(c) for c in alphabet)]
    for _ in range(1000):
        s = "".join(_rng.choice(alphabet) for _ in range(n))
        if all(any(f(c) for c in s) for f in classes):
            return s
    raise AssertionError("could not draw a mixed-class string")


def _b64url(n: int) -> str:
    return _rand(n, string.ascii_letters + string.digits + "-_")


def fake_secrets() -> dict[str, tuple[str, str]]:
    """rule -> (secret, python source embedding it)."""
    upper = string.ascii_uppercase + string.digits
    aws_id = "AKIA" + "".join(_rng.choice(upper) for _ in range(16))
    aws_secret = _rand(38) + "/+"
    gh = "ghp_" + _rand(36)
    gl = "glpat-" + _rand(20)
    slack = "xoxb-" + "".join(_rng.choice(string.digits) for _ in range(12)) + "-" + _rand(24)
    hook = "https://hooks.slack.com/services/T" + _rand(8, upper) + "/B" + _rand(8, upper) + "/" + _rand(24)
    stripe = "sk_live_" + _rand(24)
    google = "AIza" + _b64url(35)
    jwt = "eyJ" + _b64url(20) + ".eyJ" + _b64url(30) + "." + _b64url(43)
    pem_body = "\n".join(_rand(64, string.ascii_letters + string.digits + "+/") for _ in range(4))
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----"
    url_pw = _rand(14)
    assign_pw = "Tr0ub4dor&" + _rand(6)
    entropy = _rand(40)
    return {
        "aws_access_key_id": (aws_id, f'import boto3\nclient = boto3.client("s3", aws_access_key_id="{aws_id}")\n'),
        "aws_secret_access_key": (aws_secret, f'aws_secret_access_key = "{aws_secret}"\n'),
        "github_token": (gh, f'headers = {{"Authorization": "token {gh}"}}\n'),
        "gitlab_token": (gl, f"GITLAB = '{gl}'\n"),
        "slack_token": (slack, f'client = WebClient(token="{slack}")\n'),
        "slack_webhook": (hook, f'requests.post("{hook}", json={{"text": "hi"}})\n'),
        "stripe_key": (stripe, f'stripe.api_key = "{stripe}"\n'),
        "google_api_key": (google, f'url = "https://maps.googleapis.com/maps/api?key={google}"\n'),
        "jwt": (jwt, f'def auth():\n    return {{"Authorization": "Bearer {jwt}"}}\n'),
        "private_key_block": (pem_body.splitlines()[1], f'KEY = """{pem}"""\n'),
        "password_in_url": (url_pw, f'engine = create_engine("postgresql://admin:{url_pw}@db.internal:5432/app")\n'),
        "password_assignment": (assign_pw, f'def connect():\n    db_password = "{assign_pw}"\n    return db_password\n'),
        "high_entropy_base64": (entropy, f'SESSION_SEED = "{entropy}"\n'),
    }


SECRETS = fake_secrets()


@pytest.mark.parametrize("rule", sorted(SECRETS))
def test_each_rule_type_is_found_and_redaction_parses(rule):
    secret, source = SECRETS[rule]
    rules = load_rules()
    findings = find_secrets(source, rules)
    assert rule in {f.rule for f in findings}, [f.rule for f in findings]
    red = redact(source, findings, rules)
    assert secret not in red and f"<REDACTED:{rule}>" in red
    ast.parse(source)
    ast.parse(red)  # quotes kept around the placeholder


def test_placeholders_and_lookalikes_are_not_flagged():
    clean = (
        'password = "password"\napi_key = "YOUR_API_KEY"\ntoken = os.environ["TOKEN"]\n'
        'url = "postgresql://user:${DB_PASS}@localhost/db"\nAWS = "AKIAIOSFODNN7EXAMPLE"\n'
        'name = "process_incoming_customer_orders"\nalphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"\n'
        '<link integrity="sha384-JcKb8q3iqJ61gNV9KGb8thSsNjpSL0n8PARn9HuZOnIxN0hoP+VmmDGMN5t9UJ0Z">\n'
    )
    assert find_secrets(clean, load_rules()) == []


def test_entropy():
    assert shannon_entropy("aaaa") == 0.0
    assert abs(shannon_entropy("abcd") - 2.0) < 1e-9


def _rows():
    rows = [{"instruction": "Connect.", "input": "", "output": src} for _, src in SECRETS.values()]
    rows.insert(3, {"instruction": "Say hi.", "input": "", "output": "print('hi')"})
    rows.append({"messages": [{"role": "user", "content": "key?"},
                              {"role": "assistant", "content": SECRETS["github_token"][1]}]})
    return rows


@pytest.mark.parametrize("policy", ["redact", "drop"])
def test_cli_never_prints_or_writes_a_secret(tmp_path, capsys, caplog, policy):
    caplog.set_level(logging.DEBUG)
    rows = _rows()
    data = write_jsonl(tmp_path / "train.jsonl", rows + ["{broken"])
    out = tmp_path / "out"
    rc = main(["scan-secrets", "--data", str(data), "--out", str(out), "--policy", policy,
               "--fields", "instruction,input,output,messages"])
    assert rc == 0
    captured = capsys.readouterr()
    written = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    for secret, _ in SECRETS.values():
        for where, text in [("stdout", captured.out), ("stderr", captured.err), ("log", caplog.text), *written.items()]:
            if where == "data.jsonl" and policy == "redact":
                assert secret not in text, f"secret left in {where}"
            elif where != "data.jsonl":
                assert secret not in text, f"secret leaked into {where}"
    report = read_jsonl(out / "report.jsonl")
    flagged = {r["row"]: r for r in report if r["reason"] == "secret"}
    assert 3 not in flagged and len(flagged) == len(SECRETS) + 1
    assert {r["row"]: r["reason"] for r in report if r["reason"] != "secret"} == {len(rows): "bad_json"}
    loc = flagged[0]["findings"][0]
    assert set(loc) == {"row", "field", "rule", "start", "end", "length"} and loc["field"] == "output"
    assert flagged[len(rows) - 1]["findings"][0]["field"] == "messages[1].content"
    kept = read_jsonl(out / "data.jsonl")
    stats = json.loads(written["stats.json"])
    if policy == "drop":
        assert kept == [rows[3]] and stats["rows_by_action"] == {"dropped": len(SECRETS) + 1}
    else:
        assert len(kept) == len(rows) and stats["rows_by_action"] == {"redacted": len(SECRETS) + 1}
        for row in kept[:-1]:
            ast.parse(row["output"])
        assert "<REDACTED:github_token>" in kept[-1]["messages"][1]["content"]
    assert set(stats["findings_by_rule"]) == set(SECRETS)
    assert main(["verify", str(out)]) == 0


def test_scan_rows_leaves_input_untouched():
    rows = _rows()
    before = json.dumps(rows)
    kept, report, stats = scan_rows(rows, ["output"], policy="redact", progress=False)
    assert json.dumps(rows) == before and stats["n_rows_with_secrets"] == len(SECRETS)


def test_bad_policy_and_bad_rules_file(tmp_path):
    with pytest.raises(ValueError):
        scan_rows([], ["output"], policy="shred")
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: broken\n    pattern: '(['\n")
    data = write_jsonl(tmp_path / "d.jsonl", [{"output": "x"}])
    assert main(["scan-secrets", "--data", str(data), "--out", str(tmp_path / "o"), "--rules", str(bad)]) == 2
