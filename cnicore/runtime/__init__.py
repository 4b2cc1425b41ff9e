"""The runtime: attach containers to CNI networks, detach them, check, GC, recover; libcni's result cache.

:class:`Runtime` is the entry point (see :mod:`cnicore.runtime._runtime` for what it
does beyond libcni: crash-safe ADDs, rolled-back failures, safe interface-name
allocation, a GC that never races an ADD)::

    from cnicore.runtime import Runtime

    with Runtime(config_dir="/etc/cni/net.d", plugin_path=["/opt/cni/bin"]) as runtime:
        runtime.recover()                        # undo ADDs a crash interrupted
        result = runtime.attach("c1", "mynet", "/var/run/netns/c1")          # eth0
        print(result.as_version("0.2.0").to_json())                          # the ip4 form
        runtime.detach("c1", "mynet")

The result cache functions read and write libcni's cache files byte for byte, so
libcni-based tools and cnicore can share ``/var/lib/cni``: :func:`cache_file_path`,
:func:`encode_cache_entry`, :func:`decode_cache_entry`, :func:`write_cache_entry`,
:func:`read_cache_entry`, :func:`read_cached_result`, :func:`list_cache_entries`,
:func:`delete_cache_entry`.

The files a container gets as the Mesos isolator writes them (``hosts``,
``hostname``, ``resolv.conf``) are derived from results by :func:`container_files`
(DNS merged across networks by :func:`merged_dns`), as strings or written into a
directory (:meth:`ContainerFiles.write`).
"""

from cnicore.runtime._cache import (
    CACHE_KIND,
    CachedAttachment,
    cache_file_path,
    decode_cache_entry,
    delete_cache_entry,
    encode_cache_entry,
    list_cache_entries,
    read_cache_entry,
    read_cached_result,
    write_cache_entry,
)
from cnicore.runtime._files import ContainerFiles, container_files, merged_dns
from cnicore.runtime._journal import PendingAttachment
from cnicore.runtime._runtime import GCReport, RecoveryReport, Runtime

__all__ = [
    "CACHE_KIND",
    "CachedAttachment",
    "ContainerFiles",
    "GCReport",
    "PendingAttachment",
    "RecoveryReport",
    "Runtime",
    "cache_file_path",
    "container_files",
    "decode_cache_entry",
    "delete_cache_entry",
    "encode_cache_entry",
    "list_cache_entries",
    "merged_dns",
    "read_cache_entry",
    "read_cached_result",
    "write_cache_entry",
]
