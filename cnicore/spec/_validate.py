"""Identifier validation with the reference's rules, order, codes and messages."""

from __future__ import annotations

import re

from cnicore._errors import InvalidConfigError, InvalidEnvironmentError, UnknownContainerError

__all__ = ["validate_container_id", "validate_interface_name", "validate_network_name"]

# Container IDs and network names: an alphanumeric, then alphanumerics, '_', '.', '-'.
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*\Z")
_IFNAME_MAX_BYTES = 15


def validate_container_id(container_id: str) -> None:
    """Raise unless ``container_id`` is a valid CNI container ID.

    Empty: code 3 ``missing containerID``; bad characters: code 4
    ``invalid characters in containerID`` with the ID as details.
    """
    if container_id == "":
        raise UnknownContainerError("missing containerID")
    if not _NAME_RE.match(container_id):
        raise InvalidEnvironmentError("invalid characters in containerID", container_id)


def validate_network_name(name: str) -> None:
    """Raise :class:`InvalidConfigError` (code 7) unless ``name`` is a valid network name.

    The name also becomes a directory (host-local's store, the result cache), so the
    rule keeps ``/`` and ``..`` out.
    """
    if name == "":
        raise InvalidConfigError("missing network name:", key="name", value=name)
    if not _NAME_RE.match(name):
        raise InvalidConfigError("invalid characters found in network name", name)


def validate_interface_name(ifname: str) -> None:
    """Raise :class:`InvalidEnvironmentError` (code 4) unless ``ifname`` is a valid interface name.

    Checked in the reference's order: empty, longer than 15 bytes, ``.``/``..``,
    then ``/``, ``:`` or whitespace.
    """
    if ifname == "":
        raise InvalidEnvironmentError("interface name is empty")
    if len(ifname.encode("utf-8", "surrogatepass")) > _IFNAME_MAX_BYTES:
        raise InvalidEnvironmentError("interface name is too long",
                                      "interface name should be less than 16 characters")
    if ifname in (".", ".."):
        raise InvalidEnvironmentError("interface name is . or ..")
    if any(ch in "/:" or ch.isspace() for ch in ifname):
        raise InvalidEnvironmentError("interface name contains / or : or whitespace characters")
