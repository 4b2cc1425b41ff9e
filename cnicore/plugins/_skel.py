"""The exec protocol: run a plugin the way the reference plugin skeleton does.

A runtime executes a plugin binary with ``CNI_*`` variables and the network
configuration on stdin; the plugin prints a result (or an error object) on
stdout and exits 0 (or 1). :func:`run_plugin` does exactly what the
reference's ``skel.PluginMainFuncs`` does, step for step, so that runtimes see
the same bytes, codes and messages:

1. Read the variables in the fixed order, validating container ID and interface
   name as they come; with no ``CNI_COMMAND`` and an about text, print the about
   text to stderr and exit 0; otherwise missing variables are code 4.
2. VERSION: print ``{"cniVersion":"1.1.0","supportedVersions":[...]}`` and a
   newline, without reading stdin. VERSION requires no variable but
   ``CNI_COMMAND``, so nothing else can refuse it: it is answered first, before
   the JSON codec and the validators are even imported (:func:`version_text`).
3. Any other command: read stdin (code 5 on failure), decode it (code 6
   ``error unmarshall network config: ...``), require a valid ``name`` (code 7).
4. ADD and DEL: the config's ``cniVersion`` must be one the plugin supports
   (code 1 ``incompatible CNI versions``). CHECK, GC and STATUS: the config and
   plugin versions must allow the command (code 1); a plugin without a GC or
   STATUS handler succeeds without doing anything. Unknown commands: code 4.
5. Before the handler, unless ``CNI_NETNS_OVERRIDE`` is set, an ADD or DEL
   whose ``CNI_NETNS`` is the plugin's own namespace is code 8
   (:func:`refuse_own_netns`). The current reference skeleton makes the same
   check with the same message and code, but after the handler ran, when the
   damage (the host's ``lo`` down, the host configured as the container) is
   done and ADD has printed its result before the error; Debian's 1.1.1 build
   does not check at all. We refuse before anything is touched.
6. Errors: a :class:`~cnicore.CNIError` is printed as its CNI error object;
   anything else as code 999 with its text. Exit status 1.

One deliberate deviation is available to plugins that ask for it
(``allow_legacy_nameless``): a configuration with neither ``name`` nor
``cniVersion`` is accepted as the 0.1.0-era plugins accepted it (the Mesos
documentation's loopback example). With any declared version the reference
rule applies.

Error codes at the exec boundary (``reference_codes``). Inside the library an
error carries its spec code: a bad IPAM range is :class:`~cnicore.InvalidConfigError`
(code 7), an unreadable store :class:`~cnicore.IOFailureError` (code 5). The
reference plugins (loopback, bridge, host-local) return plain Go errors for all
of these, which their skeleton prints as code 999. A runtime that compares codes
must see the same on the same input, so with ``reference_codes=True`` an error
raised *by the plugin's handler* with one of the codes the reference never
returns from these handlers (3, 4, 5, 6, 7) is printed as code 999 with the very
same ``msg`` and, like the reference's, no ``details`` (ours name the key path;
in-process callers still get them). Errors the skeleton itself raises (variables,
decoding, name, version checks) keep their codes, as in the reference, and so do
errors a delegated plugin printed (marked with :func:`mark_delegated`): the
reference passes those on as they came. Codes that mean something to a runtime
(1, 2, 11, 50, 51, 100+) are never rewritten. In-process callers of a plugin
see the spec codes.

The skeleton itself speaks to an :class:`ExecHandler`: a name, the supported
versions and one ``handle`` call per command on the decoded environment and
configuration. :func:`run_plugin` runs a :class:`~cnicore.plugins.Plugin` through
an adapter that builds its :class:`~cnicore.plugins.PluginRequest`; an exec
entry point may hand :func:`run_exec` a handler of its own that works on the
decoded configuration directly (the exec'd loopback does, to start without
importing attrs and netaddr; see :mod:`cnicore._plugin_main`).
"""

from __future__ import annotations

import os
import sys

from cnicore._errors import (
    CNIError,
    DecodingError,
    IncompatibleVersionError,
    InternalError,
    InvalidConfigError,
    InvalidNetNSError,
    IOFailureError,
)
from cnicore._gofmt import go_quote, go_quote_list, go_type_name
from cnicore.spec._version import CURRENT_VERSION, check_command_allowed, decode_config_version

# The JSON codec and the environment's validators (which load ``json`` and ``re``) are imported by the
# commands that read stdin or the environment: VERSION needs neither (see run_exec).

# typing, attrs and the request type are left to type checkers: an exec'd plugin starts here,
# and each costs milliseconds to import (the request type loads with the first Plugin run).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, BinaryIO, Protocol

    from cnicore.plugins._api import Plugin
    from cnicore.spec._environ import CNIEnvironment

    class ExecHandler(Protocol):
        """A plugin as the skeleton runs it: named, versioned, one call per command."""

        #: The plugin's type name, shown in the about text.
        name: str
        #: The spec versions it accepts.
        supported_versions: tuple[str, ...]

        def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
                   cni_version: str) -> str | None:
            """Run ``command`` (ADD, DEL, CHECK, GC or STATUS); return the text ADD prints, else None.

            ``config`` is the decoded configuration, ``config_bytes`` the stdin it came
            from, ``cni_version`` its ``cniVersion`` (``""`` when absent). The skeleton
            has already checked the environment, the configuration's name and the
            version rules. Errors are :class:`~cnicore.CNIError`.
            """
            ...

__all__ = ["REFERENCE_INTERNAL_CODES", "about_text", "is_delegated", "mark_delegated", "reference_code",
           "plugin_handler", "refuse_own_netns", "run_exec", "run_plugin"]

_MAX_STDIN = 16 * 1024 * 1024

#: Codes that the reference's loopback, bridge and host-local handlers never return: the
#: same failures are plain Go errors there, printed as 999.
REFERENCE_INTERNAL_CODES = frozenset({3, 4, 5, 6, 7})
_DELEGATED_ATTR = "_cnicore_delegated"


def mark_delegated(exc: CNIError) -> CNIError:
    """Mark ``exc`` as printed by a delegated plugin, so its code is passed on unchanged."""
    setattr(exc, _DELEGATED_ATTR, True)
    return exc


def is_delegated(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it was raised from) came from a delegated plugin."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, _DELEGATED_ATTR, False):
            return True
        seen = seen.__cause__
    return False


def reference_code(exc: CNIError) -> CNIError:
    """The error a reference plugin would print for a handler error ``exc`` (see the module notes)."""
    if exc.code not in REFERENCE_INTERNAL_CODES or is_delegated(exc):
        return exc
    # The reference's plain Go errors have no details: printing ours would make the bytes differ.
    mapped = InternalError(exc.msg)
    mapped.__cause__ = exc
    return mapped


def about_text(plugin: Plugin | ExecHandler, version: str) -> str:
    """What the plugin prints when run with no ``CNI_COMMAND`` (to stderr)."""
    return (f"CNI {plugin.name} plugin {version}\n"
            f"CNI protocol versions supported: {', '.join(plugin.supported_versions)}\n")


def _read_stdin(stdin: BinaryIO) -> bytes:
    try:
        data = stdin.read(_MAX_STDIN + 1)
    except (OSError, ValueError) as exc:
        raise IOFailureError(f"error reading from stdin: {exc}") from exc
    if len(data) > _MAX_STDIN:
        raise IOFailureError(f"error reading from stdin: configuration larger than {_MAX_STDIN} bytes")
    return data


def _validate_config(data: bytes, *, allow_legacy_nameless: bool) -> dict[str, Any]:
    from cnicore._json import decode
    from cnicore.spec._validate import validate_network_name

    try:
        config = decode(data, what="network config")
    except DecodingError as exc:
        raise DecodingError(f"error unmarshall network config: {exc.msg}") from exc
    if config is None:
        # Go decodes a null document into a struct as nothing at all: no name (and no legacy loopback config).
        raise InvalidConfigError("missing network name")
    if not isinstance(config, dict):
        raise DecodingError("error unmarshall network config: json: cannot unmarshal "
                            f"{go_type_name(config)} into Go value of type types.NetConf")
    name = config.get("name")
    if name is not None and not isinstance(name, str):
        raise DecodingError("error unmarshall network config: json: cannot unmarshal "
                            f"{go_type_name(name)} into Go struct field NetConf.name of type string",
                            key="name", value=name)
    if not name:
        if allow_legacy_nameless and not config.get("cniVersion"):
            return config
        raise InvalidConfigError("missing network name")
    validate_network_name(name)
    return config


_OWN_NETNS = "/proc/thread-self/ns/net"


def refuse_own_netns(command: str, netns: str, *, override: bool = False) -> None:
    """Raise code 8 when an ADD or DEL names the calling thread's own network namespace as ``CNI_NETNS``.

    The reference skeleton's check, with its message, its code and its
    ``CNI_NETNS_OVERRIDE`` escape (``override``), made *before* the handler runs
    (see the module notes). As there, a path that cannot be examined is left to
    the handler (a DEL of a namespace already gone must succeed). The path is
    examined with ``stat`` alone, so a FIFO or a device named there cannot make
    the check block. Standard library only: the exec path calls it first thing.

    Raises:
        InvalidNetNSError: (code 8) ``plugin's netns and netns from CNI_NETNS should not be the same``,
            or ``get plugin's netns failed`` when the thread's own namespace cannot be examined.
    """
    if override or not netns or command not in ("ADD", "DEL"):
        return
    try:
        theirs = os.stat(netns)
    except (OSError, ValueError):
        return
    try:
        ours = os.stat(_OWN_NETNS)
    except OSError as exc:
        raise InvalidNetNSError("get plugin's netns failed") from exc
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
        raise InvalidNetNSError("plugin's netns and netns from CNI_NETNS should not be the same")


def _handler_errors(call: Callable[[], str | None], reference_codes: bool) -> str | None:
    if not reference_codes:
        return call()
    try:
        return call()
    except CNIError as exc:
        mapped = reference_code(exc)
        if mapped is exc:
            raise
        raise mapped from exc


class _PluginHandler:
    """A :class:`~cnicore.plugins.Plugin` behind the exec protocol: each command becomes a request."""

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        self.name = plugin.name
        self.supported_versions = plugin.supported_versions

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        from cnicore.plugins._api import PluginRequest

        request = PluginRequest.from_environment(env, config, config_bytes, cni_version)
        if command == "ADD":
            return self.plugin.add(request).as_version(request.cni_version).to_json()
        if command == "DEL":
            self.plugin.delete(request)
            return None
        # CHECK is mandatory for a plugin; GC and STATUS are optional (a missing handler is a no-op).
        handler: Callable[[PluginRequest], None] | None = (
            self.plugin.check if command == "CHECK" else getattr(self.plugin, command.lower(), None))
        if handler is not None:
            handler(request)
        return None


def plugin_handler(plugin: Plugin) -> ExecHandler:
    """``plugin`` behind the exec protocol: each command becomes a :class:`~cnicore.plugins.PluginRequest`.

    The handler keeps the plugin as ``plugin``.
    """
    return _PluginHandler(plugin)


def check_versions(command: str, version: str, supported: Sequence[str]) -> None:
    """The skeleton's version gate: ADD and DEL need the configuration's version among ``supported``;
    CHECK, GC and STATUS need a version that allows the command (:func:`check_command_allowed`).

    Raises:
        IncompatibleVersionError: (code 1) as the reference's skeleton words it.
    """
    if command in ("ADD", "DEL"):
        if version not in supported:
            raise IncompatibleVersionError(
                "incompatible CNI versions",
                f"config is {go_quote(version)}, plugin supports {go_quote_list(supported)}")
    else:
        check_command_allowed(command, version, supported)


def version_text(supported: Sequence[str]) -> str:
    """What VERSION prints: ``{"cniVersion":"1.1.0","supportedVersions":[...]}`` and a newline.

    Compact JSON as Go's encoder writes it. Written without the JSON codec, so that
    VERSION loads no ``json``: version strings are digits and dots, which JSON
    writes as they are (anything else goes through the codec).
    """
    if all(version.replace(".", "").isdigit() for version in supported):
        listed = ",".join(f'"{version}"' for version in supported)
        return f'{{"cniVersion":"{CURRENT_VERSION}","supportedVersions":[{listed}]}}\n'
    from cnicore._json import marshal

    return marshal({"cniVersion": CURRENT_VERSION, "supportedVersions": list(supported)}) + "\n"


def _dispatch(handler: ExecHandler, env: CNIEnvironment, stdin: BinaryIO, out: Callable[[str], None], *,
              allow_legacy_nameless: bool, reference_codes: bool = False) -> None:
    from cnicore.spec._environ import check_known_command

    data = _read_stdin(stdin)
    config = _validate_config(data, allow_legacy_nameless=allow_legacy_nameless)
    check_known_command(env)
    declared = config.get("cniVersion")
    version = decode_config_version(config)
    cni_version = declared if isinstance(declared, str) else ""
    check_versions(env.command, version, handler.supported_versions)
    refuse_own_netns(env.command, env.netns, override=env.netns_override)
    text = _handler_errors(lambda: handler.handle(env.command, env, config, data, cni_version), reference_codes)
    if text is not None:
        out(text)


def run_plugin(
    plugin: Plugin,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    version: str = "",
    allow_legacy_nameless: bool = False,
    reference_codes: bool = False,
) -> int:
    """Run ``plugin`` as an exec'd CNI plugin; return the process exit status.

    Args:
        plugin: the plugin to run.
        environ: the ``CNI_*`` variables (default ``os.environ``).
        stdin, stdout, stderr: binary streams (default the process's).
        version: the build version shown in the about text.
        allow_legacy_nameless: accept a configuration with neither ``name`` nor
            ``cniVersion`` (see the module docstring).
        reference_codes: print handler errors with the reference's codes (see the
            module docstring).

    Returns:
        0 on success; 1 after printing an error object on stdout.
    """
    return run_exec(_PluginHandler(plugin), environ=environ, stdin=stdin, stdout=stdout, stderr=stderr,
                    version=version, allow_legacy_nameless=allow_legacy_nameless, reference_codes=reference_codes)


def run_exec(
    handler: ExecHandler,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    version: str = "",
    allow_legacy_nameless: bool = False,
    reference_codes: bool = False,
) -> int:
    """Run an :class:`ExecHandler` as an exec'd CNI plugin (as :func:`run_plugin` runs a plugin)."""
    environ = os.environ if environ is None else environ
    stdin = sys.stdin.buffer if stdin is None else stdin
    stdout = sys.stdout.buffer if stdout is None else stdout
    stderr = sys.stderr.buffer if stderr is None else stderr

    def out(text: str) -> None:
        stdout.write(text.encode("utf-8"))
        stdout.flush()

    try:
        if environ.get("CNI_COMMAND", "") == "VERSION":
            # The skeleton's environment table requires nothing but CNI_COMMAND for VERSION, so nothing
            # else can refuse it (parse_environment would pass): answer before loading the validators.
            out(version_text(handler.supported_versions))
            return 0
        from cnicore.spec._environ import missing_environment_variables, parse_environment

        if environ.get("CNI_COMMAND", "") == "" and "CNI_COMMAND" in missing_environment_variables(environ):
            stderr.write(about_text(handler, version or "version unknown").encode())
            stderr.flush()
            return 0
        env = parse_environment(environ)
        _dispatch(handler, env, stdin, out, allow_legacy_nameless=allow_legacy_nameless,
                  reference_codes=reference_codes)
        return 0
    except CNIError as exc:
        out(exc.to_json())
        return 1
    except Exception as exc:  # a plugin bug must still answer with an error object, as the reference does
        out(InternalError(str(exc) or type(exc).__name__).to_json())
        return 1
