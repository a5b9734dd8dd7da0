"""The edge's JSON body parser: its orjson path decides every body exactly as the checked path does
(the same value, or the same refusal), and the limits hold on both."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import ApiError
from server.web.handlers.common import MAX_JSON_DEPTH, parse_json_body, parse_json_checked


def _outcome(parse, body: bytes):
    try:
        value = parse(body)
    except ApiError as exc:
        return ("refused", exc.status, exc.code)
    return ("value", repr(value))          # repr: 0.0 and -0.0, 1 and 1.0 and True stay apart


def _same(body: bytes) -> None:
    assert _outcome(parse_json_body, body) == _outcome(parse_json_checked, body), body


_text = st.text(alphabet=st.characters(codec=None, blacklist_categories=()), max_size=8)
_numbers = st.one_of(
    st.integers(min_value=-(10 ** 25), max_value=10 ** 25),
    st.sampled_from([2 ** 63 - 1, 2 ** 63, -(2 ** 63), -(2 ** 63) - 1, 2 ** 64 - 1, 2 ** 64, 10 ** 18, 10 ** 19]),
    st.floats(allow_nan=False, allow_infinity=False),
)
_values = st.recursive(st.one_of(st.none(), st.booleans(), _numbers, _text),
                       lambda inner: st.one_of(st.lists(inner, max_size=4),
                                               st.dictionaries(_text, inner, max_size=4)),
                       max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_values, st.booleans())
def test_the_orjson_path_decides_as_the_checked_path(value, ascii_only):
    try:
        text = json.dumps(value, ensure_ascii=ascii_only)
    except (ValueError, OverflowError):
        return
    _same(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=60))
def test_mangled_bodies_are_decided_alike(noise, at):
    base = b'{"idempotency_key":"b7","votes":[{"matter_id":"M1","choice":"yes"},{"matter_id":"M2","choice":"no"}]}'
    _same(base[:at] + noise + base[at:])
    _same(noise)


@pytest.mark.parametrize("body", [
    b'{"a":"\\u0000"}', b'{"a":"\\ud800"}', b'{"\\udc00":1}', b'{"a":"\\ud83d\\ude00"}', b'{"a":"x\x00"}',
    b'{"a":"\xed\xa0\x80"}', b'{"a":9223372036854775807}', b'{"a":9223372036854775808}',
    b'{"a":-9223372036854775808}', b'{"a":-9223372036854775809}', b'{"a":18446744073709551616}',
    b'{"a":123456789012345678}', b'{"a":1e400}', b'{"a":-1e400}', b'{"a":1e308}', b'{"a":NaN}',
    b'{"a":Infinity}', b'\xef\xbb\xbf{"a":1}', b'{"a":1} x', b"", b"[]", b'"s"', b"  {}  ",
    '{"a":"é"}'.encode("utf-16"), b'{"a":1,"a":2}', b'{"a":-0}', b'{"a":-0.0}', b'{"a":1E5}',
    b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}",
    b'{"a":' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}", b"[" * 2000 + b"]" * 2000,
])
def test_edge_cases_are_decided_alike(body):
    _same(body)


def test_the_limits_hold():
    assert _outcome(parse_json_body, b'{"a":"\\u0000"}') == ("refused", 400, "invalid_characters")
    assert _outcome(parse_json_body, b'{"a":"\\ud800"}')[2] in ("invalid_characters", "invalid_json")
    assert _outcome(parse_json_body, b'{"a":9223372036854775808}') == ("refused", 422, "value_out_of_range")
    assert _outcome(parse_json_body, b'{"a":1e400}') == ("refused", 422, "value_out_of_range")
    assert _outcome(parse_json_body, b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)) == \
        ("refused", 400, "too_deep")
    assert parse_json_body(b'{"votes":[{"matter_id":"M1","choice":"yes"}],"n":-12}') == \
        {"votes": [{"matter_id": "M1", "choice": "yes"}], "n": -12}
