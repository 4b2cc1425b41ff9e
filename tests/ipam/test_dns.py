"""resolvConf parsing: the reference's dns_test.go vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnicore._errors import InvalidConfigError
from cnicore.ipam import DNS, load_resolv_conf, parse_resolv_conf


def test_nameservers_only(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 192.0.2.0\nnameserver 192.0.2.1\n")
    assert load_resolv_conf(str(path)) == DNS(nameservers=("192.0.2.0", "192.0.2.1"))


def test_everything() -> None:
    text = ("nameserver 192.0.2.0\n# comment\n; other comment\nnameserver 192.0.2.2\n\ndomain example.com\n"
            "  search example.net example.org  \nsearch example.gov\noptions one two three\noptions four\nbogus\n"
            "domain\n")
    assert parse_resolv_conf(text) == DNS(nameservers=("192.0.2.0", "192.0.2.2"), domain="example.com",
                                          search=("example.net", "example.org", "example.gov"),
                                          options=("one", "two", "three", "four"))


def test_last_domain_wins_and_empty() -> None:
    assert parse_resolv_conf("domain a\ndomain b\n").domain == "b"
    assert parse_resolv_conf("").empty


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_resolv_conf(str(tmp_path / "missing"))
    assert info.value.msg == f"open {tmp_path / 'missing'}: no such file or directory"
    assert info.value.key == "ipam.resolvConf"
