"""The ``cnicore`` command line: a runtime's view of CNI networks, compatible with ``cnitool``.

Subcommands::

    cnicore add|del|check NETWORK NETNS [--container-id ID] [--ifname IF] [--args 'K=V;K2=V2']
                                        [--capability-args JSON] [--result-version V]
    cnicore gc [--live ID[/IFNAME] ... | --none-live] [--network NAME ...]
    cnicore status NETWORK
    cnicore validate PATH...
    cnicore ls NETWORK
    cnicore demo [--backend auto|real|fake] [--on-host]
    cnicore install-plugins DIR

``add``/``del``/``check``/``gc``/``status`` go through :class:`cnicore.runtime.Runtime`:
the network is looked up in the configuration directory as libcni does, the plugins
are found on the plugin path, and the result cache is the one libcni and cnitool
keep (``<cache dir>/results/<network>-<container>-<ifname>``). As in cnitool, the
container ID defaults to ``cnitool-`` and the hex of the first 10 bytes of the
SHA-512 of the absolute namespace path, so the cache entries of the two tools
match; the interface is ``--ifname``, else ``CNI_IFNAME``, else ``eth0`` (for
``del``/``check``: else every interface the cache records for the container on
that network, else ``eth0``); ``CNI_ARGS`` is used when ``--args`` is absent and
``CAP_ARGS`` (a JSON object) when ``--capability-args`` is absent. ``gc`` detaches
the cached attachments not listed with ``--live`` (all of them with
``--none-live``, as ``cnitool gc`` does; none without either), then runs the
plugins' GC.

``validate`` checks configuration files without running anything and reports every
error found; ``ls`` lists the reservations of a network's host-local store without
changing anything.

Global options, accepted before or after the subcommand, each also read from the
environment (the option wins):

============== ==================== =================
option         variable             default
============== ==================== =================
--conf-dir     ``NETCONFPATH``      /etc/cni/net.d
--plugin-path  ``CNI_PATH``         /opt/cni/bin (colon separated)
--cache-dir    ``CNICORE_CACHE_DIR`` /var/lib/cni
--backend      ``CNICORE_BACKEND``  auto (auto, netlink, iproute2, fake)
--timeout      ``CNICORE_TIMEOUT``  60 seconds per plugin
--json         (none)               human-readable output
============== ==================== =================

With ``--backend fake`` nothing touches the kernel: the links live in the in-memory
fake, persisted in the file ``CNICORE_FAKE_STATE`` names (as for the exec'd plugins)
or else forgotten when the command ends; a namespace path the fake does not know
is created in it for ``add`` and ``check``. Addresses are still reserved in the
configured host-local store.

Exit status: 0 success; 1 the input was wrong (a CNI error of the input family:
codes 1, 2, 3, 4, 6, 7, 8); 2 the command line could not be parsed; 3 the system
failed (codes 5, 11, 50, 51, 999 and plugin-specific codes). Errors go to stderr as
``cnicore: <message>``, or with ``--json`` to stdout as the CNI error object a
plugin prints.

Each subcommand is a function taking the parsed arguments and returning the exit
status; more are added by registering a parser and a handler in :data:`_COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import posixpath
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Final, TypeAlias

from cnicore._errors import (
    CNIError,
    DecodingError,
    InvalidConfigError,
    InvalidEnvironmentError,
    InvalidInputError,
    IOFailureError,
    NotFoundError,
    error_from_object,
)

if TYPE_CHECKING:
    from cnicore.config import NetworkConfigList
    from cnicore.ipam import IPAMConfig
    from cnicore.runtime import Runtime
    from cnicore.spec import AnyResult, Interface, Interface040

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CONF_DIR",
    "DEFAULT_PLUGIN_PATH",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_SYSTEM",
    "EXIT_USAGE",
    "build_parser",
    "cnitool_container_id",
    "describe_result",
    "exit_status",
    "main",
]

#: Where network configurations are looked up (``NETCONFPATH``).
DEFAULT_CONF_DIR: Final = "/etc/cni/net.d"
#: Where plugins are looked up (``CNI_PATH``).
DEFAULT_PLUGIN_PATH: Final = "/opt/cni/bin"
#: Where the result cache lives (``<dir>/results``), as libcni's default.
DEFAULT_CACHE_DIR: Final = "/var/lib/cni"
DEFAULT_TIMEOUT: Final = 60.0

EXIT_OK: Final = 0
EXIT_INPUT: Final = 1
EXIT_USAGE: Final = 2
EXIT_SYSTEM: Final = 3

_BACKENDS = ("auto", "netlink", "iproute2", "fake")
_FAKE_STATE_ENV = "CNICORE_FAKE_STATE"
# ls: how long to wait for a shared hold of the store's lock to re-read files that looked mid-write.
_LS_LOCK_WAIT = 1.0
_sleep = time.sleep  # how ls waits for the lock (a seam for the tests)

_EXIT_CODES_TEXT = """\
exit status:
  0  success
  1  the input was wrong (CNI error codes 1, 2, 3, 4, 6, 7, 8)
  2  the command line could not be parsed
  3  the system failed (CNI error codes 5, 11, 50, 51, 999, plugin-specific codes)

Errors are printed to stderr as "cnicore: <message>", or with --json to stdout as
the CNI error object a plugin prints."""

_ENV_TEXT = """\
environment (an option wins over its variable):
  NETCONFPATH        --conf-dir (default /etc/cni/net.d)
  CNI_PATH           --plugin-path, colon separated (default /opt/cni/bin)
  CNICORE_CACHE_DIR  --cache-dir (default /var/lib/cni)
  CNICORE_BACKEND    --backend (default auto)
  CNICORE_TIMEOUT    --timeout (default 60)
  CNI_IFNAME         the interface when --ifname is absent (else eth0)
  CNI_ARGS           the CNI_ARGS when --args is absent
  CAP_ARGS           the capability arguments (JSON) when --capability-args is absent"""

_Handler = Callable[[argparse.Namespace], int]
_SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class _Output:
    """Where a command writes: stdout for results, stderr for human error messages."""

    def __init__(self, as_json: bool, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.json = as_json
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def document(self, value: Any) -> None:
        from cnicore._json import marshal_indent

        self.out.write(marshal_indent(value) + "\n")

    def error(self, exc: CNIError) -> None:
        if self.json:
            self.out.write(exc.to_json() + "\n")
        else:
            self.err.write(f"cnicore: {exc}\n")


def _is_input_error(exc: CNIError) -> bool:
    # An error built with only a code (a plugin's error object) falls in the family of that code.
    return exc.is_input_error or (type(exc) is CNIError and error_from_object({"code": exc.code}).is_input_error)


def exit_status(exc: CNIError) -> int:
    """The exit status for an error: :data:`EXIT_INPUT` or :data:`EXIT_SYSTEM`."""
    return EXIT_INPUT if _is_input_error(exc) else EXIT_SYSTEM


# ------------------------------------------------------------------------------------------------
# Settings: options, then environment, then defaults
# ------------------------------------------------------------------------------------------------


class _Settings:
    """The global options after the environment and the defaults were applied."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.conf_dir: str = args.conf_dir or environ.get("NETCONFPATH") or DEFAULT_CONF_DIR
        path_text = args.plugin_path if args.plugin_path is not None else environ.get("CNI_PATH")
        self.plugin_path = [p for p in (path_text or DEFAULT_PLUGIN_PATH).split(":") if p]
        self.cache_dir: str = args.cache_dir or environ.get("CNICORE_CACHE_DIR") or DEFAULT_CACHE_DIR
        backend = args.backend or environ.get("CNICORE_BACKEND", "").strip().lower() or "auto"
        if backend not in _BACKENDS:
            raise InvalidEnvironmentError(f"unknown link backend CNICORE_BACKEND={backend} (expected one of "
                                          f"{', '.join(_BACKENDS)})", key="CNICORE_BACKEND", value=backend)
        self.backend: str = backend
        timeout = args.timeout
        if timeout is None and environ.get("CNICORE_TIMEOUT"):
            text = environ["CNICORE_TIMEOUT"]
            try:
                timeout = _positive_float(text)
            except argparse.ArgumentTypeError as exc:
                raise InvalidEnvironmentError(f"invalid CNICORE_TIMEOUT={text}: {exc}", key="CNICORE_TIMEOUT",
                                              value=text) from exc
        self.timeout: float = DEFAULT_TIMEOUT if timeout is None else timeout
        self.json: bool = bool(args.json)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _go_abs(path: str) -> str:
    """Go's ``filepath.Abs``: joined with the working directory and cleaned (symlinks are kept)."""
    joined = posixpath.normpath(path if posixpath.isabs(path) else posixpath.join(os.getcwd(), path))
    if joined.startswith("//"):
        joined = "/" + joined.lstrip("/")  # Go's Clean collapses the leading "//" normpath keeps
    return joined


def cnitool_container_id(netns: str) -> str:
    """The container ID cnitool derives from a namespace path: ``cnitool-`` + hex of SHA-512[:10].

    The path is made absolute first (relative to the working directory), as cnitool does.
    """
    digest = hashlib.sha512(_go_abs(netns).encode("utf-8", "surrogateescape")).digest()
    return "cnitool-" + digest[:10].hex()


def _parse_args_text(text: str, source: str) -> tuple[tuple[str, str], ...]:
    """``K=V;K2=V2`` as cnitool reads it: each pair exactly one ``=`` and a non-empty key and value."""
    if text == "":
        return ()
    pairs = []
    for pair in text.split(";"):
        key, sep, value = pair.partition("=")
        if not sep or not key or not value or "=" in value:
            raise InvalidEnvironmentError(f'invalid {source} pair "{pair}" (expected KEY=VALUE pairs separated '
                                          'by ";")', key=source, value=text)
        pairs.append((key, value))
    return tuple(pairs)


def _parse_capability_args(text: str, source: str) -> dict[str, Any]:
    from cnicore._json import decode

    try:
        value = decode(text, what=source)
    except DecodingError as exc:
        raise DecodingError(f"invalid {source}: {exc.msg}", key=source, value=text) from exc
    if not isinstance(value, dict):
        raise DecodingError(f"invalid {source}: expected a JSON object of capability name to value",
                            key=source, value=text)
    return value


# ------------------------------------------------------------------------------------------------
# The runtime and its backends
# ------------------------------------------------------------------------------------------------


def _backends_module() -> Any:
    from cnicore._plugin_main import _backends

    return _backends()


@contextlib.contextmanager
def _runtime(settings: _Settings, *, netns: str | None = None, create_netns: bool = False) -> Iterator[Runtime]:
    """A :class:`~cnicore.runtime.Runtime` for the settings, with the chosen backend (and fake state)."""
    from cnicore.runtime import Runtime

    environ = dict(settings.environ)
    environ["CNICORE_BACKEND"] = settings.backend
    with contextlib.ExitStack() as stack:
        if settings.backend == "fake":
            fake_state = environ.pop(_FAKE_STATE_ENV, "")
            if fake_state:
                from cnicore._plugin_main import FakeState

                state = stack.enter_context(FakeState(fake_state))
                backend, firewall = state.backend, state.firewall
            else:
                module = _backends_module()
                backend, firewall = module.FakeLinkBackend(), module.FakeFirewall()
            if create_netns and netns and netns not in backend.namespaces():
                backend.add_namespace(netns)
        else:
            backend = _backends_module().select_backend(settings.backend)
            firewall = None  # the runtime's default: the one the exec'd plugins use
        yield stack.enter_context(Runtime(config_dir=settings.conf_dir, plugin_path=settings.plugin_path,
                                          cache_dir=settings.cache_dir, backend=backend, firewall=firewall,
                                          timeout=settings.timeout, environ=environ))


@contextlib.contextmanager
def _network_named(runtime: Runtime, name: str) -> Iterator[None]:
    """Report a network name the configuration directory does not know as the caller's input error.

    The runtime calls a missing network "not found" (a system failure for a
    library caller holding a name it read somewhere); on the command line the
    name was typed by the user, as ``libcni`` and the configuration engine see it (code 7).
    """
    try:
        yield
    except NotFoundError as exc:
        try:
            runtime.network(name)
        except NotFoundError as lookup:
            if lookup.msg == exc.msg:
                raise InvalidConfigError(exc.msg, exc.details, key="NETWORK", value=name) from exc
        except CNIError:
            pass
        raise


# ------------------------------------------------------------------------------------------------
# add / del / check
# ------------------------------------------------------------------------------------------------


class _Attachment:
    """What add/del/check act on, after cnitool's defaults."""

    def __init__(self, args: argparse.Namespace, settings: _Settings) -> None:
        environ = settings.environ
        self.network: str = args.network
        self.netns: str = args.netns
        self.netns_abs = _go_abs(args.netns) if args.netns else ""
        self.container_id: str = args.container_id or cnitool_container_id(args.netns)
        self.ifname: str | None = args.ifname or environ.get("CNI_IFNAME") or None
        if args.args is not None:
            self.cni_args = _parse_args_text(args.args, "--args")
        else:
            self.cni_args = _parse_args_text(environ.get("CNI_ARGS", ""), "CNI_ARGS")
        if args.capability_args is not None:
            self.capability_args: dict[str, Any] | None = _parse_capability_args(args.capability_args,
                                                                                 "--capability-args")
        elif environ.get("CAP_ARGS"):
            self.capability_args = _parse_capability_args(environ["CAP_ARGS"], "CAP_ARGS")
        else:
            self.capability_args = None

    def ifnames(self, runtime: Runtime) -> list[str]:
        """``--ifname``/``CNI_IFNAME``, else every interface the cache records for this container on this
        network, else ``eth0`` (cnitool's default)."""
        if self.ifname:
            return [self.ifname]
        cached = sorted({a.ifname for a in runtime.attachments(container_id=self.container_id,
                                                                network=self.network)})
        return cached or ["eth0"]


def _add(args: argparse.Namespace) -> int:
    settings, out = args.settings, args.output
    target = _Attachment(args, settings)
    ifname = target.ifname or "eth0"
    with _runtime(settings, netns=target.netns_abs, create_netns=True) as runtime, \
            _network_named(runtime, target.network):
        result = runtime.attach(target.container_id, target.network, target.netns_abs, ifname,
                                args=target.cni_args, capability_args=target.capability_args,
                                result_version=args.result_version)
    if out.json:
        out.line(result.to_json())
    else:
        out.line(f"network {target.network}: attached container {target.container_id} interface {ifname} in "
                 f"{target.netns_abs}")
        for line in describe_result(result):
            out.line(line)
    return EXIT_OK


def _del(args: argparse.Namespace) -> int:
    settings, out = args.settings, args.output
    target = _Attachment(args, settings)
    with _runtime(settings, netns=target.netns_abs) as runtime, _network_named(runtime, target.network):
        for ifname in target.ifnames(runtime):
            runtime.detach(target.container_id, target.network, target.netns_abs or None, ifname,
                           args=target.cni_args, capability_args=target.capability_args)
            if not out.json:
                out.line(f"network {target.network}: detached container {target.container_id} interface {ifname}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    settings, out = args.settings, args.output
    target = _Attachment(args, settings)
    with _runtime(settings, netns=target.netns_abs, create_netns=True) as runtime, \
            _network_named(runtime, target.network):
        for ifname in target.ifnames(runtime):
            runtime.check(target.container_id, target.network, target.netns_abs, ifname,
                          args=target.cni_args, capability_args=target.capability_args)
            if not out.json:
                out.line(f"network {target.network}: container {target.container_id} interface {ifname} is as "
                         "configured")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# Results for humans
# ------------------------------------------------------------------------------------------------


def describe_result(result: AnyResult) -> list[str]:
    """A result as indented lines for a terminal: interfaces, addresses, routes and DNS."""
    from cnicore.spec import Result020, go_cidr_text, go_ip_text

    lines = [f"cniVersion {result.cni_version}"]
    if isinstance(result, Result020):
        for label, config in (("ip4", result.ip4), ("ip6", result.ip6)):
            if config is None:
                continue
            gateway = f"  gateway {go_ip_text(config.gateway)}" if config.gateway is not None else ""
            lines.append(f"{label}: {go_cidr_text(config.ip)}{gateway}")
            lines.extend(f"  route {_route_text(route)}" for route in config.routes)
    else:
        if result.interfaces:
            lines.append("interfaces:")
            interfaces: Sequence[Interface | Interface040] = result.interfaces
            width = max(len(i.name) for i in interfaces)
            for index, interface in enumerate(interfaces):
                where = f"sandbox {interface.sandbox}" if interface.sandbox else "host"
                mac = f"  mac {interface.mac}" if interface.mac else ""
                mtu = getattr(interface, "mtu", 0)
                extra = f"  mtu {mtu}" if mtu else ""
                lines.append(f"  [{index}] {interface.name:<{width}}{mac}{extra}  {where}")
        if result.ips:
            lines.append("addresses:")
            for ip in result.ips:
                text = f"  {go_cidr_text(ip.address)}"
                if ip.gateway is not None:
                    text += f"  gateway {go_ip_text(ip.gateway)}"
                owner = result.interface_of(ip)  # type: ignore[arg-type]  # each class takes its own ips
                if owner is not None:
                    text += f"  on {owner.name}"
                elif ip.interface is not None:
                    text += f"  on interface [{ip.interface}]"
                lines.append(text)
        if result.routes:
            lines.append("routes:")
            lines.extend(f"  {_route_text(route)}" for route in result.routes)
    dns = result.dns
    if not dns.is_empty:
        lines.append("dns:")
        if dns.nameservers:
            lines.append(f"  nameservers {' '.join(dns.nameservers)}")
        if dns.domain:
            lines.append(f"  domain {dns.domain}")
        if dns.search:
            lines.append(f"  search {' '.join(dns.search)}")
        if dns.options:
            lines.append(f"  options {' '.join(dns.options)}")
    return lines


def _route_text(route: Any) -> str:
    from cnicore.spec import go_cidr_text, go_ip_text

    text = go_cidr_text(route.dst)
    if route.gw is not None:
        text += f" via {go_ip_text(route.gw)}"
    for name in ("mtu", "advmss", "priority"):
        if getattr(route, name):
            text += f" {name} {getattr(route, name)}"
    for name in ("table", "scope"):
        if getattr(route, name) is not None:
            text += f" {name} {getattr(route, name)}"
    return text


# ------------------------------------------------------------------------------------------------
# gc / status
# ------------------------------------------------------------------------------------------------


def _live_attachment(text: str) -> str | tuple[str, str]:
    container, sep, ifname = text.partition("/")
    if not container or (sep and not ifname):
        raise argparse.ArgumentTypeError(f"expected CONTAINER or CONTAINER/IFNAME, not {text!r}")
    return (container, ifname) if sep else container


def _gc(args: argparse.Namespace) -> int:
    settings, out = args.settings, args.output
    if args.none_live and args.live:
        raise InvalidInputError("--none-live and --live exclude each other", key="--none-live", value=True)
    live = [] if args.none_live else args.live  # None: detach nothing, the plugins' GC still runs
    with _runtime(settings) as runtime:
        report = runtime.gc(live, networks=args.network or None)
    if out.json:
        out.document({
            "removed": [{"network": a.network, "containerId": a.container_id, "ifName": a.ifname,
                         "netns": a.netns} for a in report.removed],
            "errors": [error.to_object() for error in report.errors],
        })
    else:
        for attachment in report.removed:
            out.line(f"removed: network {attachment.network} container {attachment.container_id} interface "
                     f"{attachment.ifname}")
        for error in report.errors:
            out.err.write(f"cnicore: gc: {error}\n")
        out.line(f"{len(report.removed)} stale attachment(s) removed, {len(report.errors)} error(s)")
    if not report.errors:
        return EXIT_OK
    return max(exit_status(error) for error in report.errors)


def _status(args: argparse.Namespace) -> int:
    settings, out = args.settings, args.output
    with _runtime(settings) as runtime, _network_named(runtime, args.network):
        runtime.status(args.network)
    if not out.json:
        out.line(f"network {args.network}: ready")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# validate
# ------------------------------------------------------------------------------------------------


class _Finding:
    """One problem in one file."""

    def __init__(self, file: str, exc: CNIError, key_prefix: str = "") -> None:
        self.file = file
        self.code = exc.code
        self.message = exc.msg
        self.key = (key_prefix + exc.key) if exc.key else None
        self.value = exc.value
        self.has_value = exc.has_value
        self.input_error = _is_input_error(exc)

    def text(self) -> str:
        where = f"{self.key}: " if self.key else ""
        return f"{self.file}: {where}{self.message} (CNI code {self.code})"

    def to_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"file": self.file, "key": self.key, "message": self.message, "code": self.code}
        if self.has_value:
            obj["value"] = self.value
        return obj


def _config_files(path: str) -> list[str] | CNIError:
    from cnicore.config import CONFIG_EXTENSIONS, conf_files

    if os.path.isdir(path):
        try:
            files = conf_files(path, CONFIG_EXTENSIONS)
        except CNIError as exc:
            return exc
        if not files:
            return InvalidConfigError(f"no {', '.join(CONFIG_EXTENSIONS)} files in directory {path}", key=None)
        return files
    if not os.path.lexists(path):
        return InvalidInputError(f"no such file or directory: {path}")
    return [path]


def _plugin_documents(file: str, network: NetworkConfigList | None) -> list[tuple[str, dict[str, Any]]]:
    """(key prefix, the plugin's configuration as the plugin would receive it) for each plugin of a file.

    From the loaded network when the configuration engine accepted the file;
    otherwise from the raw JSON, so that a file with a list-level error still has
    its plugins checked.
    """
    import json

    from cnicore._json import decode
    from cnicore.config import build_request

    listed = file.endswith(".conflist")
    if network is not None:
        documents = []
        for index in range(len(network.plugins)):
            document = json.loads(build_request(network, index))
            documents.append((f"plugins[{index}]." if listed else "", document))
        return documents
    from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular

    try:
        raw = decode(read_regular(file, MAX_DOCUMENT_BYTES), what="network config")
    except (OSError, CNIError):
        return []
    if not isinstance(raw, dict):
        return []
    if not listed:
        return [("", raw)]
    plugins = raw.get("plugins")
    if not isinstance(plugins, list):
        return []
    found = []
    for index, plugin in enumerate(plugins):
        if isinstance(plugin, dict):
            document = dict(plugin)
            for key in ("name", "cniVersion"):
                if isinstance(raw.get(key), str):
                    document[key] = raw[key]
            found.append((f"plugins[{index}].", document))
    return found


def _plugin_checks(file: str, documents: list[tuple[str, dict[str, Any]]]) -> list[_Finding]:
    from cnicore.ipam import load_ipam_config
    from cnicore.plugins import load_bridge_config

    findings = []
    for prefix, document in documents:
        ipam = document.get("ipam")
        if isinstance(ipam, dict) and ipam.get("type") == "host-local":
            try:
                load_ipam_config(document)
            except CNIError as exc:
                findings.append(_Finding(file, exc, prefix))
        if document.get("type") == "bridge":
            try:
                load_bridge_config(document)
            except CNIError as exc:
                findings.append(_Finding(file, exc, prefix))
    return findings


def _validate_file(file: str) -> tuple[NetworkConfigList | None, list[_Finding]]:
    from cnicore.config import conf_list_from_conf, load_network_config_list, load_plugin_config

    findings: list[_Finding] = []
    network = None
    try:
        if file.endswith(".conflist"):
            network = load_network_config_list(file)
        else:
            network = conf_list_from_conf(load_plugin_config(file))
    except CNIError as exc:
        findings.append(_Finding(file, exc))
    seen = {finding.key for finding in findings}
    for finding in _plugin_checks(file, _plugin_documents(file, network)):
        if finding.key is None or finding.key not in seen:  # the engine already said it
            findings.append(finding)
    return network, findings


def _validate(args: argparse.Namespace) -> int:
    from cnicore.config import find_duplicate_networks

    out: _Output = args.output
    findings: list[_Finding] = []
    networks: list[NetworkConfigList] = []
    checked: list[tuple[str, NetworkConfigList | None, list[_Finding]]] = []
    for path in args.paths:
        files = _config_files(path)
        if isinstance(files, CNIError):
            finding = _Finding(path, files)
            findings.append(finding)
            checked.append((path, None, [finding]))
            continue
        for file in files:
            network, found = _validate_file(file)
            findings += found
            checked.append((file, network, found))
            if network is not None:
                networks.append(network)
    by_file = {file: found for file, _, found in checked}
    for duplicate in find_duplicate_networks(networks):
        exc = InvalidConfigError(f'duplicate network name "{duplicate.name}": also defined in {duplicate.first}',
                                 key="name", value=duplicate.name)
        finding = _Finding(duplicate.second or "", exc)
        findings.append(finding)
        by_file.setdefault(duplicate.second or "", []).append(finding)
    if out.json:
        out.document([finding.to_object() for finding in findings])
    else:
        for file, network, _ in checked:
            found = by_file.get(file, [])
            if not found and network is not None:
                plugins = ", ".join(p.type for p in network.plugins)
                out.line(f"{file}: ok (network {network.name}, cniVersion {network.cni_version or '(none)'}, "
                         f"plugins: {plugins})")
            for finding in found:
                out.line(finding.text())
        valid = sum(1 for file, network, _ in checked if network is not None and not by_file.get(file))
        out.line(f"{len(checked)} file(s) checked: {valid} valid, {len(findings)} error(s)")
    if not findings:
        return EXIT_OK
    return EXIT_INPUT if all(f.input_error for f in findings) else EXIT_SYSTEM


# ------------------------------------------------------------------------------------------------
# ls
# ------------------------------------------------------------------------------------------------


class _Listed:
    """One reservation as ``ls`` shows it."""

    def __init__(self, ip: Any, owner: Any, range_set: int | None, mtime: float | None, store: str,
                 location: str) -> None:
        self.ip = ip
        self.owner = owner
        self.range_set = range_set
        self.mtime = mtime
        self.store = store
        self.location = location


def _ipam_configs(network: NetworkConfigList) -> list[IPAMConfig]:
    """The host-local configuration of each plugin using it, one per distinct store."""
    from cnicore.config import build_request
    from cnicore.ipam import load_ipam_config

    configs: list[IPAMConfig] = []
    seen: set[Any] = set()
    for index, plugin in enumerate(network.plugins):
        if plugin.ipam_type != "host-local":
            continue
        try:
            config = load_ipam_config(build_request(network, index))
        except CNIError as exc:
            raise _with_key_prefix(exc, f"plugins[{index}].") from exc
        identity = ("etcd", config.store) if config.store is not None else ("file", config.data_dir)
        if identity not in seen:
            seen.add(identity)
            configs.append(config)
    if not configs:
        raise InvalidConfigError(f"network {network.name} has no plugin with host-local IPAM", key="plugins",
                                 value=[p.type for p in network.plugins])
    return configs


def _with_key_prefix(exc: CNIError, prefix: str) -> CNIError:
    """The same error with its key path under ``prefix`` (and the details saying so)."""
    if not exc.key:
        return exc
    extra: dict[str, Any] = {"value": exc.value} if exc.has_value else {}
    return type(exc)(exc.msg, code=exc.code, key=prefix + exc.key, **extra)


def _range_set_of(config: IPAMConfig, ip: Any) -> int | None:
    return next((index for index, range_set in enumerate(config.range_sets) if range_set.contains(ip)), None)


def _read_reservation(dir_fd: int, name: str) -> tuple[Any, float | None, bool]:
    """(owner or None, mtime, whether the file is regular) of one reservation file, never following links."""
    from cnicore.stores import owner_from_text
    from cnicore.stores._keyindex import MAX_OWNER_BYTES

    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise  # released since the directory was listed: the caller skips it
    except OSError:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return None, None, False
        return None, st.st_mtime, False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, st.st_mtime, False
        data = os.read(fd, min(st.st_size, MAX_OWNER_BYTES) + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_OWNER_BYTES:
        return None, st.st_mtime, True
    try:
        return owner_from_text(data.decode("utf-8")), st.st_mtime, True
    except UnicodeDecodeError:
        return None, st.st_mtime, True


@contextlib.contextmanager
def _shared_lock(dir_fd: int) -> Iterator[bool]:
    """Hold the store's lock shared for a moment (True), or give up after a short wait (False).

    The lock file is only opened, never created: a directory without one has no writer to wait for.
    """
    from cnicore._readfile import open_regular
    from cnicore.stores import LOCK_NAME

    try:
        fd, _ = open_regular(LOCK_NAME, dir_fd=dir_fd, follow_symlinks=False)  # (a FIFO there must not hang ls)
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + _LS_LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                _sleep(0.01)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _list_file_store(network: str, config: IPAMConfig) -> list[_Listed]:
    """The reservation files of a network, read without taking the lock.

    Files the file store writes appear whole (they are linked into place), so
    they are read lock-free. A file the reference plugin is writing can be seen
    empty for a moment; only such unreadable files are read again, holding the
    lock shared for that short re-read, so allocations are never held up by a
    long listing.
    """
    from cnicore.stores import ip_from_file_name, network_dir

    path = str(network_dir(config.data_dir, network))
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise IOFailureError(f"cannot open the store directory {path}: {exc.strerror or exc}", key="ipam.dataDir",
                             value=config.data_dir) from exc
    try:
        found: dict[str, tuple[Any, Any, float | None]] = {}
        suspicious: list[str] = []
        for name in sorted(os.listdir(dir_fd)):
            ip = ip_from_file_name(name)
            if ip is None:
                continue
            try:
                owner, mtime, regular = _read_reservation(dir_fd, name)
            except FileNotFoundError:
                continue  # released while we listed
            found[name] = (ip, owner, mtime)
            if owner is None and regular:
                suspicious.append(name)
        if suspicious:
            with _shared_lock(dir_fd):
                for name in suspicious:
                    try:
                        owner, mtime, _ = _read_reservation(dir_fd, name)
                    except FileNotFoundError:
                        del found[name]
                        continue
                    found[name] = (found[name][0], owner, mtime)
    except OSError as exc:
        raise IOFailureError(f"cannot list the store directory {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(dir_fd)
    return [_Listed(ip, owner, _range_set_of(config, ip), mtime, "file", path) for ip, owner, mtime in found.values()]


def _list_etcd_store(network: str, config: IPAMConfig) -> list[_Listed]:
    from cnicore.stores import EtcdStore

    assert config.store is not None
    location = ",".join(config.store.endpoints) + " " + f"{config.store.prefix}/{network}"
    with EtcdStore(network, config.store) as store:
        return [_Listed(r.ip, r.owner, _range_set_of(config, r.ip), None, "etcd", location)
                for r in store.reservations()]


def _age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size or parts:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    parts.append(f"{seconds}s")
    return "".join(parts[:2])


def _ls(args: argparse.Namespace) -> int:
    from cnicore.config import load_network_config
    from cnicore.spec import go_ip_text

    settings, out = args.settings, args.output
    network = load_network_config(settings.conf_dir, args.network)
    listed: list[_Listed] = []
    for config in _ipam_configs(network):
        entries = _list_etcd_store(network.name, config) if config.store else _list_file_store(network.name, config)
        listed += sorted(entries, key=lambda e: (e.ip.version, int(e.ip)))
    now = time.time()
    if out.json:
        out.document([{
            "ip": go_ip_text(e.ip),
            "containerId": e.owner.container_id if e.owner is not None else None,
            "ifName": e.owner.ifname if e.owner is not None else None,
            "rangeSet": e.range_set,
            "ageSeconds": None if e.mtime is None else round(max(0.0, now - e.mtime), 3),
            "store": e.store,
            "location": e.location,
        } for e in listed])
        return EXIT_OK
    stores = sorted({(e.store, e.location) for e in listed})
    where = f" in {stores[0][0]} store {stores[0][1]}" if len(stores) == 1 else ""
    out.line(f"network {network.name}: {len(listed)} reservation(s){where}")
    if not listed:
        return EXIT_OK
    rows = [["ADDRESS", "CONTAINER", "IFNAME", "RANGE SET", "AGE"] + (["STORE"] if len(stores) > 1 else [])]
    for e in listed:
        container = e.owner.container_id if e.owner is not None else "(unreadable)"
        ifname = (e.owner.ifname or "(legacy: any)") if e.owner is not None else "-"
        row = [go_ip_text(e.ip), container, ifname, "-" if e.range_set is None else str(e.range_set),
               "-" if e.mtime is None else _age_text(now - e.mtime)]
        rows.append(row + ([f"{e.store} {e.location}"] if len(stores) > 1 else []))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.line("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# demo / install-plugins (unchanged)
# ------------------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from cnicore._demo import run_demo

    return run_demo(backend=args.demo_backend, on_host=args.on_host)


def _install_plugins(args: argparse.Namespace) -> int:
    from cnicore.plugins._install import install_plugins

    for path in install_plugins(args.dir):
        print(path)
    return 0


# ------------------------------------------------------------------------------------------------
# The parser
# ------------------------------------------------------------------------------------------------


def _add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    # In a subcommand the defaults are suppressed so that an option given before the subcommand survives.
    default: Any = argparse.SUPPRESS if in_subcommand else None
    group = parser.add_argument_group("global options (also accepted before the subcommand)"
                                      if in_subcommand else "global options")
    group.add_argument("--conf-dir", metavar="DIR", default=default,
                       help="network configurations (env NETCONFPATH; default /etc/cni/net.d)")
    group.add_argument("--plugin-path", metavar="DIRS", default=default,
                       help="plugin directories, colon separated (env CNI_PATH; default /opt/cni/bin)")
    group.add_argument("--cache-dir", metavar="DIR", default=default,
                       help="result cache, as libcni's (env CNICORE_CACHE_DIR; default /var/lib/cni)")
    group.add_argument("--backend", choices=_BACKENDS, default=default,
                       help="link backend (env CNICORE_BACKEND; default auto)")
    group.add_argument("--timeout", type=_positive_float, metavar="SECONDS", default=default,
                       help="per plugin call (env CNICORE_TIMEOUT; default 60)")
    group.add_argument("--json", action="store_true", default=default,
                       help="machine-readable output; errors as CNI error objects on stdout")


def _subparser(sub: _SubParsers, name: str, help_text: str, description: str, examples: str) -> \
        argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=description,
                          epilog="examples:\n" + examples + "\n\n" + _EXIT_CODES_TEXT,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _attachment_options(parser: argparse.ArgumentParser, *, add: bool) -> None:
    parser.add_argument("network", metavar="NETWORK", help="the network name (looked up in --conf-dir)")
    parser.add_argument("netns", metavar="NETNS", help="the network namespace path (e.g. /var/run/netns/c1)")
    parser.add_argument("--container-id", metavar="ID",
                        help="default: cnitool-<hex of the first 10 bytes of sha512(absolute NETNS)>")
    ifname_default = "eth0" if add else "every cached interface, else eth0"
    parser.add_argument("--ifname", metavar="IF", help=f"interface name (env CNI_IFNAME; default {ifname_default})")
    parser.add_argument("--args", metavar="'K=V;K2=V2'", help="CNI_ARGS for the plugins (default: env CNI_ARGS)")
    parser.add_argument("--capability-args", metavar="JSON",
                        help='capability arguments, e.g. \'{"portMappings": [...]}\' (default: env CAP_ARGS)')


def _add_add(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = _subparser(
        sub, "add", "attach a network namespace to a network (CNI ADD)",
        "Run ADD for every plugin of NETWORK, cache the result as libcni does, and print it.",
        "  ip netns add c1\n"
        "  cnicore add mynet /var/run/netns/c1\n"
        "  cnicore add mynet /var/run/netns/c1 --ifname eth1 --args 'IP=10.1.2.9' --json\n"
        "  cnicore add mynet /var/run/netns/c1 --result-version 0.2.0 --json   # the ip4 form Mesos reads\n"
        "  CNICORE_FAKE_STATE=/tmp/k cnicore --backend fake add mynet /tmp/ns1   # no kernel changes")
    _attachment_options(parser, add=True)
    parser.add_argument("--result-version", metavar="V",
                        help="print the result in this CNI version (default: the network's)")
    return parser


def _add_del(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = _subparser(
        sub, "del", "detach a network namespace from a network (CNI DEL)",
        "Run DEL for every plugin of NETWORK in reverse, with the cached result, and drop the cache entry. "
        "Deleting twice succeeds.",
        "  cnicore del mynet /var/run/netns/c1\n"
        "  cnicore del mynet /var/run/netns/c1 --ifname eth1\n"
        "  cnicore del mynet /gone/netns --container-id cnitool-0123456789abcdef0123")
    _attachment_options(parser, add=False)
    return parser


def _add_check(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = _subparser(
        sub, "check", "check an attachment is as configured (CNI CHECK)",
        "Run CHECK for every plugin of NETWORK with the cached result (configurations of version 0.4.0 or later).",
        "  cnicore check mynet /var/run/netns/c1\n"
        "  cnicore check mynet /var/run/netns/c1 --ifname eth1 --json")
    _attachment_options(parser, add=False)
    return parser


def _add_gc(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = _subparser(
        sub, "gc", "remove cached attachments of containers that are gone (CNI GC)",
        "With --live, detach every cached attachment whose container (or container/interface) is not listed; "
        "with --none-live, every cached attachment (what cnitool gc does); with neither, none. Then the "
        "plugins of networks at version 1.1.0 or later get GC with the remaining attachments as valid, and "
        "release what nobody holds (leaked addresses).",
        "  cnicore gc                                  # only release what no cached attachment holds\n"
        "  cnicore gc --live web-1 --live db-1/eth1\n"
        "  cnicore gc --network mynet --live web-1 --json\n"
        "  cnicore gc --none-live --network scratch     # detach everything on network scratch")
    parser.add_argument("--live", metavar="ID[/IFNAME]", action="append", type=_live_attachment,
                        help="a container (or one interface of it) still in use; repeat for each")
    parser.add_argument("--none-live", action="store_true",
                        help="no container is in use: detach every cached attachment of the networks")
    parser.add_argument("--network", metavar="NAME", action="append",
                        help="only this network; repeat for several (default: every network)")
    return parser


def _add_status(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = _subparser(
        sub, "status", "ask a network's plugins whether they can serve ADD (CNI STATUS)",
        "Run STATUS for the plugins of NETWORK (configurations of version 1.1.0; older ones are always ready).",
        "  cnicore status mynet\n"
        "  cnicore status mynet --json || echo not ready")
    parser.add_argument("network", metavar="NETWORK")
    return parser


def _add_validate(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = _subparser(
        sub, "validate", "check configuration files and report every error",
        "Load each PATH (a file, or every .conf, .conflist and .json of a directory) as libcni would, check "
        "the host-local IPAM and bridge settings of each plugin, and look for network names defined twice. "
        "Every error is reported as '<file>: <key path>: <message> (CNI code N)'. Nothing is executed.",
        "  cnicore validate /etc/cni/net.d\n"
        "  cnicore validate 10-mynet.conflist 20-other.conf\n"
        "  cnicore validate --json /etc/cni/net.d | jq '.[].key'")
    parser.add_argument("paths", metavar="PATH", nargs="+")
    return parser


def _add_ls(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = _subparser(
        sub, "ls", "list the addresses a network's host-local store has reserved",
        "List each reservation of NETWORK's host-local store (files in its dataDir, default "
        "/var/lib/cni/networks/NETWORK, or etcd when ipam.store says so): address, owner (container ID and "
        "interface), range set index and age. Read-only.",
        "  cnicore ls mynet\n"
        "  cnicore ls mynet --json | jq -r '.[] | select(.containerId == null) | .ip'")
    parser.add_argument("network", metavar="NETWORK")
    return parser


def _add_demo(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = sub.add_parser("demo", help="run the Mesos CNI example end to end with our plugins",
                            description="Run the seed demo (loopback and bridge ADD/DEL in a namespace) "
                                        "through the exec protocol and show each step's result and state.")
    parser.add_argument("--backend", dest="demo_backend", choices=("auto", "real", "fake"), default="auto",
                        help="real namespaces (needs root), the in-memory fake, or auto (real when root)")
    parser.add_argument("--on-host", action="store_true",
                        help="run the plugins in the real host namespace, as the seed does "
                             "(default: a throwaway namespace plays the host)")
    return parser


def _add_install(sub: _SubParsers) -> argparse.ArgumentParser:
    parser = sub.add_parser("install-plugins", help="write the plugin executables into a directory",
                            description="Write loopback, bridge and host-local into DIR (for CNI_PATH).")
    parser.add_argument("dir", metavar="DIR")
    return parser


#: name -> (adds the subparser, handles the parsed arguments, takes the global options)
_COMMANDS: dict[str, tuple[Callable[[_SubParsers], argparse.ArgumentParser], _Handler, bool]] = {
    "add": (_add_add, _add, True),
    "del": (_add_del, _del, True),
    "check": (_add_check, _check, True),
    "gc": (_add_gc, _gc, True),
    "status": (_add_status, _status, True),
    "validate": (_add_validate, _validate, True),
    "ls": (_add_ls, _ls, True),
    "demo": (_add_demo, _demo, False),
    "install-plugins": (_add_install, _install_plugins, False),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="cnicore", description="Container Network Interface tools: attach namespaces to CNI networks "
                                    "(compatible with cnitool), validate configurations, inspect IPAM stores.",
        epilog=_ENV_TEXT + "\n\n" + _EXIT_CODES_TEXT, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_global_options(parser, in_subcommand=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (add, handler, global_options) in _COMMANDS.items():
        subparser = add(sub)
        if global_options:
            _add_global_options(subparser, in_subcommand=True)
        subparser.set_defaults(handler=handler, command=name)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; return the exit status (see the module docstring).

    Args:
        argv: the arguments without the program name (default ``sys.argv[1:]``).
        environ: the environment to read (default ``os.environ``).
    """
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    environ = os.environ if environ is None else environ
    output = _Output(bool(getattr(args, "json", False)))
    handler: _Handler = args.handler
    try:
        if _COMMANDS[args.command][2]:
            args.settings = _Settings(args, environ)
            args.output = output
        return handler(args)
    except CNIError as exc:
        output.error(exc)
        return exit_status(exc)
    except BrokenPipeError:
        # The reader went away (``cnicore ls | head``): stop quietly, and keep the interpreter's final
        # flush of stdout from failing again.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SYSTEM
    except OSError as exc:
        output.error(IOFailureError(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")))
        return EXIT_SYSTEM


if __name__ == "__main__":
    sys.exit(main())
