"""JSON out as Go writes it, for everything the decoder accepts: deep nesting, odd keys, self-reference."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore._errors import DecodingError
from cnicore._json import MAX_DEPTH, _dumps_iteratively, decode, marshal, marshal_indent


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    # Only to compute the expected text with the standard encoder; what is tested runs at the default limit.
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _nested(depth: int, kind: str) -> Any:
    """A value whose containers nest ``depth`` levels deep."""
    value: Any = "<leaf \u2028>"
    for level in range(depth):
        if kind == "list":
            value = [value]
        elif kind == "object":
            value = {"k": value}
        else:
            value = [value, level, 1.5] if level % 2 else {"k": value, "n": None, "t": True}
    return value


@pytest.mark.parametrize("kind", ["list", "object", "mixed"])
def test_everything_the_decoder_accepts_can_be_written_back(kind: str) -> None:
    document = json.dumps(_nested(MAX_DEPTH, kind))
    value = decode(document)
    for write, options in ((marshal, {"separators": (",", ":")}), (marshal_indent, {"indent": 4})):
        text = write(value)
        assert decode(text) == value
        with _recursion_limit(20_000):
            expected = json.dumps(value, ensure_ascii=False, **options)  # type: ignore[arg-type]
        assert text == expected.replace("\u2028", "\\u2028").replace("<", "\\u003c").replace(">", "\\u003e")
    with pytest.raises(DecodingError, match="exceeded max depth"):
        decode(json.dumps(_nested(MAX_DEPTH + 1, kind)))


def test_far_deeper_values_are_written_too() -> None:
    value = _nested(3000, "mixed")
    with _recursion_limit(20_000):
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert marshal(value) == expected.replace("\u2028", "\\u2028").replace("<", "\\u003c").replace(">", "\\u003e")


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                     st.text())
_KEYS = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False))
_VALUES = st.recursive(_SCALARS, lambda children: st.one_of(st.lists(children, max_size=4),
                                                            st.dictionaries(_KEYS, children, max_size=4)),
                       max_leaves=30)


@given(_VALUES)
def test_the_iterative_writer_is_json_dumps_byte_for_byte(value: Any) -> None:
    assert _dumps_iteratively(value, indent=False) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert _dumps_iteratively(value, indent=True) == json.dumps(value, indent=4, ensure_ascii=False)


def test_what_cannot_be_written_fails_as_json_dumps_fails() -> None:
    loop: list[Any] = []
    loop.append([loop])
    with pytest.raises(ValueError, match="Circular reference detected"):
        marshal(loop)
    shared = [1]
    assert marshal({"a": shared, "b": [shared, shared]}) == '{"a":[1],"b":[[1],[1]]}'  # shared is no loop
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None, not tuple"):
        _dumps_iteratively({(1, 2): 3}, indent=False)
    with pytest.raises(ValueError, match="Out of range float values"):
        marshal([*_nested(3, "list"), float("nan")])
    # A lone surrogate is three bytes of invalid UTF-8 to Go, each written as U+FFFD.
    assert marshal({"x": "\ud800"}) == '{"x":"\ufffd\ufffd\ufffd"}'
    assert marshal([*_nested(600, "list"), "\udfff"]).endswith('"\ufffd\ufffd\ufffd"]')


# --------------------------------------------------------------------- the accelerator against the json package

def _go_escaped(text: str) -> str:
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return text


@given(_VALUES)
def test_marshal_writes_what_json_dumps_writes(value: Any) -> None:
    # marshal runs on the C accelerator directly (compact) and on the iterative writer (indented).
    assert marshal(value) == _go_escaped(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    assert marshal_indent(value) == _go_escaped(json.dumps(value, indent=4, ensure_ascii=False))


def _loads_outcome(text: str, **options: Any) -> tuple[str, Any]:
    """json.loads's value, or its error (message and position), as the decoder must mirror it."""
    try:
        return "value", json.loads(text, **options)
    except json.JSONDecodeError as exc:
        return "error", (exc.msg, exc.pos)


def _decode_outcome(text: str) -> tuple[str, Any]:
    try:
        return "value", decode(text)
    except DecodingError as exc:
        return "error", exc.msg


_DOCUMENT_PIECES = st.sampled_from(['{', '}', '[', ']', ',', ':', '"a"', '"\\q"', '"\\u12"', '1', '-0', '1e5', '2.5',
                                    'true', 'nul', 'null', ' ', '\n', '\t', '\x01', '"x\ny"', '\ufeff', '0x1', '01'])


@given(st.one_of(_VALUES.map(json.dumps), st.lists(_DOCUMENT_PIECES, max_size=12).map("".join)))
def test_decode_accepts_and_refuses_what_json_loads_does(text: str) -> None:
    kind, expected = _loads_outcome(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    got_kind, got = _decode_outcome(text)
    assert got_kind == kind
    if kind == "value":
        assert got == expected and json.dumps(got) == json.dumps(expected)
    else:
        from cnicore._json import go_error_text

        assert got == go_error_text(expected[0], text, expected[1])


def test_without_the_accelerator_the_json_package_does_the_same(tmp_path: Any) -> None:
    # An interpreter without _json: the module falls back on the json package's pure-Python scanner and encoder.
    import subprocess

    script = (
        "import sys; sys.modules['_json'] = None\n"
        "from cnicore._json import decode, marshal, marshal_indent, _make_compact_encoder\n"
        "from cnicore._errors import DecodingError\n"
        "assert _make_compact_encoder is None\n"
        "doc = decode(' {\"a\": [1, -0, 2.5e3, \"<x>\", null, true], \"b\": {}} \\n')\n"
        "print(marshal(doc)); print(marshal_indent(doc))\n"
        "for bad in ('{\"a\" 1}', '[1,]', '1 2', 'NaN'):\n"
        "    try: decode(bad)\n"
        "    except DecodingError as exc: print(exc.msg)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    doc = decode(' {"a": [1, -0, 2.5e3, "<x>", null, true], "b": {}} \n')
    expected = [marshal(doc), *marshal_indent(doc).splitlines()]
    for bad in ('{"a" 1}', '[1,]', '1 2', 'NaN'):
        with pytest.raises(DecodingError) as caught:
            decode(bad)
        expected.append(caught.value.msg)
    assert done.stdout.splitlines() == expected


@given(_VALUES.map(json.dumps))
def test_the_pairs_hook_sees_what_json_loads_shows_it(text: str) -> None:
    assert decode(text, pairs_hook=list) == json.loads(text, object_pairs_hook=list)
    # Members as written, duplicates included.
    assert decode('{"a": 1, "a": {"b": 2, "b": 3}}', pairs_hook=list) == [("a", 1), ("a", [("b", 2), ("b", 3)])]
