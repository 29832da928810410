"""`codeblock inspect DIR --html OUT.html [--n N]`: a self-contained HTML view of a prepared dataset.

Each example shows its rendered text token by token: the prompt/template dimmed, supervised code tokens highlighted
with a colour per item (hue from its data-flow signals: blue = reach-dominant, orange = bridge-dominant, green =
utility only), informative NL tokens in violet, the supervised end-of-turn token outlined in red, and unselected
selectable items underlined. Hovering a token shows its item's scores. A histogram (inline SVG) shows the per-example
supervised fraction over all written rows. No external assets: one HTML file.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px;margin:14px 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.summary td{padding:2px 14px 2px 0;font-size:13px} .summary td:first-child{color:#5b6472}
.legend span.sw{display:inline-block;padding:1px 7px;margin:2px 10px 2px 0;border-radius:3px;font-size:12px;font-family:monospace}
.text{font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;line-height:1.55;white-space:pre-wrap;word-break:break-word;
 background:#fbfbfc;border:1px solid #eceef2;border-radius:6px;padding:10px;margin-top:8px;max-height:560px;overflow:auto}
.p{color:#a2a9b4} .sup{border-radius:2px} .nl{background:#e4d4ff;border-radius:2px} .eos{outline:2px solid #d64545;border-radius:2px}
.cand{text-decoration:underline dotted #9aa3b0} .meta{font-size:12px;color:#5b6472;margin-top:4px}
.pill{display:inline-block;background:#eef1f5;border-radius:10px;padding:1px 8px;margin-right:6px;font-size:12px}
"""


def _hue(R: float | None, B: float | None) -> int:
    R, B = R or 0.0, B or 0.0
    if R == 0 and B == 0:
        return 140  # green: chosen for utility alone
    return 210 if R >= B else 30  # blue: reach-dominant; orange: bridge-dominant


def _colour(span: dict) -> str:
    strength = max(R := (span.get("R") or 0.0), B := (span.get("B") or 0.0))
    light = 82 - int(18 * strength)
    return f"hsl({_hue(R, B)},70%,{light}%)"


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _histogram_svg(fractions: list[float], width: int = 560, height: int = 170, bins: int = 20) -> str:
    if not fractions:
        return "<p>no rows</p>"
    hi = max(max(fractions), 1e-9)
    counts = [0] * bins
    for f in fractions:
        counts[min(bins - 1, int(f / hi * bins))] += 1
    top = max(counts)
    pad_l, pad_b, pad_t = 36, 30, 10
    bw = (width - pad_l - 10) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="histogram">']
    for i, c in enumerate(counts):
        h = (height - pad_b - pad_t) * c / top
        x = pad_l + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{height - pad_b - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="#4c8bf5">'
                     f"<title>{c} rows in [{i * hi / bins:.2%}, {(i + 1) * hi / bins:.2%})</title></rect>")
    axis_y = height - pad_b
    parts.append(f'<line x1="{pad_l}" y1="{axis_y}" x2="{width - 10}" y2="{axis_y}" stroke="#888"/>')
    for k in range(5):
        x = pad_l + k * (width - pad_l - 10) / 4
        parts.append(f'<text x="{x:.0f}" y="{axis_y + 14}" font-size="10" text-anchor="middle" fill="#555">{k * hi / 4:.1%}</text>')
    parts.append(f'<text x="{pad_l - 6}" y="{pad_t + 8}" font-size="10" text-anchor="end" fill="#555">{top}</text>')
    parts.append(f'<text x="{(width + pad_l) / 2:.0f}" y="{height - 3}" font-size="11" text-anchor="middle" fill="#333">'
                 "supervised tokens / response tokens, per example</text>")
    parts.append("</svg>")
    return "".join(parts)


def render_example(rec: dict, row: dict) -> str:
    text, offsets, labels = rec["text"], rec["offsets"], row["labels"]
    r = rec["response_offset"]
    nl = set(rec.get("nl_token_indices", []))
    eos = rec.get("eos_index")
    spans = rec.get("selected_spans", [])
    cands = [it for it in rec.get("items", []) if it.get("selectable") and not it.get("selected")]

    def item_at(a: int, b: int, pool):
        for sp in pool:
            if sp["start"] < b - r and a - r < sp["end"]:
                return sp
        return None

    out, pos = [], 0
    for t, (s, e) in enumerate(offsets):
        if s > pos:
            out.append(html.escape(text[pos:s]))
        if e <= s:
            continue
        piece = html.escape(text[max(s, pos):e])
        pos = max(pos, e)
        if s < r and t != eos:
            out.append(f'<span class="p">{piece}</span>')
        elif t == eos:
            cls = "eos" if labels[t] != -100 else "p"
            out.append(f'<span class="{cls}" title="end of turn{" (supervised)" if labels[t] != -100 else ""}">{piece}</span>')
        elif labels[t] != -100 and t in nl:
            out.append(f'<span class="nl" title="informative NL token">{piece}</span>')
        elif labels[t] != -100:
            sp = item_at(s, e, spans) or {}
            tip = (f"item {sp.get('item_id')} ({sp.get('kind')}): u={sp.get('u')} pi={sp.get('pi')} "
                   f"R={sp.get('R')} B={sp.get('B')} P={sp.get('P')}")
            out.append(f'<span class="sup" style="background:{_colour(sp)}" title="{html.escape(tip)}">{piece}</span>')
        else:
            it = item_at(s, e, cands)
            if it is not None and text[s:e].strip():
                tip = f"selectable item {it['id']} not selected: u={it.get('u')} P={it.get('P')}"
                out.append(f'<span class="cand" title="{html.escape(tip)}">{piece}</span>')
            else:
                out.append(piece)
    if pos < len(text):
        out.append(html.escape(text[pos:]))
    frac = rec["n_supervised"] / rec["n_response_tokens"] if rec["n_response_tokens"] else 0.0
    meta = (f'<span class="pill">example {rec["index"]}</span><span class="pill">{rec["n_response_tokens"]} response tokens</span>'
            f'<span class="pill">{rec["n_code_tokens"]} code + {rec["n_nl_tokens"]} NL supervised ({frac:.1%})</span>'
            f'<span class="pill">{len(spans)} items selected of {sum(1 for i in rec.get("items", []) if i.get("selectable"))} selectable</span>'
            f'<span class="pill">EOS {"supervised" if rec.get("eos_supervised") else "not supervised"}</span>'
            + ('<span class="pill">truncated</span>' if rec.get("truncated") else ""))
    return f'<div class="card"><div class="meta">{meta}</div><div class="text">{"".join(out)}</div></div>'


ORDERS = ("input", "items", "supervised")


def _ordered(recs: list[dict], order: str) -> list[dict]:
    """input: file order; items: rows with a selected item or NL token first (at a 1.9% budget most short rows are
    EOS-only, so the first rows of a file often show nothing); supervised: highest supervised share first."""
    if order == "input":
        return recs
    if order == "items":
        return sorted(recs, key=lambda r: (r.get("n_supervised", 0) == 0, r["index"]))
    if order == "supervised":
        return sorted(recs, key=lambda r: (-r.get("n_supervised", 0) / max(1, r.get("n_response_tokens", 1)), r["index"]))
    raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")


def build_html(prep_dir: str | Path, n: int = 20, order: str = "input") -> str:
    prep_dir = Path(prep_dir)
    stats = json.loads((prep_dir / "stats.json").read_text(encoding="utf-8"))
    rows = {r["example_index"]: r for r in _read_jsonl(prep_dir / "train.jsonl")}
    recs = [rec for rec in _read_jsonl(prep_dir / "selection.jsonl") if rec.get("kept") and rec["index"] in rows]
    if recs and "text" not in recs[0]:
        raise ValueError(f"{prep_dir}/selection.jsonl has no rendered text; re-run codeblock prepare without --no_selection_text")
    fractions = [rows[rec["index"]]["n_supervised"] / max(1, rows[rec["index"]]["n_response_tokens"]) for rec in recs]
    b = stats.get("budget", {})
    summary_rows = [
        ("model", stats.get("model")), ("scoring model", stats.get("scoring_model")),
        ("input rows / written", f"{stats.get('n_input')} / {stats.get('n_kept')}"),
        ("dropped", ", ".join(f"{k}={v}" for k, v in stats.get("n_dropped", {}).items() if v) or "0"),
        ("supervised fraction", f"{stats.get('supervised_fraction', 0):.3%} ({stats.get('supervised_tokens')} of {stats.get('response_tokens')} response tokens)"),
        ("code / NL tokens", f"{stats.get('code_tokens')} / {stats.get('nl_tokens')}"),
        ("budget B (denominator)", f"{b.get('B')} ({b.get('denominator')}); vs pool {b.get('ratio_pool', 0):.3%}"),
        ("EOS", f"{stats.get('eos', {}).get('policy')} ({stats.get('eos', {}).get('supervised')} rows, apart from B)"),
        ("input sha256", (stats.get("input") or {}).get("sha256")),
    ]
    summary = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in summary_rows)
    legend = ('<div class="legend">'
              '<span class="sw p" style="background:#f0f1f3">prompt / template (never supervised)</span>'
              '<span class="sw sup" style="background:hsl(210,70%,70%)">code item, reach-dominant</span>'
              '<span class="sw sup" style="background:hsl(30,70%,70%)">code item, bridge-dominant</span>'
              '<span class="sw sup" style="background:hsl(140,70%,78%)">code item, utility only</span>'
              '<span class="sw nl">informative NL token</span><span class="sw eos">end-of-turn (EOS)</span>'
              '<span class="sw cand">selectable item, not selected</span></div>'
              '<div class="meta">Darker item colour = stronger data-flow signal. Hover a token for its item scores.</div>')
    shown = _ordered(recs, order)[:n]
    examples = "".join(render_example(rec, rows[rec["index"]]) for rec in shown)
    heading = {"input": "First", "items": "First supervised", "supervised": "Most supervised"}[order]
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>CodeBlock inspect</title>"
        f"<style>{CSS}</style></head><body><h1>CodeBlock: supervised tokens</h1>"
        f'<div class="meta">{html.escape(str(prep_dir))}</div>'
        f'<div class="card"><table class="summary">{summary}</table></div>'
        f'<div class="card"><h2>Per-example supervision ({len(fractions)} rows)</h2>{_histogram_svg(fractions)}</div>'
        f'<div class="card"><h2>Legend</h2>{legend}</div>'
        f"<h2>{heading} {len(shown)} examples</h2>{examples}</body></html>\n"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder of `codeblock prepare`")
    # --output like every other command; --html is the older spelling, still accepted
    parser.add_argument("--output", "--html", dest="output", default=None,
                        help="HTML file to write (default: <dir>/inspect.html)")
    parser.add_argument("--n", type=int, default=20, help="number of examples to render (default 20)")
    parser.add_argument("--order", choices=ORDERS, default="input",
                        help="input (file order), items (rows with selected items/NL first), supervised (highest share first)")


def run(args: argparse.Namespace) -> int:
    prep = Path(args.dir)
    missing = [f for f in ("stats.json", "train.jsonl", "selection.jsonl") if not (prep / f).exists()]
    if missing:
        print(f"codeblock inspect: error: {prep} is not a prepare output folder (missing {', '.join(missing)})", file=sys.stderr)
        return 2
    if args.n < 1:
        print("codeblock inspect: error: --n must be >= 1", file=sys.stderr)
        return 2
    try:
        page = build_html(prep, args.n, args.order)
    except ValueError as exc:
        print(f"codeblock inspect: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else prep / "inspect.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}")
    return 0
