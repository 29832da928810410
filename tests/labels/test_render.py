"""Render once, locate the response, tokenize once with offsets; truncation; slow tokenizers refused."""

from __future__ import annotations

import pytest

from codeblock.data_io import Example
from codeblock.labels.render import PLAIN_PROMPT, Renderer, RenderError, RenderSkip


def _ex(prompt="Write add.", response="def add(a, b):\n    return a + b"):
    return Example(0, [{"role": "user", "content": prompt}], response, prompt)


def test_chat_render_locates_response_exactly(tiny_tokenizer):
    rd = Renderer(tiny_tokenizer).render(_ex())
    assert rd.template == "chat"
    assert rd.text[rd.response_start : rd.response_end] == rd.response == _ex().response
    assert rd.text.startswith("<|im_start|>user\nWrite add.<|im_end|>\n<|im_start|>assistant\n")
    assert tiny_tokenizer.convert_ids_to_tokens(rd.input_ids[rd.eos_index]) == "<|im_end|>"
    assert rd.offsets[rd.eos_index][0] == rd.response_end
    # one tokenization of the whole text: ids equal tokenizing the text directly
    assert rd.input_ids == tiny_tokenizer(rd.text, add_special_tokens=False)["input_ids"]


def test_response_that_also_appears_in_the_prompt(tiny_tokenizer):
    y = "x = 1"
    rd = Renderer(tiny_tokenizer).render(_ex(prompt=f"Copy this: {y}", response=y))
    assert rd.response_start > rd.text.index(y)  # the assistant turn, not the prompt copy
    assert rd.text[rd.response_start : rd.response_end] == y


def test_plain_template(tiny_tokenizer):
    rd = Renderer(tiny_tokenizer, template="plain").render(_ex())
    assert rd.text == PLAIN_PROMPT.format(instruction="Write add.") + _ex().response + "<|im_end|>"
    assert rd.eos_index == len(rd.input_ids) - 1


def test_template_that_trims_the_response(tiny_tokenizer):
    trimming = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}"
    saved = tiny_tokenizer.chat_template
    try:
        tiny_tokenizer.chat_template = trimming
        rd = Renderer(tiny_tokenizer).render(_ex(response="\n  x = 1  \n"))
        assert rd.response == "x = 1" and rd.response_shift == 3
        tiny_tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"
        with pytest.raises(RenderSkip, match="template_mismatch"):
            Renderer(tiny_tokenizer).render(_ex())
    finally:
        tiny_tokenizer.chat_template = saved


def test_truncation_keeps_ids_and_reports_kept_chars(tiny_tokenizer):
    long = "\n".join(f"v{i} = {i} * {i}" for i in range(200))
    rd = Renderer(tiny_tokenizer, max_seq_length=40).render(_ex(response=long))
    assert len(rd.input_ids) == len(rd.offsets) == 40 and rd.truncated and rd.n_tokens_full > 40
    assert rd.eos_index is None
    assert 0 < rd.kept_response_chars < len(long)
    assert rd.kept_char_end == rd.offsets[-1][1]


def test_slow_tokenizer_is_refused():
    class Slow:
        is_fast = False

    with pytest.raises(RenderError, match="fast tokenizer"):
        Renderer(Slow())


def test_chat_template_required_when_asked(tiny_tokenizer):
    saved = tiny_tokenizer.chat_template
    try:
        tiny_tokenizer.chat_template = None
        with pytest.raises(RenderError, match="chat_template"):
            Renderer(tiny_tokenizer, template="chat")
        assert Renderer(tiny_tokenizer).mode == "plain"
    finally:
        tiny_tokenizer.chat_template = saved
