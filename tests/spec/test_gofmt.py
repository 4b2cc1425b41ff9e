"""Go's %q as the reference's messages print strings (strconv.Quote): the single-letter escapes, \\x for the other
control characters, \\u for what Go deems unprintable. A prevResult error quoting a cniVersion of "\\b" found
the missing single-letter escapes (differential against the reference portmap)."""

from __future__ import annotations

import pytest

from cnicore._gofmt import go_quote, go_quote_list


@pytest.mark.parametrize(("text", "quoted"), [
    ("abc", '"abc"'),
    ('say "hi"\\', '"say \\"hi\\"\\\\"'),
    ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("\x00\x01\x1b\x7f", '"\\x00\\x01\\x1b\\x7f"'),
    ("\u2028", '"\\u2028"'),
    ("é∂", '"é∂"'),
])
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_go_quote_list() -> None:
    assert go_quote_list(["a", "\b"]) == '["a" "\\b"]'
