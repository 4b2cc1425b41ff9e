"""The front of ``mesos-cni-port-mapper``'s protocol: error codes, the error object, the first refusals.

What the Mesos port mapper refuses before it reads its configuration (a
missing ``CNI_*`` variable, stdin that cannot be read) needs none of the
plugin (:mod:`cnicore.plugins._mesos_portmapper`): the exec entry point answers
it from here, with nothing else of the plugin loaded. The plugin's module
raises and prints its errors with the same functions.
"""

from __future__ import annotations

from cnicore._errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import BinaryIO

__all__ = ["ERROR_BAD_ARGS", "ERROR_CNI_VERSION", "ERROR_DELEGATE_FAILURE", "ERROR_PORTMAP_FAILURE",
           "ERROR_READ_FAILURE", "ERROR_UNSUPPORTED_COMMAND", "REQUIRED_ENV", "check_environment", "error_text",
           "mesos_error", "mesos_refusal", "read_stdin"]

ERROR_READ_FAILURE = 100
ERROR_BAD_ARGS = 101
ERROR_DELEGATE_FAILURE = 102
ERROR_PORTMAP_FAILURE = 103
ERROR_UNSUPPORTED_COMMAND = 104
#: The version Mesos stamps on the plugin's error objects.
ERROR_CNI_VERSION = "0.3.0"
#: The variables Mesos requires, in the order it looks for them (``CNI_NETNS`` not for DEL).
REQUIRED_ENV = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")


def mesos_error(msg: str, code: int) -> CNIError:
    """An error with one of Mesos's codes (100-104)."""
    return CNIError(msg, code=code)


def error_text(exc: CNIError) -> str:
    """The error object as Mesos prints it: compact, ``cniVersion`` first."""
    import json

    return json.dumps({"cniVersion": ERROR_CNI_VERSION, "code": exc.code, "msg": exc.msg}, separators=(",", ":"))


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse (code 101) the first required variable that is missing; a DEL needs no namespace."""
    for name in REQUIRED_ENV:
        # A DEL needs no namespace (the agent may have lost it, e.g. after a reboot).
        if name not in environ and not (name == "CNI_NETNS" and environ.get("CNI_COMMAND") == "DEL"):
            raise mesos_error(f"Unable to find environment variable '{name}'", ERROR_BAD_ARGS)


def read_stdin(stdin: BinaryIO) -> bytes:
    """The configuration on stdin; code 100 when it cannot be read."""
    try:
        return stdin.read()
    except OSError as exc:
        raise mesos_error(str(exc), ERROR_READ_FAILURE) from exc


def mesos_refusal(exc: CNIError, stdout: BinaryIO) -> int:
    """Print ``exc`` as Mesos's error object (a code outside 100-104 becomes 103); the exit status, 1."""
    code = exc.code if 100 <= exc.code <= 104 else ERROR_PORTMAP_FAILURE
    stdout.write((error_text(mesos_error(exc.msg, code)) + "\n").encode())
    stdout.flush()
    return 1
