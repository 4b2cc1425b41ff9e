"""The tuning meta plugin: network sysctls and interface attributes of a container, after its main plugin.

Chained after bridge (or any plugin) with ``prevResult``, as the reference
``tuning`` does:

* ``sysctl``: ``{"net.core.somaxconn": "500"}``; dots become slashes, the first
  ``IFNAME`` becomes ``CNI_IFNAME``, and only keys below ``/proc/sys/net/`` (which
  is per network namespace) are written (``invalid net sysctl key: %q``). When
  ``/etc/cni/tuning/allowlist.conf`` exists, every key must match one of its
  lines (regular expressions, matched anywhere in the key) or ADD fails with
  ``Sysctl <key> is not allowed. Only the following sysctls are allowed: [...]``;
  a key given twice is refused (``duplicated sysctl keys are not allowed``).
* ``mac`` (also ``CNI_ARGS`` ``MAC=`` and ``runtimeConfig.mac``, the capability
  ``mac``, later ones winning), ``mtu``, ``promisc``, ``allmulti``, ``txQLen``,
  ``alias``; ``args.cni`` may override each of them (and add sysctls).
* Before changing an attribute, the link's current values of the attributes
  about to change are saved in ``<dataDir>/<containerID>_<ifname>.json``
  (``dataDir`` defaults to ``/run/cni/tuning``), in the reference's format, so
  either implementation's DEL restores what the other's ADD changed. DEL puts
  them back and removes the file; it never fails once the configuration parsed
  (a missing namespace or link leaves the file, as the reference does). Sysctls
  are not restored (the namespace goes with the container).
* The result is ``prevResult`` in the configuration's version, with the new MAC
  (as written in the configuration) on the interfaces named ``CNI_IFNAME``.
* CHECK compares each sysctl and attribute with the configuration.
* ``CNI_NETNS`` must name a namespace file (else ``unknown FS magic on ...``,
  as the reference). With nothing to tune, ADD does not join it: a namespace of
  another type (a mount namespace, say), which the reference's ADD joins and
  setns refuses, passes (telling the type without joining takes an ioctl whose
  module would cost every container start's tuning its load).

Versions: Debian's 1.1.1 build has neither the allow-list, the duplicate-key
check, ``txQLen`` nor ``alias`` (it ignores the two keys); those follow
upstream's current plugin. Messages are the reference's, except the CHECK
message about ``allmulti``, where the reference prints a Go pointer (an address
no two runs share) and we print the configured value.

This module is the engine on plain values (standard library only). It works
over a :class:`TuningPort`: in process any :class:`~cnicore.links.LinkBackend`
is one as it is; executed, :class:`cnicore.backends._tuningport.PlainTuningPort`
(the netlink backend's own operations), and ``prevResult`` is read and printed
on plain values (:mod:`cnicore.spec._resultread`), so an executed tuning loads
neither the typed link world nor the result types for a current result.
"""

from __future__ import annotations

import os

from cnicore._errors import CNIError, InternalError, InvalidConfigError, NotFoundError
from cnicore._gofmt import go_quote
from cnicore._json import decode, marshal
from cnicore.plugins._netconf import GoStruct
from cnicore.spec._args import parse_cni_args
from cnicore.spec._goint import HEX_DIGITS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final, Protocol

    from cnicore.plugins._meta import MetaRequest
    from cnicore.spec._result import AnyResult

    class TunedLink(Protocol):
        """The attributes of a link tuning reads (a :class:`~cnicore.links.Link` has them)."""

        @property
        def mac(self) -> str: ...
        @property
        def mtu(self) -> int: ...
        @property
        def promiscuous(self) -> bool: ...
        @property
        def allmulti(self) -> bool: ...
        @property
        def txqueuelen(self) -> int: ...
        @property
        def alias(self) -> str: ...

    class TuningPort(Protocol):
        """What tuning does to a namespace: a :class:`~cnicore.links.LinkBackend`'s methods of those names.

        Namespace handles are whatever ``open_namespace`` returns; errors are the backend's.
        """

        def open_namespace(self, path: str) -> Any: ...
        def get_link(self, ns: Any, name: str) -> TunedLink: ...
        def set_mac(self, ns: Any, name: str, mac: str) -> None: ...
        def set_mtu(self, ns: Any, name: str, mtu: int) -> None: ...
        def set_link_options(self, ns: Any, name: str, *, promiscuous: bool | None = None,
                             allmulti: bool | None = None, txqueuelen: int | None = None,
                             alias: str | None = None) -> None: ...
        def read_net_sysctl(self, ns: Any, path: str) -> str: ...
        def write_net_sysctl(self, ns: Any, path: str, value: str) -> None: ...

__all__ = ["DEFAULT_ALLOWLIST", "DEFAULT_TUNING_DATA_DIR", "TuningConfig", "TuningPlugin", "load_tuning_config"]

#: Where the attributes ADD changed are saved for DEL, unless ``dataDir`` says otherwise.
DEFAULT_TUNING_DATA_DIR: Final = "/run/cni/tuning"
#: The sysctl allow-list: when this file exists, only the sysctls it matches may be set.
DEFAULT_ALLOWLIST: Final = "/etc/cni/tuning/allowlist.conf"

_PREFIX = "failed to load netconf: "


class TuningConfig:
    """What the tuning plugin was asked to do (plain values; built by :func:`load_tuning_config`)."""

    __slots__ = ("alias", "allmulti", "data_dir", "mac", "mtu", "promisc", "sysctl", "txqueuelen")

    def __init__(self, *, sysctl: dict[str, str], data_dir: str, mac: str = "", mtu: int = 0,
                 promisc: bool = False, allmulti: bool | None = None, txqueuelen: int | None = None,
                 alias: str = "") -> None:
        self.sysctl = sysctl
        self.data_dir = data_dir
        self.mac = mac
        self.mtu = mtu
        self.promisc = promisc
        self.allmulti = allmulti
        self.txqueuelen = txqueuelen
        self.alias = alias

    @property
    def changes_link(self) -> bool:
        """True when ADD changes an attribute of the link (and so saves the old values first)."""
        return bool(self.mac or self.mtu or self.promisc or self.allmulti is not None
                    or self.txqueuelen is not None or self.alias)


def load_tuning_config(config: Mapping[str, Any], cni_args: str = "") -> TuningConfig:
    """Read the configuration as the reference's ``parseConf`` does (later sources override earlier ones).

    Raises:
        InvalidConfigError: Go's decoding error after ``failed to load netconf: ``, or a bad ``CNI_ARGS``.
    """
    top = GoStruct(config, "TuningConf", prefix=_PREFIX)
    sysctl = top.get_str_map("sysctl") or {}
    conf = TuningConfig(
        sysctl=sysctl,
        data_dir=top.get_str("dataDir") or DEFAULT_TUNING_DATA_DIR,
        mac=top.get_str("mac") or "",
        mtu=top.get_int("mtu") or 0,
        promisc=bool(top.get_bool("promisc")),
        allmulti=top.get_bool("allmulti", pointer=True),
        txqueuelen=top.get_int("txQLen", pointer=True),
        alias=top.get_str("alias") or "",
    )
    runtime = top.get_struct("runtimeConfig", "")
    runtime_mac = runtime.get_str("mac") if runtime is not None else None
    args = top.get_struct("args", "", pointer=True)
    # The nested struct is named IPAMArgs in the reference: its messages say so.
    cni = args.get_struct("cni", "IPAMArgs", pointer=True) if args is not None else None
    overrides = _Overrides(cni)
    if cni_args:
        mac_arg = parse_cni_args(cni_args, {"MAC": str}).get("MAC", "")
        if isinstance(mac_arg, str) and mac_arg:
            conf.mac = mac_arg
    if runtime_mac:
        conf.mac = runtime_mac
    overrides.apply(conf)
    return conf


class _Overrides:
    # args.cni: pointers, so a key present (even false or 0) overrides; read before anything is applied,
    # as Go decodes the whole document first.
    def __init__(self, cni: GoStruct | None) -> None:
        self.sysctl = cni.get_str_map("sysctl") if cni is not None else None
        self.mac = cni.get_str("mac", pointer=True) if cni is not None else None
        self.promisc = cni.get_bool("promisc", pointer=True) if cni is not None else None
        self.mtu = cni.get_int("mtu", pointer=True) if cni is not None else None
        self.allmulti = cni.get_bool("allmulti", pointer=True) if cni is not None else None
        self.txqueuelen = cni.get_int("txQLen", pointer=True) if cni is not None else None
        self.alias = cni.get_str("alias", pointer=True) if cni is not None else None

    def apply(self, conf: TuningConfig) -> None:
        if self.sysctl is not None:
            conf.sysctl.update(self.sysctl)
        if self.mac is not None:
            conf.mac = self.mac
        if self.promisc is not None:
            conf.promisc = self.promisc
        if self.mtu is not None:
            conf.mtu = self.mtu
        if self.allmulti is not None:
            conf.allmulti = self.allmulti
        if self.txqueuelen is not None:
            conf.txqueuelen = self.txqueuelen
        if self.alias is not None:
            conf.alias = self.alias


def check_duplicate_sysctls(config_bytes: bytes) -> None:
    """Refuse a ``sysctl`` object naming one key twice (upstream's current plugin does; JSON decoders keep one)."""
    if not config_bytes:
        return
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        for key, value in items:
            if key.lower() == "sysctl" and isinstance(value, _Pairs):
                keys = [k for k, _v in value.items_list]
                if len(set(keys)) != len(keys):
                    found.append("dup")
        result = _Pairs(items)
        return result

    try:
        decode(config_bytes, pairs_hook=pairs)
    except CNIError:
        return  # the skeleton decoded it already; anything odd here is not this check's business
    if found:
        raise InternalError("duplicated sysctl keys are not allowed")


class _Pairs(dict):  # type: ignore[type-arg]
    # A decoded object that remembers its keys as written (duplicates included).
    def __init__(self, items: list[tuple[str, Any]]) -> None:
        super().__init__(items)
        self.items_list = items


def read_allowlist(path: str) -> list[str] | None:
    """The allow-list's patterns (blank lines skipped), or None when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InternalError(f"open {path}: {exc.strerror or exc}") from exc
    return [line.strip() for line in text.split("\n") if line.strip()]


def check_allowlist(sysctl: Mapping[str, str], path: str) -> None:
    """Every key must match a pattern of the allow-list when there is one (see the module docstring)."""
    allowlist = read_allowlist(path)
    if allowlist is None:
        return
    import re  # only with an allow-list: re costs an exec'd plugin milliseconds of its start

    for key in sysctl:
        for pattern in allowlist:
            try:
                if re.search(pattern, key):
                    break
            except re.error as exc:
                raise InternalError(f"error parsing regexp: {exc}: `{pattern}`") from exc
        else:
            raise InternalError(f"Sysctl {key} is not allowed. Only the following sysctls are allowed: "
                                f"[{' '.join(allowlist)}]")


def _mac_digits(text: str) -> str | None:
    """The hex digits of a MAC written as Go's ``net.ParseMAC`` accepts it (``aa:bb:...``, ``aa-bb-...`` or
    ``aabb.ccdd...``: one separator throughout, groups of two or four hex digits), lowercase; else None."""
    if len(text) > 2 and text[2] in ":-":
        groups, width = text.split(text[2]), 2
    elif len(text) > 4 and text[4] == ".":
        groups, width = text.split("."), 4
    else:
        return None
    if len(groups) < 2 or any(len(group) != width or not set(group) <= HEX_DIGITS for group in groups):
        return None
    return "".join(groups).lower()


def parse_go_mac(text: str) -> str:
    """The MAC as Go's ``net.ParseMAC`` reads it (6, 8 or 20 octets), lowercase with colons.

    Raises:
        InternalError: the reference's ``invalid args <mac> for MAC addr: address <mac>: invalid MAC address``.
    """
    digits = _mac_digits(text) or ""
    if len(digits) // 2 not in (6, 8, 20):
        raise InternalError(f"invalid args {text} for MAC addr: address {text}: invalid MAC address")
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def sysctl_path(key: str, ifname: str | None) -> str:
    """The path below ``/proc/sys`` a configured key names (dots to slashes, ``IFNAME`` replaced once)."""
    path = key.replace(".", "/")
    if ifname is not None:
        path = path.replace("IFNAME", ifname, 1)
    return path


def _backup_file(data_dir: str, container_id: str, ifname: str) -> str:
    return os.path.join(data_dir, f"{container_id}_{ifname}.json")


def backup_text(conf: TuningConfig, link: TunedLink) -> str:
    """The backup file the reference writes (Go's ``MarshalIndent`` with one-space indent, ``omitempty``)."""
    saved: dict[str, Any] = {}
    if conf.mac:
        saved["mac"] = link.mac
    if conf.promisc:
        saved["promisc"] = link.promiscuous
    if conf.mtu:
        saved["mtu"] = link.mtu
    if conf.allmulti is not None:
        saved["allmulti"] = link.allmulti
    if conf.txqueuelen is not None:
        saved["txQLen"] = link.txqueuelen
    if conf.alias:
        saved["alias"] = link.alias
    if not saved:
        return "{}"
    # Go's encoding of each key and value (the one writer: <, > and & escaped, other non-ASCII text as is).
    body = ",\n".join(f" {marshal(key)}: {marshal(value)}" for key, value in saved.items())
    return "{\n" + body + "\n}"


class TuningPlugin:
    """The ``tuning`` plugin in process (see the module docstring).

    Args:
        backend: the link port: any link backend, or the plain netlink port (or a proxy building one on first use).
        allowlist: the sysctl allow-list file (the reference's fixed path by default).
    """

    name = "tuning"

    def __init__(self, backend: TuningPort, *, allowlist: str = DEFAULT_ALLOWLIST) -> None:
        from cnicore.spec._version import ALL_VERSIONS

        self.supported_versions: tuple[str, ...] = ALL_VERSIONS
        self._backend = backend
        self._allowlist = allowlist

    # -- ADD ----------------------------------------------------------------------------------------

    def add(self, request: MetaRequest) -> AnyResult:
        """ADD: write the sysctls, save and change the link's attributes; return ``prevResult``."""
        prev, mac = self._add(request)
        return _typed_output(prev, request.ifname, mac, request.cni_version)

    def add_output(self, request: MetaRequest) -> str:
        """ADD as an executed plugin prints it: ``prevResult`` (with the MAC) at the request's version."""
        prev, mac = self._add(request)
        version = request.cni_version
        from cnicore.spec._version import result_family

        if mac and (prev["family"] != "100" or result_family(version or "0.1.0") != "100"):
            return _typed_output(prev, request.ifname, mac, version).to_json()  # an older result: converted
        if mac:
            prev = {**prev, "interfaces": [{**i, "mac": mac} if i["name"] == request.ifname else i
                                           for i in prev["interfaces"]]}
        from cnicore.plugins._meta import result_output

        return result_output(prev, version)

    def _add(self, request: MetaRequest) -> tuple[dict[str, Any], str]:
        # prevResult read on plain values, and the MAC as configured ("" for none).
        check_duplicate_sysctls(request.config_bytes)
        conf = load_tuning_config(request.config, request.args)
        check_allowlist(conf.sysctl, self._allowlist)
        prev = _required_prev_result(request.config)
        backend = self._backend
        ns = backend.open_namespace(request.netns)
        for key, value in conf.sysctl.items():
            _write_sysctl(backend, ns, sysctl_path(key, request.ifname), value)
        new_mac = ""
        if conf.changes_link:
            self._save(backend, ns, conf, request)
        if conf.mac:
            new_mac = parse_go_mac(conf.mac)
            self._link_call(lambda: backend.set_mac(ns, request.ifname, new_mac), request.ifname)
        if conf.promisc:
            self._link_call(lambda: backend.set_link_options(ns, request.ifname, promiscuous=True), request.ifname)
        if conf.mtu:
            self._link_call(lambda: backend.set_mtu(ns, request.ifname, conf.mtu), request.ifname)
        if conf.allmulti is not None:
            allmulti = conf.allmulti
            self._link_call(lambda: backend.set_link_options(ns, request.ifname, allmulti=allmulti), request.ifname)
        if conf.txqueuelen is not None:
            qlen = conf.txqueuelen
            self._link_call(lambda: backend.set_link_options(ns, request.ifname, txqueuelen=qlen), request.ifname)
        if conf.alias:
            alias = conf.alias
            self._link_call(lambda: backend.set_link_options(ns, request.ifname, alias=alias), request.ifname)
        return prev, conf.mac

    @staticmethod
    def _link_call(call: Any, ifname: str) -> None:
        try:
            call()
        except NotFoundError as exc:
            raise InternalError(f"failed to get {go_quote(ifname)}: Link not found") from exc

    @staticmethod
    def _link(backend: TuningPort, ns: Any, ifname: str) -> TunedLink:
        try:
            return backend.get_link(ns, ifname)
        except NotFoundError as exc:
            raise InternalError(f"failed to get {go_quote(ifname)}: Link not found") from exc

    def _save(self, backend: TuningPort, ns: Any, conf: TuningConfig, request: MetaRequest) -> None:
        link = self._link(backend, ns, request.ifname)
        text = backup_text(conf, link)
        try:
            # The reference creates the folder with mode 0600 (sic); root writes there all the same.
            os.makedirs(conf.data_dir, mode=0o600, exist_ok=True)
        except OSError as exc:
            raise InternalError(f"failed to create backup directory: mkdir {conf.data_dir}: "
                                f"{(exc.strerror or str(exc)).lower()}") from exc
        path = _backup_file(conf.data_dir, request.container_id, request.ifname)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, text.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise InternalError(f"failed to save file {request.ifname}.json: open {path}: "
                                f"{(exc.strerror or str(exc)).lower()}") from exc

    # -- DEL ----------------------------------------------------------------------------------------

    def delete(self, request: MetaRequest) -> None:
        """DEL: restore what ADD saved; never fails once the configuration parsed."""
        conf = load_tuning_config(request.config, request.args)
        # The reference ignores every failure here (the saved file stays for a later DEL).
        try:  # noqa: SIM105 (contextlib costs an exec'd plugin its import)
            self._restore(conf, request)
        except CNIError:
            pass

    def _restore(self, conf: TuningConfig, request: MetaRequest) -> None:
        # The reference enters the namespace first; reading the file first ends the same way (nothing saved,
        # or no namespace: nothing happens) without building a link backend when nothing was saved.
        path = _backup_file(conf.data_dir, request.container_id, request.ifname)
        try:
            with open(path, "rb") as handle:
                saved = decode(handle.read(), what=path)
        except (OSError, CNIError):
            return
        if not isinstance(saved, dict):
            return
        backend = self._backend
        ns = backend.open_namespace(request.netns)
        backend.get_link(ns, request.ifname)
        failures: list[str] = []
        ifname = request.ifname

        def attempt(what: str, call: Any) -> None:
            try:
                call()
            except CNIError as exc:
                failures.append(f"failed to restore {what}: {exc.msg}")

        mtu, mac = saved.get("mtu"), saved.get("mac")
        if isinstance(mtu, int) and not isinstance(mtu, bool) and mtu:
            attempt("MTU", lambda: backend.set_mtu(ns, ifname, mtu))
        if isinstance(mac, str) and mac:
            attempt("MAC address", lambda: backend.set_mac(ns, ifname, parse_go_mac(mac)))
        for key, what, option in (("promisc", "promiscuous mode", "promiscuous"),
                                  ("allmulti", "all-multicast mode", "allmulti")):
            value = saved.get(key)
            if isinstance(value, bool):
                attempt(what, lambda option=option, value=value: backend.set_link_options(
                    ns, ifname, **{option: value}))
        qlen = saved.get("txQLen")
        if isinstance(qlen, int) and not isinstance(qlen, bool):
            attempt("transmit queue length", lambda: backend.set_link_options(ns, ifname, txqueuelen=qlen))
        alias = saved.get("alias")
        if isinstance(alias, str):
            attempt("alias", lambda: backend.set_link_options(ns, ifname, alias=alias))
        if failures:
            raise InternalError("; ".join(failures))
        os.remove(path)

    # -- CHECK --------------------------------------------------------------------------------------

    def check(self, request: MetaRequest) -> None:
        """CHECK: every configured sysctl and attribute has the configured value."""
        check_duplicate_sysctls(request.config_bytes)
        conf = load_tuning_config(request.config, request.args)
        prev = _required_prev_result(request.config)
        if prev["family"] != "100":
            # As the reference, an older prevResult must convert to a current one (the result types do that).
            from cnicore.spec._convert import convert_result
            from cnicore.spec._result import result_from_plain

            convert_result(result_from_plain(prev), "1.0.0")
        backend = self._backend
        ns = backend.open_namespace(request.netns)
        for key, want in conf.sysctl.items():
            # The reference's CHECK replaces the dots but not IFNAME (its ADD does both); so do we.
            path = sysctl_path(key, None)
            file_name = "/proc/sys/" + os.path.normpath(path).lstrip("/")
            current = _read_sysctl(backend, ns, path, file_name)
            if current != want:
                raise InternalError(f"Error: Tuning configured value of {file_name} is {want}, "
                                    f"current value is {current}")
        ifname = request.ifname
        try:
            link = backend.get_link(ns, ifname)
        except NotFoundError as exc:
            raise InternalError(f"Cannot find container link {ifname}") from exc
        if conf.mac and conf.mac != link.mac:
            raise InternalError(f"Error: Tuning configured Ethernet of {ifname} is {conf.mac}, "
                                f"current value is {link.mac}")
        if conf.promisc != link.promiscuous:
            raise InternalError(f"Error: Tuning link {ifname} configured promisc is {_go_bool(conf.promisc)}, "
                                f"current value is {int(link.promiscuous)}")
        if conf.mtu and conf.mtu != link.mtu:
            raise InternalError(f"Error: Tuning configured MTU of {ifname} is {conf.mtu}, current value is {link.mtu}")
        if conf.allmulti is not None and conf.allmulti != link.allmulti:
            raise InternalError(f"Error: Tuning configured all-multicast mode of {ifname} is "
                                f"{_go_bool(conf.allmulti)}, current value is {_go_bool(link.allmulti)}")
        if conf.txqueuelen is not None and conf.txqueuelen != link.txqueuelen:
            raise InternalError(f"Error: Tuning configured Transmit Queue Length of {ifname} is {conf.txqueuelen}, "
                                f"current value is {link.txqueuelen}")
        if conf.alias and conf.alias != link.alias:
            raise InternalError(f"Error: Tuning configured alias of {ifname} is {conf.alias}, "
                                f"current value is {link.alias}")


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def _required_prev_result(config: Mapping[str, Any]) -> dict[str, Any]:
    from cnicore.spec._resultread import read_prev_result

    prev = read_prev_result(config)
    if prev is None:
        raise InternalError("Required prevResult missing")
    return prev


def _typed_output(prev: Mapping[str, Any], ifname: str, mac: str, version: str) -> AnyResult:
    # The result types of prevResult at ``version``; with a MAC, as the reference: the result becomes a current
    # one whose interfaces named ``ifname`` get the MAC as configured.
    from cnicore.plugins._meta import typed_result

    if not mac:
        return typed_result(prev, version)
    import attrs

    from cnicore.spec._convert import convert_result
    from cnicore.spec._result import Result, result_from_plain

    current = convert_result(result_from_plain(prev), "1.0.0")
    assert isinstance(current, Result)
    interfaces = tuple(attrs.evolve(i, mac=mac) if i.name == ifname else i for i in current.interfaces)
    return attrs.evolve(current, interfaces=interfaces).as_version(version)


def _write_sysctl(backend: TuningPort, ns: Any, path: str, value: str) -> None:
    file_name = "/proc/sys/" + path
    try:
        backend.write_net_sysctl(ns, path, value)
    except InvalidConfigError:
        raise
    except NotFoundError as exc:
        raise InternalError(f"open {os.path.normpath(file_name)}: no such file or directory") from exc
    except InternalError as exc:
        if exc.msg.endswith("invalid value"):
            raise InternalError(f"write {os.path.normpath(file_name)}: invalid argument") from exc
        raise


def _read_sysctl(backend: TuningPort, ns: Any, path: str, file_name: str) -> str:
    try:
        return backend.read_net_sysctl(ns, path)
    except NotFoundError as exc:
        raise InternalError(f"open {file_name}: no such file or directory") from exc
