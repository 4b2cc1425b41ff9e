"""The argument parser: global options, one subparser per subcommand, the table of handlers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeAlias

from cnicore.cli import _attach, _ls, _tools, _validate
from cnicore.cli._settings import _positive_float, backend_names

_Handler = Callable[[argparse.Namespace], int]
_SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

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
    group.add_argument("--backend", choices=backend_names(), default=default,
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
    parser.add_argument("--live", metavar="ID[/IFNAME]", action="append", type=_attach.live_attachment,
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
                            description="Write the plugin executables (loopback, bridge, host-local, tuning, firewall, "
                                        "portmap, mesos-cni-port-mapper) into DIR, for CNI_PATH.")
    parser.add_argument("dir", metavar="DIR")
    return parser


#: name -> (adds the subparser, handles the parsed arguments, takes the global options)
COMMANDS: dict[str, tuple[Callable[[_SubParsers], argparse.ArgumentParser], _Handler, bool]] = {
    "add": (_add_add, _attach.add, True),
    "del": (_add_del, _attach.delete, True),
    "check": (_add_check, _attach.check, True),
    "gc": (_add_gc, _attach.gc, True),
    "status": (_add_status, _attach.status, True),
    "validate": (_add_validate, _validate.validate, True),
    "ls": (_add_ls, _ls.ls, True),
    "demo": (_add_demo, _tools.demo, False),
    "install-plugins": (_add_install, _tools.install_plugins, False),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="cnicore", description="Container Network Interface tools: attach namespaces to CNI networks "
                                    "(compatible with cnitool), validate configurations, inspect IPAM stores.",
        epilog=_ENV_TEXT + "\n\n" + _EXIT_CODES_TEXT, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_global_options(parser, in_subcommand=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (add, handler, global_options) in COMMANDS.items():
        subparser = add(sub)
        if global_options:
            _add_global_options(subparser, in_subcommand=True)
        subparser.set_defaults(handler=handler, command=name)
    return parser
