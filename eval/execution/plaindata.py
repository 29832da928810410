"""Plain data across the sandbox boundary: a tagged JSON encoding and an equality-preserving canonical form.

Standard library only: loaded by the harness and, before any candidate code, by the sandbox runner.

* :func:`encode` / :func:`decode_text`: lossless for the value types benchmark inputs/outputs use (tuple vs list,
  sets, complex, NaN, big ints, bytes). Decoding builds only None, bool, int, float, complex, str, bytes, list,
  tuple, dict, set, frozenset (plus inert subclasses of those, tagged by name) and :class:`Unrepresentable`; it never
  evaluates code and never unpickles.
* :func:`canon` / :func:`digest`: equal for two values iff ``==`` holds between them (for plain data).
* :func:`check_plain`: recursive validation of a decoded value (used on everything that comes back from a sandbox).
"""

from __future__ import annotations

import json
import math

# ----------------------------------------------------------------------------------------------------------------
# Tagged JSON: lossless for the value types benchmark inputs/outputs use (tuple vs list, sets, complex, NaN, ...).
# Lists map to JSON arrays; every other container is a one-key object, so decoding needs no guessing.
# ----------------------------------------------------------------------------------------------------------------
_MAX_DEPTH = 200
_BIG_INT = 10**300


class Unrepresentable:
    """Stands for an output the runner could not serialise; equal to nothing (not even itself)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<unrepresentable {self.type_name}>"


def _type_name(x) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def encode(x, depth: int = 0):
    """Value -> JSON-compatible structure. Exact type checks: subclasses are tagged with their type name."""
    if depth > _MAX_DEPTH:
        return {"x": "too-deep"}
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x if -_BIG_INT < x < _BIG_INT else {"h": hex(x)}
    if t is float:
        if math.isfinite(x):
            return x
        return {"F": repr(x)}
    if t is list:
        return [encode(v, depth + 1) for v in x]
    if t is tuple:
        return {"t": [encode(v, depth + 1) for v in x]}
    if t is set:
        return {"s": [encode(v, depth + 1) for v in x]}
    if t is frozenset:
        return {"f": [encode(v, depth + 1) for v in x]}
    if t is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in x.items()]}
    if t is complex:
        return {"c": [encode(x.real), encode(x.imag)]}
    if t is bytes:
        return {"b": x.hex()}
    for base in (int, float, str, tuple, list, dict, set, frozenset, complex, bytes):
        if isinstance(x, base) and not isinstance(x, bool):
            return {"S": [_type_name(x), base.__name__, encode(base(x), depth + 1)]}
    return {"x": _type_name(x)}


_SUBCLASSES: dict = {}


def _subclass(name: str, base_name: str):
    key = (name, base_name)
    if key not in _SUBCLASSES:
        base = {"int": int, "float": float, "str": str, "tuple": tuple, "list": list, "dict": dict, "set": set,
                "frozenset": frozenset, "complex": complex, "bytes": bytes}[base_name]
        _SUBCLASSES[key] = type(name.rsplit(".", 1)[-1], (base,), {"__module__": name.rsplit(".", 1)[0]})
    return _SUBCLASSES[key]


def _hook(obj: dict):
    if len(obj) != 1:
        raise ValueError("bad tagged value")
    (tag, v), = obj.items()
    if tag == "t":
        return tuple(v)
    if tag == "s":
        return set(v)
    if tag == "f":
        return frozenset(v)
    if tag == "d":
        return {k: val for k, val in v}
    if tag == "c":
        return complex(v[0], v[1])
    if tag == "F":
        return float(v)
    if tag == "h":
        return int(v, 16)
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "S":
        name, base_name, value = v
        return _subclass(str(name), str(base_name))(value)
    if tag == "x":
        return Unrepresentable(str(v))
    raise ValueError(f"unknown tag {tag!r}")


_NEVER = [0]
_HEX_INT = "i{:x}".format


def canon(x, depth: int = 0) -> str:
    """A string that is equal for two plain-data values iff ``==`` holds between them (1 == 1.0 == True,
    set == frozenset, key order and set order ignored, NaN equal to nothing). Unknown types never match."""
    if depth > _MAX_DEPTH:
        _NEVER[0] += 1
        return f"X{_NEVER[0]}"
    t = type(x)
    if x is None:
        return "N"
    if t is str:
        return "s" + json.dumps(x)
    if t is int or t is bool:
        return f"i{int(x):x}"
    if t is float:
        if x != x:
            _NEVER[0] += 1
            return f"X{_NEVER[0]}"
        if x.is_integer():
            return f"i{int(x):x}"
        return f"f{x!r}"
    if t is complex:
        return canon(x.real) if x.imag == 0 else f"c{canon(x.real)},{canon(x.imag)}"
    if t is list or t is tuple:
        head = "L[" if t is list else "T["
        if x and all(type(v) is int for v in x):  # fast paths for the common big outputs
            return head + ",".join(map(_HEX_INT, x)) + "]"
        if x and all(type(v) is str for v in x):
            return head + ",".join(["s" + v for v in map(json.dumps, x)]) + "]"
        return head + ",".join([canon(v, depth + 1) for v in x]) + "]"
    if t is set or t is frozenset:
        return "S[" + ",".join(sorted(canon(v, depth + 1) for v in x)) + "]"
    if t is dict:
        return "D{" + ",".join(sorted(canon(k, depth + 1) + ":" + canon(v, depth + 1) for k, v in x.items())) + "}"
    if t is bytes:
        return "b" + x.hex()
    for base in (str, int, float, tuple, list, dict, set, frozenset, complex, bytes):
        if isinstance(x, base):  # str/int/tuple subclasses (namedtuple, IntEnum) compare like their base
            return canon(base(x), depth)
    _NEVER[0] += 1
    return f"X{_NEVER[0]}"


def digest(x, canonical: str | None = None) -> str:
    import hashlib

    text = canon(x) if canonical is None else canonical
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(v, float) for v in x)
    return False


def decode_text(text: str):
    """Inverse of ``json.dumps(encode(x))``. Data only: never evaluates code."""
    return json.loads(text, object_hook=_hook)


def dumps(x) -> str:
    return json.dumps(encode(x), separators=(",", ":"))


_PLAIN = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)


def check_plain(x, depth: int = 0) -> bool:
    """True iff ``x`` is built only from plain data types (exact types or the inert tagged subclasses)."""
    if depth > _MAX_DEPTH + 2:
        return False
    if isinstance(x, Unrepresentable):
        return True
    t = type(x)
    if t not in _PLAIN and t not in _SUBCLASSES.values():
        return False
    if isinstance(x, (list, tuple, set, frozenset)):
        return all(check_plain(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return all(check_plain(k, depth + 1) and check_plain(v, depth + 1) for k, v in x.items())
    return True
