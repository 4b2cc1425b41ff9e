"""The public names of cnicore.runtime are pinned: adding one is a decision, losing one a break for users."""

from __future__ import annotations

import cnicore.runtime

PINNED = {
    "CACHE_KIND", "CachedAttachment", "ContainerFiles", "GCReport", "PendingAttachment", "RecoveryReport", "Runtime",
    "cache_file_path", "decode_cache_entry", "delete_cache_entry", "encode_cache_entry", "list_cache_entries",
    "read_cache_entry", "read_cached_result", "write_cache_entry", "container_files", "merged_dns",
}


def test_public_names_are_pinned_and_documented() -> None:
    assert set(cnicore.runtime.__all__) == PINNED
    for name in cnicore.runtime.__all__:
        obj = getattr(cnicore.runtime, name)
        if callable(obj):
            assert obj.__doc__, name
    for method in ("attach", "attach_entry", "detach", "check", "status", "gc", "recover", "attachments",
                   "cached_result", "networks", "network", "close"):
        assert getattr(cnicore.runtime.Runtime, method).__doc__, method
