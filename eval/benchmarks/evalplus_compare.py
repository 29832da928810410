"""EvalPlus 0.3.1 scoring rules, run in the harness on plain data (no candidate code runs here): MBPP+ input
deserialisation, the special oracles and the per-phase output comparison (exact ``==``, then the sticky ``atol`` with
``np.allclose``). See :mod:`codeblock_eval.benchmarks.evalplus_common` for the rules and the one deviation."""

from __future__ import annotations

import math

from codeblock_eval.execution.plaindata import is_floats as _is_floats

MBPP_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
MBPP_SET_EQ = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
               "intersection_array", "find_dissimilar", "Diff")


# --------------------------------------------------------------------------------------------------------------
# MBPP+ input deserialisation: the JSONL stores tuples/sets/complex as JSON; these task ids get them back.
# --------------------------------------------------------------------------------------------------------------
def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


_LISTS_TO_TUPLES = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740,
                    744, 809}
_NESTED_TO_TUPLES = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ITEMS_TO_TUPLES = {75, 413, 444, 753}
_SECOND_TO_TUPLE = {106, 750}
_FIRST_TO_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_DOUBLE_NESTED = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}


def mbpp_deserialize(task_id: str, inputs: list) -> list:
    n = int(task_id.split("/")[-1])
    if n in _LISTS_TO_TUPLES:
        return [[tuple(a) for a in inp] for inp in inputs]
    if n in _NESTED_TO_TUPLES:
        return [[[tuple(b) for b in a] for a in inp] for inp in inputs]
    if n in _FIRST_ITEMS_TO_TUPLES:
        return [[[tuple(b) for b in inp[0]], inp[1]] for inp in inputs]
    if n in _SECOND_TO_TUPLE:
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if n == 115:  # a list of sets; an empty JSON list becomes {} (an empty dict), as upstream does
        return [[[set(a) if isinstance(a, list) and a else {} for a in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in _FIRST_TO_TUPLE:
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if n in _DOUBLE_NESTED:
        return [[tuple(tuple(b) for b in a) for a in inp] for inp in inputs]
    if n == 278:
        return [[tuple(tuple(a) if isinstance(a, list) else a for a in inp[0])] for inp in inputs]
    if n == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in _ALL_TUPLES:
        return [_tuples(inp) for inp in inputs]
    return inputs


# --------------------------------------------------------------------------------------------------------------
# oracles
# --------------------------------------------------------------------------------------------------------------
def _poly(xs, x):
    return sum(c * math.pow(x, i) for i, c in enumerate(xs))


def _surface_area_alt(base_edge, height):
    # Mbpp/581 alternative reading: "height" is the pyramid's perpendicular height.
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _digit_distance_alt(a, b):
    # Mbpp/558 alternative reading: pad the shorter number with leading zeros.
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width)))


def compare_phase(kind: str, entry_point: str, outputs: list, expected: list, inputs: list, atol: float,
                  exp_digests: list | None = None) -> int | None:
    """Index of the first output that fails the evalplus comparison, or None if all match.

    An expected value too large to keep (``None`` with a digest) is compared by digest (exact equality)."""
    import numpy as np

    from codeblock_eval.execution.plaindata import digest

    for i, (out, exp) in enumerate(zip(outputs, expected)):
        if exp is None and exp_digests is not None and exp_digests[i] is not None and entry_point != "find_zero":
            if digest(out) != exp_digests[i]:
                return i
            continue
        try:
            if kind == "humaneval" and entry_point == "find_zero":
                if not abs(_poly(*inputs[i], out)) <= atol:
                    return i
                continue
            exact = out == exp
            if kind == "mbpp":
                if entry_point == "are_equivalent":
                    exact = True
                elif entry_point == "sum_div":
                    exact = exact or out == 0
                elif entry_point == "surface_Area":
                    exact = exact or abs(out - _surface_area_alt(*inputs[i])) <= atol
                elif entry_point == "digit_distance_nums":
                    exact = exact or out == _digit_distance_alt(*inputs[i])
                elif entry_point in MBPP_SET_EQ:
                    exact = set(out) == set(exp)
                elif entry_point in MBPP_NOT_NONE:
                    exact = out == exp if isinstance(out, bool) else exp == (out is not None)
            if atol == 0 and _is_floats(exp):
                atol = 1e-6  # sticky for the rest of the phase, as in evalplus
            if not exact and atol != 0:
                if type(out) is not type(exp):
                    return i
                if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                    return i
                if not np.allclose(out, exp, rtol=1e-07, atol=atol):
                    return i
            elif not exact:
                return i
        except Exception:  # noqa: BLE001 - any comparison error (unhashable, bad types) is a failed input
            return i
    return None
