"""The public names of cnicore.ipam and cnicore.stores are pinned; the port is satisfied by both stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cnicore.ipam
import cnicore.stores
from cnicore.stores import FileStore, IPStore, MemoryStore

IPAM_NAMES = {
    "DEFAULT_DATA_DIR", "DNS", "AllocatedIP", "Allocation", "HostLocalIPAM", "IPAMConfig", "Range", "RangeSet",
    "Route", "add", "allocate", "candidate_spans", "check", "delete", "gc", "load_ipam_config", "load_resolv_conf",
    "make_owner", "network_text", "parse_requested_ip", "parse_resolv_conf",
}
STORE_NAMES = {
    "DEFAULT_DATA_DIR", "LAST_RESERVED_PREFIX", "LOCK_NAME", "FileStore", "IPStore", "MemoryStore", "Owner",
    "Reservation", "ip_from_file_name", "ip_text", "network_dir", "owner_from_text", "parse_cidr", "parse_ip",
    "EtcdStore", "EtcdStoreConfig", "open_etcd_store", "parse_etcd_store_config", "read_reservations",
}


def test_public_names_are_pinned() -> None:
    assert set(cnicore.ipam.__all__) == IPAM_NAMES
    assert set(cnicore.stores.__all__) == STORE_NAMES
    for module in (cnicore.ipam, cnicore.stores):
        for name in module.__all__:
            obj = getattr(module, name)
            assert isinstance(obj, str) or obj.__doc__, f"{module.__name__}.{name} has no docstring"


def test_both_stores_implement_the_port(tmp_path: Path) -> None:
    assert isinstance(MemoryStore(), IPStore)
    with FileStore(tmp_path, "n") as store:
        assert isinstance(store, IPStore)


def test_importing_ipam_loads_no_ctypes_or_subprocess() -> None:
    # inotify (ctypes) is loaded only when a FileStore is opened.
    code = ("import sys, cnicore.ipam, cnicore.stores\n"
            "watched = ('ctypes', 'cnicore.stores._inotify', 'subprocess')\n"
            "print(','.join(sorted(m for m in sys.modules if m in watched)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
