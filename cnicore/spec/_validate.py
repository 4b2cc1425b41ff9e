"""Identifier validation with the reference's rules, order, codes and messages."""

from __future__ import annotations

from cnicore._errors import InvalidConfigError, InvalidEnvironmentError, UnknownContainerError

__all__ = ["MAX_CONTAINER_ID_BYTES", "MAX_INTERFACE_NAME_BYTES", "MAX_OWNER_BYTES", "validate_container_id",
           "validate_environment_value", "validate_interface_name", "validate_network_name"]

# Container IDs and network names: an ASCII alphanumeric, then ASCII alphanumerics, '_', '.', '-' (the
# reference's ``^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$``). Checked with str methods: no regex to compile when a plugin starts.
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_NAME_CHARS = _ALNUM + "_.-"


def _is_name(text: str) -> bool:
    # strip() removes every character of the set from both ends: nothing is left only when all are in it.
    return bool(text) and text[0] in _ALNUM and not text.strip(_NAME_CHARS)

#: The longest interface name (the kernel's IFNAMSIZ less the NUL).
MAX_INTERFACE_NAME_BYTES = 15
#: The longest container ID: the longest ``CNI_CONTAINERID`` the kernel passes to an executed plugin (one
#: environment string holds at most 128 KiB with its name, ``=`` and NUL). Every ID a runtime can run a plugin
#: with is accepted; the file store reads back any owner made of such an ID (``MAX_OWNER_BYTES``).
MAX_CONTAINER_ID_BYTES = 128 * 1024 - len("CNI_CONTAINERID=") - 1
#: The longest reservation content (UTF-8 bytes) a store writes, and so the longest it reads back as an owner:
#: the longest container ID a plugin can be given, the line break (``\r\n``), the longest interface name. An
#: owner that would be longer is refused (a store could not read it back, and would take its own reservation
#: for a stranger's); longer content is nobody's (the address stays taken, no DEL releases it) and is never
#: read further.
MAX_OWNER_BYTES = MAX_CONTAINER_ID_BYTES + 2 + MAX_INTERFACE_NAME_BYTES


def validate_container_id(container_id: str) -> None:
    """Raise unless ``container_id`` is a valid CNI container ID.

    Empty: code 3 ``missing containerID``; bad characters: code 4
    ``invalid characters in containerID`` with the ID as details; longer than
    :data:`MAX_CONTAINER_ID_BYTES`: code 4 ``containerID is too long`` (no executed
    plugin can be given such an ID; only a library caller can pass one).
    """
    if container_id == "":
        raise UnknownContainerError("missing containerID")
    if not _is_name(container_id):
        raise InvalidEnvironmentError("invalid characters in containerID", container_id)
    if len(container_id) > MAX_CONTAINER_ID_BYTES:  # (ASCII only, as matched above: characters are bytes)
        raise InvalidEnvironmentError("containerID is too long", f"at most {MAX_CONTAINER_ID_BYTES} bytes",
                                      key="CNI_CONTAINERID", value=container_id[:64] + "...")


def validate_network_name(name: str) -> None:
    """Raise :class:`InvalidConfigError` (code 7) unless ``name`` is a valid network name.

    The name also becomes a directory (host-local's store, the result cache), so the
    rule keeps ``/`` and ``..`` out.
    """
    if name == "":
        raise InvalidConfigError("missing network name:", key="name", value=name)
    if not _is_name(name):
        raise InvalidConfigError("invalid characters found in network name", name)


def validate_interface_name(ifname: str) -> None:
    """Raise :class:`InvalidEnvironmentError` (code 4) unless ``ifname`` is a valid interface name.

    Checked in the reference's order: empty, longer than 15 bytes, ``.``/``..``,
    then (stricter than the reference, see :func:`validate_environment_value`) a NUL
    character, then ``/``, ``:`` or whitespace.

    Also stricter than the reference: a name that is not UTF-8 (bytes the
    environment carried, which Python decodes as surrogates) is refused. The
    reference takes it, and then prints it in its result as JSON must, with
    U+FFFD for each stray byte: a name no interface has.
    """
    if ifname == "":
        raise InvalidEnvironmentError("interface name is empty")
    try:
        raw = ifname.encode("utf-8")
        utf8 = True
    except UnicodeEncodeError:
        utf8 = False
        try:
            raw = ifname.encode("utf-8", "surrogateescape")  # (the bytes the environment held)
        except UnicodeEncodeError:
            raw = ifname.encode("utf-8", "surrogatepass")  # (a caller's lone surrogate: no byte of any name)
    if len(raw) > MAX_INTERFACE_NAME_BYTES:
        raise InvalidEnvironmentError("interface name is too long",
                                      "interface name should be less than 16 characters")
    if ifname in (".", ".."):
        raise InvalidEnvironmentError("interface name is . or ..")
    validate_environment_value("CNI_IFNAME", ifname)
    if not utf8:
        raise InvalidEnvironmentError("interface name is not valid UTF-8", raw.decode("utf-8", "backslashreplace"),
                                      key="CNI_IFNAME", value=ifname)
    if any(ch in "/:" or ch.isspace() for ch in ifname):
        raise InvalidEnvironmentError("interface name contains / or : or whitespace characters")


def validate_environment_value(variable: str, value: str) -> None:
    """Raise :class:`InvalidEnvironmentError` (code 4) when ``value`` holds a NUL character.

    Every identifier a plugin receives travels as the environment variable
    ``variable`` (``CNI_IFNAME``, ``CNI_NETNS``, ``CNI_ARGS``...), and becomes part
    of file names and system calls, none of which can hold NUL. An exec'd plugin
    never sees one (the environment cannot carry it); a library caller can pass
    one, and gets this error before anything is written instead of a ValueError
    from deep inside.
    """
    if "\0" in value:
        raise InvalidEnvironmentError(f"{variable} contains a NUL character", repr(value), key=variable, value=value)
