"""``mesos-cni-port-mapper``: the Mesos agent's port-mapping plugin, wrapping a delegate plugin.

The Mesos ``network/cni`` isolator publishes a task's ports with this plugin.
Its configuration names the network (``name``), an iptables chain (``chain``)
in table ``nat``, the plugin that really attaches the container (``delegate``,
an object with a ``type`` found on ``CNI_PATH``; our bridge, typically) and
optionally interfaces whose traffic is not mapped (``excludeDevices``). The port
mappings come from ``args."org.apache.mesos".network_info.port_mappings``
(``host_port``, ``container_port``, ``protocol``; the agent fills it in).

ADD runs the delegate's ADD (its configuration is ``delegate`` with ``name``
and ``args`` added, written with sorted keys as the agent's JSON library writes
it), needs an IPv4 address in its 0.1.0/0.2.0-shaped result (``ip4``), then for
each mapping appends to ``chain`` (created, with jumps from ``PREROUTING`` and,
except for 127.0.0.0/8, ``OUTPUT`` for local destinations, when it is missing)
``[! -i <dev>] -p <proto> -m <proto> --dport <host> -j DNAT --to-destination
<ip>:<container> -m comment --comment "container_id: <CNI_CONTAINERID>"``, and
prints the delegate's result. DEL removes the rules tagged with the container ID
first (so a reused address never gets the old traffic), then runs the
delegate's DEL; it needs no namespace. The chain is never removed (other
containers share it). CHECK and VERSION are not supported (code 104), as in
Mesos.

Errors are Mesos's, with its codes: 100 reading stdin, 101 bad environment or
configuration, 102 the delegate failed, 103 the iptables rules failed, 104 an
unsupported command; printed as ``{"cniVersion":"0.3.0","code":...,"msg":...}``.

Deviations from Mesos, each deliberate: only the last of ``excludeDevices`` is
excluded in Mesos (its loop assigns instead of appending); we exclude each.
Mesos deletes every rule whose text contains ``container_id: <id>`` (so DEL of
``abc`` also removes ``abcd``'s rules); we delete the rules tagged with exactly
that ID. The result is the delegate's own output (the agent reads ``ip4``,
``ip6`` and ``dns`` from it) rather than Mesos's compact re-serialisation.
"""

from __future__ import annotations

import json
import os

from cnicore._errors import CNIError
from cnicore.plugins._mesos_skel import (
    ERROR_BAD_ARGS,
    ERROR_DELEGATE_FAILURE,
    ERROR_PORTMAP_FAILURE,
    ERROR_UNSUPPORTED_COMMAND,
    check_environment,
    mesos_error,
    mesos_refusal,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, BinaryIO

    from cnicore.links import RuleTables

__all__ = ["MESOS_PORT_MAPPER", "MesosPortMapper", "mesos_main"]

#: The plugin's type name.
MESOS_PORT_MAPPER = "mesos-cni-port-mapper"
_error = mesos_error


def _string_field(config: Mapping[str, Any], name: str) -> str:
    value = config.get(name)
    if value is None:
        raise _error(f"Failed to get the required field '{name}': Not found", ERROR_BAD_ARGS)
    if not isinstance(value, str):
        raise _error(f"Failed to get the required field '{name}': Found JSON value of wrong type", ERROR_BAD_ARGS)
    return value


class MesosPortMapper:
    """One invocation of the port mapper (see the module docstring).

    Args:
        environ: the ``CNI_*`` variables (and ``PATH``, passed to the delegate).
        config_bytes: the configuration the plugin was given.
        firewall: the iptables tables (or a callable building them on first use).
        timeout: seconds the delegate may run.
    """

    def __init__(self, environ: Mapping[str, str], config_bytes: bytes,
                 firewall: RuleTables | Callable[[], RuleTables], *, timeout: float = 60.0) -> None:
        self._firewall = firewall
        self.timeout = timeout
        check_environment(environ)
        self.command = environ["CNI_COMMAND"]
        self.container_id = environ["CNI_CONTAINERID"]
        self.netns = environ.get("CNI_NETNS", "")
        self.ifname = environ["CNI_IFNAME"]
        self.args = environ.get("CNI_ARGS")
        self.path = environ["CNI_PATH"]
        self.system_path = environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        try:
            config = json.loads(config_bytes)
        except ValueError as exc:
            raise _error(str(exc), ERROR_BAD_ARGS) from exc
        if not isinstance(config, dict):
            raise _error("Expecting a JSON object", ERROR_BAD_ARGS)
        self.name = _string_field(config, "name")
        self.chain = _string_field(config, "chain")
        devices = config.get("excludeDevices")
        if devices is not None and not isinstance(devices, list):
            raise _error("Failed to parse field 'excludeDevices': Found JSON value of wrong type", ERROR_BAD_ARGS)
        if any(not isinstance(d, str) for d in devices or ()):
            raise _error("Failed to parse 'excludeDevices' list. The excluded device needs to be a string",
                         ERROR_BAD_ARGS)
        self.exclude_devices: list[str] = list(devices or ())
        args = config.get("args")
        if args is None:
            # Not called by Mesos: no mappings, as if the agent had sent an empty network_info.
            args = {"org.apache.mesos": {"network_info": {}}}
        if not isinstance(args, dict):
            raise _error("Failed to get the field 'args': Found JSON value of wrong type", ERROR_BAD_ARGS)
        mesos = args.get("org.apache.mesos")
        if not isinstance(mesos, dict):
            raise _error("Failed to get the field 'args{org.apache.mesos}': "
                         + ("Not found" if mesos is None else "Found JSON value of wrong type"), ERROR_BAD_ARGS)
        network_info = mesos.get("network_info")
        if not isinstance(network_info, dict):
            raise _error("Failed to get the field 'args{org.apache.mesos}{network_info}': "
                         + ("Not found" if network_info is None else "Found JSON value of wrong type"),
                         ERROR_BAD_ARGS)
        self.mappings = _port_mappings(network_info)
        delegate = config.get("delegate")
        if not isinstance(delegate, dict):
            raise _error("Failed to get the required field 'delegate'"
                         + ("Not found" if delegate is None else "Found JSON value of wrong type"), ERROR_BAD_ARGS)
        plugin_type = delegate.get("type")
        if not isinstance(plugin_type, str):
            raise _error("Failed to get the delegate plugin 'type'"
                         + ("Not found" if plugin_type is None else "Found JSON value of wrong type"),
                         ERROR_BAD_ARGS)
        found = _which(plugin_type, self.path)
        if found is None:
            raise _error(f"Could not find the delegate plugin '{plugin_type}' in '{self.path}'", ERROR_BAD_ARGS)
        self.delegate_plugin = found
        self.delegate_config = {**delegate, "name": self.name, "args": args}

    # -- commands ---------------------------------------------------------------------------------

    def execute(self) -> str | None:
        """Run the command; the text printed on success (ADD), else None. Errors are :class:`CNIError`."""
        if self.command == "ADD":
            return self.add()
        if self.command == "DEL":
            self.delete()
            return None
        raise _error(f"Unsupported command: {self.command}", ERROR_UNSUPPORTED_COMMAND)

    def add(self) -> str:
        """ADD: the delegate's ADD, then one DNAT rule per mapping; the delegate's result."""
        output = self._delegate("ADD")
        from cnicore.spec._resultread import read_result

        try:
            result = read_result(output)
        except CNIError as exc:
            raise _error(f"Could not execute the delegate plugin '{self.delegate_plugin}' for ADD command: Failed "
                         f"to parse the output of the delegate CNI plugin '{self.delegate_plugin}': {exc.msg}",
                         ERROR_DELEGATE_FAILURE) from exc
        ip4 = result.get("ip4")  # a 0.1.0/0.2.0 result's; Mesos speaks no other
        if ip4 is None:
            raise _error(f"Delegate CNI plugin '{self.delegate_plugin}' did not return an IPv4 address",
                         ERROR_DELEGATE_FAILURE)
        try:
            self._add_rules(ip4["ip"].partition("/")[0])
        except CNIError as exc:
            raise _error(f"Failed to add DNAT rule with tag: {exc.msg}", ERROR_PORTMAP_FAILURE) from exc
        return output.decode("utf-8", "replace")

    def delete(self) -> None:
        """DEL: the container's rules first, then the delegate's DEL."""
        try:
            self._delete_rules()
        except CNIError as exc:
            raise _error(f"Unable to remove iptables DNAT rules: {exc.msg}", ERROR_PORTMAP_FAILURE) from exc
        self._delegate("DEL")

    # -- rules ------------------------------------------------------------------------------------

    def _tables(self) -> RuleTables:
        if callable(self._firewall) and not hasattr(self._firewall, "edit_rules"):
            self._firewall = self._firewall()
        return self._firewall  # type: ignore[return-value]

    def tag(self) -> str:
        """The comment every rule of this container carries."""
        return f"container_id: {self.container_id}"

    def rule(self, ip: str, mapping: Mapping[str, Any]) -> tuple[str, ...]:
        """The DNAT rule of one mapping (iptables arguments after the chain)."""
        devices: list[str] = []
        for device in self.exclude_devices:
            devices += ["!", "-i", device]
        protocol = mapping["protocol"]
        return (*devices, "-p", protocol, "-m", protocol, "--dport", str(mapping["host_port"]), "-j", "DNAT",
                "--to-destination", f"{ip}:{mapping['container_port']}", "-m", "comment", "--comment", self.tag())

    def _add_rules(self, ip: str) -> None:
        from cnicore._ruleplan import RuleStep, TableEdit

        if not self.mappings:
            return
        tables = self._tables()
        ops: list[RuleStep] = []
        if self.chain not in tables.table_rules(4, "nat"):
            ops += [RuleStep("append", "PREROUTING", ("-m", "addrtype", "--dst-type", "LOCAL", "-j", self.chain)),
                    RuleStep("append", "OUTPUT", ("!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL",
                                                  "-j", self.chain))]
        ops += [RuleStep("append", self.chain, self.rule(ip, mapping)) for mapping in self.mappings]
        edit = TableEdit(version=4, table="nat", chains=(self.chain,), ops=tuple(ops))
        tables.edit_rules([edit])  # type: ignore[list-item]  # a TableEdit has RuleEdit's fields

    def _delete_rules(self) -> None:
        import shlex

        from cnicore._ruleplan import RuleStep, TableEdit

        tables = self._tables()
        doomed = []
        for line in tables.table_rules(4, "nat").get(self.chain, ()):
            words = shlex.split(line)
            if "--comment" in words and words[words.index("--comment") + 1] == self.tag():
                doomed.append(RuleStep("delete", self.chain, tuple(words[2:])))
        if doomed:
            tables.edit_rules([TableEdit(version=4, table="nat", ops=tuple(doomed))])  # type: ignore[list-item]

    # -- the delegate -----------------------------------------------------------------------------

    def _delegate(self, command: str) -> bytes:
        from cnicore._invoke import exec_plugin

        env = {"CNI_COMMAND": command, "CNI_IFNAME": self.ifname, "CNI_NETNS": self.netns, "CNI_PATH": self.path,
               "CNI_CONTAINERID": self.container_id, "PATH": self.system_path}
        if self.args is not None:
            env["CNI_ARGS"] = self.args
        stdin = json.dumps(self.delegate_config, sort_keys=True, separators=(",", ":")).encode()
        try:
            return exec_plugin(self.delegate_plugin, stdin, env, timeout=self.timeout, command=command)
        except CNIError as exc:
            raise _error(f"Could not execute the delegate plugin '{self.delegate_plugin}' for {command} command: "
                         f"The delegate CNI plugin '{self.delegate_plugin}' return status 1. Could not "
                         f"attach/detach container: {exc.to_json()}", ERROR_DELEGATE_FAILURE) from exc


def _port_mappings(network_info: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = network_info.get("port_mappings", [])
    if not isinstance(raw, list):
        raise _error("Unable to parse `NetworkInfo`: Not expecting a JSON array for field 'port_mappings'",
                     ERROR_BAD_ARGS)
    mappings = []
    for item in raw:
        if not isinstance(item, dict):
            raise _error("Unable to parse `NetworkInfo`: Expecting a JSON object for field 'port_mappings'",
                         ERROR_BAD_ARGS)
        entry: dict[str, Any] = {}
        for key in ("host_port", "container_port"):
            value = item.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
                raise _error(f"Unable to parse `NetworkInfo`: Missing or invalid required field "
                             f"'port_mappings.{key}'", ERROR_BAD_ARGS)
            entry[key] = value
        protocol = item.get("protocol")
        if protocol is not None and not isinstance(protocol, str):
            raise _error("Unable to parse `NetworkInfo`: Not expecting a JSON "
                         f"{type(protocol).__name__} for field 'protocol'", ERROR_BAD_ARGS)
        entry["protocol"] = protocol.lower() if protocol is not None else "tcp"
        mappings.append(entry)
    return mappings


def _which(name: str, path: str) -> str | None:
    if "/" in name:
        return name if os.access(name, os.X_OK) and os.path.isfile(name) else None
    for directory in path.split(":"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def mesos_main(environ: Mapping[str, str], config_bytes: bytes, stdout: BinaryIO,
               firewall: RuleTables | Callable[[], RuleTables]) -> int:
    """The executable, once stdin is read: run, print the result or Mesos's error object; the exit status."""
    try:
        text = MesosPortMapper(environ, config_bytes, firewall).execute()
    except CNIError as exc:
        return mesos_refusal(exc, stdout)
    if text is not None:
        stdout.write((text + "\n").encode())
        stdout.flush()
    return 0
