"""Where host-local reservations live: the store port and its implementations.

* :class:`IPStore` - the port (a ``typing.Protocol``): create-if-absent reserve,
  compare-owner release, lookups, a transaction. Shaped to fit a distributed store.
* :class:`MemoryStore` - in memory; defines the semantics every store must have.
* :class:`FileStore` - the reference plugin's on-disk layout, byte for byte,
  shareable with it at the same time; crash-safe and O(1) per operation.
* :func:`read_reservations` - a network's reservation files as they are, read without opening a
  file store (no lock held, nothing created): what a listing needs.
* :class:`EtcdStore` - one address space across a cluster on etcd v3 (optional
  extra ``etcd``; the client is imported only when a store is opened).

The names load on first use: an exec'd host-local using the file store must not
pay for the etcd client's imports (sockets, hashing, URL parsing).
"""

from cnicore._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cnicore.stores._etcd import EtcdStore, open_etcd_store
    from cnicore.stores._etcd_config import EtcdStoreConfig, parse_etcd_store_config
    from cnicore.stores._file import DEFAULT_DATA_DIR, LAST_RESERVED_PREFIX, LOCK_NAME, FileStore, network_dir
    from cnicore.stores._goip import ip_from_file_name, ip_text, parse_cidr, parse_ip
    from cnicore.stores._listing import read_reservations
    from cnicore.stores._memory import MemoryStore
    from cnicore.stores._port import IPStore, Owner, Reservation, owner_from_text

__all__ = [
    "DEFAULT_DATA_DIR",
    "EtcdStore",
    "EtcdStoreConfig",
    "LAST_RESERVED_PREFIX",
    "LOCK_NAME",
    "FileStore",
    "IPStore",
    "MemoryStore",
    "Owner",
    "Reservation",
    "ip_from_file_name",
    "ip_text",
    "network_dir",
    "open_etcd_store",
    "owner_from_text",
    "parse_cidr",
    "parse_etcd_store_config",
    "parse_ip",
    "read_reservations",
]

_LAZY = {
    "EtcdStore": "_etcd", "open_etcd_store": "_etcd",
    "EtcdStoreConfig": "_etcd_config", "parse_etcd_store_config": "_etcd_config",
    "DEFAULT_DATA_DIR": "_file", "LAST_RESERVED_PREFIX": "_file", "LOCK_NAME": "_file", "FileStore": "_file",
    "network_dir": "_file",
    "ip_from_file_name": "_goip", "ip_text": "_goip", "parse_cidr": "_goip", "parse_ip": "_goip",
    "read_reservations": "_listing",
    "MemoryStore": "_memory",
    "IPStore": "_port", "Owner": "_port", "Reservation": "_port", "owner_from_text": "_port",
}

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
