"""Executing a plugin binary with the exec protocol, and reading its answer as libcni's ``invoke`` does.

Shared by the runtime (which executes every plugin it does not run in process)
and by the bridge plugin's IPAM delegation. Only the calling side of the
protocol is here; the plugin side is :mod:`cnicore.plugins._skel`.

* The environment is the caller's base environment with the six ``CNI_*``
  variables always set (possibly empty), as libcni's ``invoke.Args`` builds it.
* The plugin runs in a session of its own, so that on timeout the whole process
  group (a shell script plugin and whatever it started) is killed, not just the
  first process; a plugin that does not answer within the timeout is
  :class:`~cnicore.TryAgainLaterError` (code 11), because retrying later is what
  the caller can do about it.
* ``text file busy`` (a binary being written while executed) is retried a few
  times, as libcni does.
* A failed plugin's answer is read as the reference runtime reads it: its error
  object on stdout becomes the matching cnicore error with the same code,
  message and details; an empty stdout gives ``netplugin failed with no error
  message: exit status N`` or ``netplugin failed: "<stderr>"``; an unparsable
  one ``netplugin failed but error parsing its diagnostic message "<stdout>": <why>``.

``subprocess`` is imported only when a plugin is actually executed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence

from cnicore._errors import (
    CNIError,
    DecodingError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
    TryAgainLaterError,
    error_from_object,
)
from cnicore._gofmt import go_quote
from cnicore._json import decode

__all__ = ["CNI_VARIABLES", "exec_environment", "exec_plugin", "exit_text", "plugin_failure"]

#: The variables a runtime always sets for a plugin (libcni's ``invoke.Args``).
CNI_VARIABLES = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")

_TEXT_BUSY_ATTEMPTS = 6
_TEXT_BUSY_PAUSE = 0.2


def exec_environment(base: Mapping[str, str], *, command: str, container_id: str = "", netns: str = "",
                     ifname: str = "", args: str = "", path: Sequence[str] = ()) -> dict[str, str]:
    """``base`` with the six ``CNI_*`` variables set (empty ones included), ``CNI_PATH`` joined with ``:``."""
    env = {k: v for k, v in base.items() if k not in CNI_VARIABLES}
    env.update({
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_ARGS": args,
        "CNI_PATH": ":".join(path),
    })
    return env


def exit_text(returncode: int) -> str:
    """Go's ``*exec.ExitError`` text for a return code (``exit status 1``, ``signal: 9``)."""
    return f"signal: {-returncode}" if returncode < 0 else f"exit status {returncode}"


def plugin_failure(returncode: int, stdout: bytes, stderr: bytes,
                   mark: Callable[[CNIError], CNIError] | None = None) -> CNIError:
    """The error a failed plugin reported, read as the reference runtime reads it.

    Args:
        returncode: the plugin's exit status (negative: killed by that signal).
        stdout, stderr: what it printed.
        mark: applied to an error decoded from the plugin's error object (the
            delegation marks those so the exec boundary passes their code on).
    """
    if not stdout.strip():
        if not stderr.strip():
            return InternalError(f"netplugin failed with no error message: {exit_text(returncode)}")
        return InternalError(f"netplugin failed: {go_quote(stderr.decode('utf-8', 'replace'))}")
    try:
        obj = decode(stdout, what="error object")
        if not isinstance(obj, dict):
            raise DecodingError("not a JSON object")
        error = error_from_object(obj)
    except DecodingError as exc:
        text = stdout.decode("utf-8", "replace")
        return InternalError(f"netplugin failed but error parsing its diagnostic message {go_quote(text)}: "
                             f"{exc.msg}")
    return mark(error) if mark is not None else error


def _kill_group(process: object) -> None:
    pid = getattr(process, "pid", None)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def exec_plugin(path: str, stdin: bytes, env: Mapping[str, str], *, timeout: float, label: str = "plugin",
                command: str = "", mark: Callable[[CNIError], CNIError] | None = None) -> bytes:
    """Run the plugin binary ``path`` with ``stdin`` and ``env``; return its stdout on success.

    Args:
        path: the binary (found on the plugin path by the caller).
        stdin: the configuration bytes.
        env: the complete environment (see :func:`exec_environment`).
        timeout: seconds before the plugin's process group is killed.
        label: how the plugin is named in messages (``plugin``, ``IPAM plugin``).
        command: the CNI command, for messages (defaults to ``CNI_COMMAND`` of ``env``).
        mark: see :func:`plugin_failure`.

    Raises:
        TryAgainLaterError: (code 11) the plugin did not answer within ``timeout``.
        NotFoundError: the binary vanished; PermissionDeniedError: it is not executable.
        CNIError: what the plugin reported (see :func:`plugin_failure`).
    """
    import subprocess  # only callers that really execute something pay for it

    what = command or env.get("CNI_COMMAND", "")
    for attempt in range(_TEXT_BUSY_ATTEMPTS):
        try:
            process = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=dict(env), start_new_session=True,
                                       close_fds=True)
            break
        except FileNotFoundError as exc:
            raise NotFoundError(f"failed to find plugin {go_quote(os.path.basename(path))}: {exc.strerror}",
                                path) from exc
        except PermissionError as exc:
            raise PermissionDeniedError(f"failed to execute {label} {go_quote(path)}: {exc.strerror}") from exc
        except OSError as exc:
            if exc.errno == errno.ETXTBSY and attempt + 1 < _TEXT_BUSY_ATTEMPTS:
                time.sleep(_TEXT_BUSY_PAUSE)
                continue
            raise InternalError(f"failed to execute {label} {go_quote(path)}: {exc.strerror or exc}") from exc
    with process:  # the pipes are closed however this ends
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(process)
            try:
                process.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                # Something escaped the process group and holds the pipes: stop waiting for it.
                process.kill()
                process.wait()
            raise TryAgainLaterError(f"{label} {go_quote(path)} did not answer {what} within {timeout:g} s",
                                     "it was killed; the operation may be retried") from exc
        except BaseException:
            # Interrupted (KeyboardInterrupt, a signal): never leave the plugin running behind our back.
            _kill_group(process)
            process.wait()
            raise
    if process.returncode == 0:
        return stdout
    raise plugin_failure(process.returncode, stdout, stderr, mark)
