"""Render each example ONCE, locate the response in the rendered text, tokenize ONCE with offsets.

T_e = template(x_e) + y_e + end-of-turn. The chat template is used when the tokenizer has one (``template=auto``),
otherwise a plain ``### Instruction / ### Response`` format ending in the EOS token. The response offset r_e is found
by rendering the same conversation with a sentinel response (the text before the sentinel is the exact prefix), and
``T[r:r+|y|] == y`` is checked; if a template trims the response, the trimmed response is used (its shift is
recorded) and anything else is a counted skip (``template_mismatch``). Masks are never derived from re-tokenized
pieces or generation markers (anchors.md 2.1 rows 1 and 3).

Only a *fast* tokenizer gives character offsets; a slow one raises `RenderError` with the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

PLAIN_PROMPT = "### Instruction:\n{instruction}\n\n### Response:\n"
_SENTINEL = "\u2063CODEBLOCKSENTINEL\u2063"


class RenderError(ValueError):
    """A configuration problem (slow tokenizer, missing chat template)."""


class RenderSkip(Exception):
    """One example cannot be rendered faithfully; ``reason`` is counted."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class Rendered:
    text: str  # the rendered text, untruncated
    input_ids: list[int]  # truncated at max_seq_length
    offsets: list[tuple[int, int]]  # per kept token, into text
    special: list[bool]  # per kept token
    response: str  # the response exactly as it appears in text
    response_start: int  # r_e
    response_shift: int  # characters trimmed from the start of the original response by the template (usually 0)
    n_tokens_full: int  # token count before truncation
    kept_char_end: int  # end offset of the last kept token (len(text) when not truncated)
    eos_index: int | None  # index of the end-of-turn/EOS token closing the response, if kept
    template: str  # "chat" or "plain"

    @property
    def truncated(self) -> bool:
        return self.n_tokens_full > len(self.input_ids)

    @property
    def response_end(self) -> int:
        return self.response_start + len(self.response)

    @property
    def kept_response_chars(self) -> int:
        """How many response characters lie inside the untruncated (kept) text."""
        return max(0, min(len(self.response), self.kept_char_end - self.response_start))


class Renderer:
    """Turns `Example`s into `Rendered` records for one tokenizer + config."""

    def __init__(self, tokenizer, *, template: str = "auto", max_seq_length: int = 2048, system_prompt: str | None = None):
        if not getattr(tokenizer, "is_fast", False):
            raise RenderError(
                f"{type(tokenizer).__name__} is not a fast tokenizer; CodeBlock needs character offsets. "
                "Load it with AutoTokenizer.from_pretrained(..., use_fast=True) or convert it with `tokenizers`."
            )
        has_chat = bool(getattr(tokenizer, "chat_template", None))
        if template == "chat" and not has_chat:
            raise RenderError("template=chat but the tokenizer has no chat_template; use template=plain or auto")
        self.mode = "chat" if (template == "chat" or (template == "auto" and has_chat)) else "plain"
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.system_prompt = system_prompt
        special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
        for tid, tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items():
            if getattr(tok, "special", False):
                special_ids.add(int(tid))
        self.special_ids = special_ids

    # -------------------------------------------------------------- text
    def _chat_text(self, example, response: str) -> str:
        messages = list(example.prompt_messages)
        if self.system_prompt and not (messages and messages[0]["role"] == "system"):
            messages = [{"role": "system", "content": self.system_prompt}] + messages
        messages = messages + [{"role": "assistant", "content": response}]
        out = self.tokenizer.apply_chat_template(messages, tokenize=False)
        if not isinstance(out, str):  # some versions wrap the string
            out = out[0] if isinstance(out, list) else str(out)
        return out

    def _plain_text(self, example, response: str) -> str:
        eos = self.tokenizer.eos_token or ""
        return PLAIN_PROMPT.format(instruction=example.instruction) + response + eos

    def render_text(self, example) -> tuple[str, int, str, int]:
        """Return (text, r, response_as_in_text, shift)."""
        make = self._chat_text if self.mode == "chat" else self._plain_text
        y = example.response
        text = make(example, y)
        probe = make(example, _SENTINEL)
        p = probe.find(_SENTINEL)
        if p >= 0 and text.startswith(probe[:p]) and text[p : p + len(y)] == y:
            return text, p, y, 0
        # The template altered the response (e.g. `| trim`): accept the trimmed response if it sits at the sentinel.
        stripped = y.strip()
        if p >= 0 and stripped and text.startswith(probe[:p]) and text[p : p + len(stripped)] == stripped:
            return text, p, stripped, len(y) - len(y.lstrip())
        r = text.rfind(y)
        if r >= 0:
            return text, r, y, 0
        raise RenderSkip("template_mismatch", "the rendered text does not contain the response verbatim")

    # -------------------------------------------------------------- tokens
    def render(self, example) -> Rendered:
        text, r, y, shift = self.render_text(example)
        enc = self.tokenizer(text, add_special_tokens=(self.mode == "plain"), return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        n_full = len(ids)
        keep = min(n_full, self.max_seq_length)
        ids, offsets = ids[:keep], offsets[:keep]
        special = [i in self.special_ids for i in ids]
        kept_char_end = len(text) if keep == n_full else (max(e for _, e in offsets) if offsets else 0)
        r_end = r + len(y)
        eos_index = None
        for t in range(keep):
            s, e = offsets[t]
            if special[t] and s >= r_end:
                eos_index = t
                break
            if not special[t] and s >= r_end and text[s:e].strip():
                break  # real text after the response before any end-of-turn token: template has no end marker
        return Rendered(text, ids, offsets, special, y, r, shift, n_full, kept_char_end, eos_index, self.mode)
