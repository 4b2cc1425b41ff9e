"""The ``ipam.store`` parser for the etcd store: defaults, every rejection with code 7 and its key path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cnicore._errors import InvalidConfigError
from cnicore.stores._etcd_config import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_BLOCK_SIZE6,
    DEFAULT_PREFIX,
    EtcdStoreConfig,
    parse_etcd_store_config,
)

BASE = {"type": "etcd", "endpoints": ["http://127.0.0.1:2379"]}


def test_etcd_config_defaults() -> None:
    config = parse_etcd_store_config(dict(BASE))
    assert config == EtcdStoreConfig(endpoints=("http://127.0.0.1:2379",))
    assert config.prefix == DEFAULT_PREFIX
    assert (config.block_size, config.block_size6) == (DEFAULT_BLOCK_SIZE, DEFAULT_BLOCK_SIZE6)
    assert config.block_affinity is True
    assert config.host is None


def test_etcd_config_full() -> None:
    config = parse_etcd_store_config({
        "type": "etcd", "endpoints": ["https://10.0.0.1:2379/", "https://[fd00::1]:2379"],
        "prefix": "/k8s/ipam", "host": "node-7", "blockSize": 24, "blockSize6": 120, "blockAffinity": False,
        "timeout": 2.5, "caFile": "/ca.pem", "certFile": "/c.pem", "keyFile": "/k.pem",
    })
    assert config.endpoints == ("https://10.0.0.1:2379", "https://[fd00::1]:2379")
    assert (config.prefix, config.host, config.block_size, config.block_size6) == ("/k8s/ipam", "node-7", 24, 120)
    assert config.block_affinity is False
    assert config.timeout == 2.5
    assert (config.ca_file, config.cert_file, config.key_file) == ("/ca.pem", "/c.pem", "/k.pem")


@pytest.mark.parametrize(("change", "key"), [
    ({"type": "file"}, "ipam.store.type"),
    ({"type": None}, "ipam.store.type"),
    ({"endpoints": []}, "ipam.store.endpoints"),
    ({"endpoints": "http://127.0.0.1:2379"}, "ipam.store.endpoints"),
    ({"endpoints": ["127.0.0.1:2379"]}, "ipam.store.endpoints[0]"),
    ({"endpoints": ["http://a:1", "http://b"]}, "ipam.store.endpoints[1]"),
    ({"endpoints": ["http://a:1/v3"]}, "ipam.store.endpoints[0]"),
    ({"endpoints": ["http://a:99999"]}, "ipam.store.endpoints[0]"),
    ({"endpoints": [7]}, "ipam.store.endpoints[0]"),
    ({"prefix": "nope"}, "ipam.store.prefix"),
    ({"prefix": "/a/"}, "ipam.store.prefix"),
    ({"prefix": "/a//b"}, "ipam.store.prefix"),
    ({"prefix": ""}, "ipam.store.prefix"),
    ({"host": "a/b"}, "ipam.store.host"),
    ({"host": ""}, "ipam.store.host"),
    ({"host": 5}, "ipam.store.host"),
    ({"blockSize": 0}, "ipam.store.blockSize"),
    ({"blockSize": 33}, "ipam.store.blockSize"),
    ({"blockSize": True}, "ipam.store.blockSize"),
    ({"blockSize": 26.5}, "ipam.store.blockSize"),
    ({"blockSize6": 129}, "ipam.store.blockSize6"),
    ({"blockAffinity": "yes"}, "ipam.store.blockAffinity"),
    ({"timeout": 0}, "ipam.store.timeout"),
    ({"timeout": "5"}, "ipam.store.timeout"),
    ({"timeout": float("inf")}, "ipam.store.timeout"),
    ({"certFile": "/c.pem", "endpoints": ["https://a:1"]}, "ipam.store.keyFile"),
    ({"caFile": "/ca.pem"}, "ipam.store.endpoints"),
    ({"blocksize": 26}, "ipam.store.blocksize"),
])
def test_etcd_config_rejects_with_key_path(change: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        parse_etcd_store_config({**BASE, **change})
    assert info.value.code == 7
    assert info.value.key == key
    assert key in str(info.value)


def test_etcd_config_not_an_object() -> None:
    with pytest.raises(InvalidConfigError) as info:
        parse_etcd_store_config(["etcd"], key="plugins[0].ipam.store")
    assert info.value.key == "plugins[0].ipam.store"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["type", "endpoints", "prefix", "host", "blockSize", "blockSize6",
                                        "blockAffinity", "timeout", "caFile", "certFile", "keyFile", "x"]),
                       json_values, max_size=6))
@example({"blockSize": float("inf")})
@example({"blockSize6": float("-inf")})
@example({"blockSize": float("nan")})
def test_etcd_config_any_json_is_accepted_or_code_7(value: dict[str, Any]) -> None:
    try:
        config = parse_etcd_store_config({**BASE, **value})
    except InvalidConfigError as exc:
        assert exc.code == 7
        assert exc.key is not None and exc.key.startswith("ipam.store")
    else:
        assert config.endpoints and all(e.startswith(("http://", "https://")) for e in config.endpoints)
        assert 1 <= config.block_size <= 32 and 1 <= config.block_size6 <= 128
