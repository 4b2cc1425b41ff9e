"""add, del, check, gc and status: the subcommands that go through :class:`cnicore.runtime.Runtime`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cnicore._errors import InvalidInputError
from cnicore.cli._describe import describe_result
from cnicore.cli._output import EXIT_OK, exit_status
from cnicore.cli._settings import (
    _go_abs,
    _network_named,
    _parse_args_text,
    _parse_capability_args,
    _runtime,
    _Settings,
    cnitool_container_id,
)

if TYPE_CHECKING:
    from cnicore.runtime import Runtime


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


def add(args: argparse.Namespace) -> int:
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


def delete(args: argparse.Namespace) -> int:
    settings, out = args.settings, args.output
    target = _Attachment(args, settings)
    with _runtime(settings, netns=target.netns_abs) as runtime, _network_named(runtime, target.network):
        for ifname in target.ifnames(runtime):
            runtime.detach(target.container_id, target.network, target.netns_abs or None, ifname,
                           args=target.cni_args, capability_args=target.capability_args)
            if not out.json:
                out.line(f"network {target.network}: detached container {target.container_id} interface {ifname}")
    return EXIT_OK


def check(args: argparse.Namespace) -> int:
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
# gc / status
# ------------------------------------------------------------------------------------------------


def live_attachment(text: str) -> str | tuple[str, str]:
    container, sep, ifname = text.partition("/")
    if not container or (sep and not ifname):
        raise argparse.ArgumentTypeError(f"expected CONTAINER or CONTAINER/IFNAME, not {text!r}")
    return (container, ifname) if sep else container


def gc(args: argparse.Namespace) -> int:
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


def status(args: argparse.Namespace) -> int:
    settings, out = args.settings, args.output
    with _runtime(settings) as runtime, _network_named(runtime, args.network):
        runtime.status(args.network)
    if not out.json:
        out.line(f"network {args.network}: ready")
    return EXIT_OK
