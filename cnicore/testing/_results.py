"""Hypothesis strategies for CNI results of every version (valid values only).

Use them to property-test code that consumes or produces results::

    from hypothesis import given
    from cnicore.testing import results

    @given(results(version="0.4.0"))
    def test_round_trip(result): ...

Every value drawn is a valid, printable result: integers stay within ±2**53
(so that 1.x printing, which passes numbers through a float64, is exact) and
text has no unpaired surrogates. Addresses are never IPv4-mapped IPv6 (those
are stored as IPv4). Requires the ``hypothesis`` package (``cnicore[testing]``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import IncompatibleVersionError
from cnicore.spec._result import (
    DNS,
    AnyResult,
    Interface,
    Interface040,
    IPConfig,
    IPConfig020,
    IPConfig040,
    Result,
    Result020,
    Result040,
    Route,
)
from cnicore.spec._version import ALL_VERSIONS, result_family

__all__ = [
    "dns_settings",
    "json_values",
    "mutated_result_objects",
    "interfaces",
    "ip_addresses",
    "ip_configs",
    "ip_networks",
    "result_texts",
    "results",
    "routes",
]

_EXACT = 2**53
_V4_MAPPED = 0xFFFF << 32

# Printable text without surrogates (the reference replaces unpaired ones on decode).
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_SMALL_TEXT = st.text(st.characters(codec="utf-8"), max_size=6)


def _v6_value() -> st.SearchStrategy[int]:
    # Mix fully random addresses with sparse ones so that "::" compression is exercised.
    sparse = st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xDB8, 0x2001]), min_size=8, max_size=8).map(
        lambda groups: sum(g << (112 - 16 * i) for i, g in enumerate(groups)))
    return st.one_of(st.integers(0, 2**128 - 1), sparse).filter(lambda v: (v >> 32) != 0xFFFF)


def ip_addresses(family: int | None = None) -> st.SearchStrategy[IPAddress]:
    """IPv4 (``family=4``), IPv6 (``6``) or either (None) addresses."""
    v4 = st.integers(0, 2**32 - 1).map(lambda v: IPAddress(v, 4))
    v6 = _v6_value().map(lambda v: IPAddress(v, 6))
    if family == 4:
        return v4
    if family == 6:
        return v6
    return st.one_of(v4, v6)


def ip_networks(family: int | None = None) -> st.SearchStrategy[IPNetwork]:
    """Networks with arbitrary host bits kept (``10.1.2.3/24``), of one family or either."""
    v4 = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(lambda t: IPNetwork(t, version=4))
    v6 = st.tuples(_v6_value(), st.integers(0, 128)).map(lambda t: IPNetwork(t, version=6))
    if family == 4:
        return v4
    if family == 6:
        return v6
    return st.one_of(v4, v6)


_INTS = st.integers(-_EXACT, _EXACT)
_SMALL_INTS = st.one_of(st.integers(0, 9000), _INTS)


def routes() -> st.SearchStrategy[Route]:
    """Routes with every optional field sometimes set (0.2.0 results may carry them too)."""
    return st.builds(
        Route,
        dst=ip_networks(),
        gw=st.none() | ip_addresses(),
        mtu=st.just(0) | _SMALL_INTS,
        advmss=st.just(0) | _SMALL_INTS,
        priority=st.just(0) | _SMALL_INTS,
        table=st.none() | _SMALL_INTS,
        scope=st.none() | st.integers(0, 255),
    )


def dns_settings() -> st.SearchStrategy[DNS]:
    """DNS settings, empty or not."""
    names = st.lists(_TEXT, max_size=3)
    return st.builds(DNS, nameservers=names, domain=_TEXT, search=names, options=names)


def interfaces(version: str = "1.1.0") -> st.SearchStrategy[Interface | Interface040]:
    """Interfaces of the class the version's results use (:class:`Interface` or :class:`Interface040`)."""
    family = result_family(version)
    if family == "040":
        return st.builds(Interface040, name=_TEXT, mac=_TEXT, sandbox=_TEXT)
    if family == "100":
        return st.builds(Interface, name=_TEXT, mac=_TEXT, mtu=st.just(0) | _SMALL_INTS, sandbox=_TEXT,
                         socket_path=_SMALL_TEXT, pci_id=_SMALL_TEXT)
    raise IncompatibleVersionError(f"version {version} results have no interfaces", key="version", value=version)


def ip_configs(version: str = "1.1.0") -> st.SearchStrategy[IPConfig | IPConfig040 | IPConfig020]:
    """``ips[]`` entries (1.x, 0.3.x/0.4.0) or ``ip4``/``ip6`` configurations (0.1.0/0.2.0)."""
    family = result_family(version)
    index = st.none() | st.integers(0, 4) | _INTS
    if family == "100":
        return st.builds(IPConfig, address=ip_networks(), gateway=st.none() | ip_addresses(), interface=index)
    if family == "040":
        # The version text is left to its default: the family of the address.
        return st.builds(IPConfig040, address=ip_networks(), gateway=st.none() | ip_addresses(), interface=index)
    return st.one_of(*(_ip_config_020(f) for f in (4, 6)))


def _ip_config_020(family: int) -> st.SearchStrategy[IPConfig020]:
    return st.builds(IPConfig020, ip=ip_networks(family), gateway=st.none() | ip_addresses(family),
                     routes=st.lists(routes(), max_size=3))


def _result_of(version: str) -> st.SearchStrategy[AnyResult]:
    family = result_family(version)
    if family == "020":
        return st.builds(Result020, cni_version=st.just(version), ip4=st.none() | _ip_config_020(4),
                         ip6=st.none() | _ip_config_020(6), dns=dns_settings())
    if family == "040":
        return st.builds(Result040, cni_version=st.just(version), interfaces=st.lists(interfaces(version), max_size=3),
                         ips=st.lists(ip_configs(version), max_size=4), routes=st.lists(routes(), max_size=4),
                         dns=dns_settings())
    return st.builds(Result, cni_version=st.just(version), interfaces=st.lists(interfaces(version), max_size=3),
                     ips=st.lists(ip_configs(version), max_size=4), routes=st.lists(routes(), max_size=4),
                     dns=dns_settings())


def results(version: str | None = None) -> st.SearchStrategy[AnyResult]:
    """Results of ``version`` (its family's class), or of any version when None."""
    if version is None:
        return st.sampled_from(ALL_VERSIONS).flatmap(_result_of)
    return _result_of(version)


def result_texts(version: str | None = None) -> st.SearchStrategy[str]:
    """Results of ``version`` (or any) as the reference prints them."""
    return results(version).map(lambda r: r.to_json())


_RESULT_KEYS = (
    "cniVersion", "CNIVersion", "interfaces", "ips", "IPS", "routes", "dns", "ip4", "ip6", "ip", "gateway", "name",
    "mac", "mtu", "sandbox", "socketPath", "pciID", "version", "interface", "address", "dst", "gw", "advmss",
    "priority", "table", "scope", "nameservers", "domain", "search", "options",
)
_NEAR_VALUES = (
    "", "0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", "9.9.9", "4", "6", "10.0.0.1/8", "::/0", "fd00::1",
    "10.0.0.1", "::ffff:10.0.0.1", "01.2.3.4", "1.2.3/45", "fe80::1%eth0", "x",
)


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (as ``json.loads`` returns them) that often look like parts of a result."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(_NEAR_VALUES), st.text(max_size=8),
    )
    keys = st.sampled_from(_RESULT_KEYS) | st.text(max_size=4)
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=5),
        max_leaves=20,
    )


@st.composite
def _mutated(draw: st.DrawFn, obj: Any) -> Any:
    if isinstance(obj, dict) and obj and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(obj)))
        return {**obj, key: draw(_mutated(obj[key]))}
    if isinstance(obj, list) and obj and draw(st.booleans()):
        index = draw(st.integers(0, len(obj) - 1))
        return [*obj[:index], draw(_mutated(obj[index])), *obj[index + 1:]]
    return draw(json_values())


def mutated_result_objects(version: str | None = None) -> st.SearchStrategy[Any]:
    """Result documents (``to_object()`` of a valid result) with one member or element replaced by
    arbitrary JSON: inputs close to valid ones, for fuzzing parsers and plugins."""
    return results(version).flatmap(lambda r: _mutated(r.to_object()))
