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
--backend      ``CNICORE_BACKEND``  auto (any built-in link backend)
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

Layout, by responsibility: ``_parser`` (the argument parser, one entry per subcommand
in its ``COMMANDS`` table), ``_main`` (:func:`main`: parse, apply the settings, run the
handler, map errors to exit statuses), ``_settings`` (global options, environment and
defaults; the runtime they configure), ``_output`` (where and how results and errors
are written; exit statuses), ``_attach`` (add, del, check, gc, status), ``_describe``
(results for humans), ``_validate`` and ``_ls``, and ``_tools`` (demo, install-plugins).
Each subcommand is a function taking the parsed arguments and returning the exit status.
"""

from cnicore.cli._describe import describe_result
from cnicore.cli._main import main
from cnicore.cli._output import EXIT_INPUT, EXIT_OK, EXIT_SYSTEM, EXIT_USAGE, exit_status
from cnicore.cli._parser import build_parser
from cnicore.cli._settings import DEFAULT_CACHE_DIR, DEFAULT_CONF_DIR, DEFAULT_PLUGIN_PATH, cnitool_container_id

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
