"""Container IDs and network names: the reference's pattern, checked without a regex on the exec path."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore import InvalidConfigError, InvalidEnvironmentError
from cnicore.spec._validate import validate_container_id, validate_network_name

# The reference's rule (pkg/utils: ``^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$``, Go's RE2: ``$`` is the end of the text).
_REFERENCE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*\Z")
_NEAR = st.text(alphabet=st.sampled_from("aZ09_.-/ \n\t:é\x00İK\u212a"), min_size=1, max_size=8)


def _accepted(check: object, text: str) -> bool:
    try:
        check(text)  # type: ignore[operator]
    except (InvalidConfigError, InvalidEnvironmentError):
        return False
    return True


@given(_NEAR | st.text(min_size=1, max_size=8))
def test_names_and_ids_follow_the_reference_pattern(text: str) -> None:
    expected = _REFERENCE.match(text) is not None
    assert _accepted(validate_network_name, text) is expected
    assert _accepted(validate_container_id, text) is expected


@pytest.mark.parametrize("text", ["a", "0", "a.b-c_d", "Z9", "a" * 4096])
def test_valid(text: str) -> None:
    validate_network_name(text)
    validate_container_id(text)


@pytest.mark.parametrize("text", ["-a", ".a", "_a", "a/b", "a\n", "a b", "\u212a", "é", "a\x00", "../x"])
def test_invalid(text: str) -> None:
    assert not _accepted(validate_network_name, text)
    assert not _accepted(validate_container_id, text)
