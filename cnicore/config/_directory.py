"""Finding networks in a configuration directory (``/etc/cni/net.d``).

Two lookups exist, and both are here.

**By name** (:func:`load_network_config`, libcni's ``LoadNetworkConf``):

1. every ``*.conflist`` in the directory, sorted by file name, is loaded with its
   sibling plugins; *any* parse failure aborts the lookup; the first whose ``name``
   matches wins;
2. otherwise (deprecated single-plugin configs) :func:`load_conf`: every ``*.conf``
   and ``*.json``, sorted, parsed; any parse failure aborts; the first whose
   ``name`` matches is upconverted to a one-plugin list.

With ``validate=True`` the network found is then validated (name, plugin types,
version); other files only have to parse, as in libcni.

So a ``.conflist`` always beats a same-named ``.conf``. Errors: ``no net
configurations found in <dir>`` when there is no ``.conf``/``.json`` at all and no
``.conflist`` either, otherwise ``no net configuration with name "<name>" in
<dir>``. A missing directory is an empty one.

**All of them** (:func:`list_networks`, what runtimes such as kubelet, containerd
and CRI-O do): every ``*.conf``, ``*.conflist`` and ``*.json``, ordered by full
path (so ``10-a.conf`` < ``10-a.conflist`` < ``99-x.json``); ``.conflist`` files are
loaded as lists, the others as single configs upconverted; a file that fails is
reported in :attr:`NetworkListing.failures` instead of aborting, and the first
valid network is the default. Two files defining the same network name are
reported by :func:`find_duplicate_networks` and refused by
:func:`check_unique_network_names`: which one a runtime would pick depends on its
order, so cnicore refuses to guess.

Extensions are matched exactly as Go's ``filepath.Ext`` sees them (the text from
the last dot of the file name): ``x.conf.bak`` and ``x.CONF`` are ignored.
Sub-directories are skipped (the sibling plugin folders live there).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import attrs

from cnicore._errors import CNIError, InvalidConfigError, IOFailureError
from cnicore.config._model import NetworkConfigList, PluginConfig
from cnicore.config._parse import (
    conf_list_from_conf,
    load_network_config_list,
    load_plugin_config,
    validate_network_config_list,
    validate_plugin_config,
)

__all__ = [
    "CONFIG_EXTENSIONS",
    "DuplicateNetwork",
    "NetworkListing",
    "check_unique_network_names",
    "conf_files",
    "find_duplicate_networks",
    "list_networks",
    "load_conf",
    "load_network_config",
]

#: The extensions a runtime lists: single configs, lists, and JSON single configs.
CONFIG_EXTENSIONS: tuple[str, ...] = (".conf", ".conflist", ".json")


def _go_ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def conf_files(directory: str | os.PathLike[str], extensions: Iterable[str]) -> list[str]:
    """The files of ``directory`` whose extension is exactly one of ``extensions`` (libcni's ``ConfFiles``).

    Returns full paths sorted by file name; sub-directories are skipped; a missing
    directory gives ``[]``.

    Raises:
        IOFailureError: (code 5) the path exists but cannot be listed (unreadable, or
            not a directory).
    """
    wanted = tuple(extensions)
    base = os.fspath(directory)
    try:
        with os.scandir(base) as entries:
            names = sorted(
                (entry.name for entry in entries
                 if not entry.is_dir(follow_symlinks=False) and _go_ext(entry.name) in wanted),
                key=lambda n: n.encode("utf-8", "surrogateescape"),
            )
    except FileNotFoundError:
        return []
    except NotADirectoryError as exc:
        # Go opens the file and then fails to list it.
        raise IOFailureError(f"readdirent {base}: not a directory") from exc
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise IOFailureError(f"open {base}: {reason}") from exc
    return [os.path.join(base, name) for name in names]


def load_conf(directory: str | os.PathLike[str], name: str, *, validate: bool = True) -> PluginConfig:
    """The first ``.conf``/``.json`` (sorted) whose ``name`` is ``name`` (libcni's ``LoadConf``).

    Raises:
        InvalidConfigError: (code 7) ``no net configurations found in <dir>`` or
            ``no net configuration with name "<name>" in <dir>``.
        CNIError: the first file that fails to parse aborts the lookup with its error.
    """
    base = os.fspath(directory)
    files = conf_files(base, (".conf", ".json"))
    if not files:
        raise InvalidConfigError(f"no net configurations found in {base}", key="name", value=name)
    for file in files:
        # Other files only have to parse (libcni's rule); validation applies to the match.
        plugin = load_plugin_config(file, validate=False)
        if plugin.name == name:
            if validate:
                validate_plugin_config(plugin, require_name=True)
            return plugin
    raise InvalidConfigError(f'no net configuration with name "{name}" in {base}', key="name", value=name)


def load_network_config(directory: str | os.PathLike[str], name: str, *,
                        validate: bool = True) -> NetworkConfigList:
    """Find the network ``name`` in ``directory`` (libcni's ``LoadNetworkConf``; see the module docstring).

    Raises:
        InvalidConfigError: (code 7) not found (messages as libcni's).
        CNIError: any file that fails to load aborts the lookup with its error.
    """
    base = os.fspath(directory)
    lists = conf_files(base, (".conflist",))
    for file in lists:
        network = load_network_config_list(file, validate=False)
        if network.name == name:
            if validate:
                validate_network_config_list(network)
            return network
    try:
        plugin = load_conf(base, name, validate=validate)
    except InvalidConfigError as exc:
        if lists and exc.msg.startswith("no net configurations found"):
            raise InvalidConfigError(f'no net configuration with name "{name}" in {base}', key="name",
                                     value=name) from exc
        raise
    return conf_list_from_conf(plugin, validate=validate)


@attrs.frozen(kw_only=True)
class NetworkListing:
    """Every network of a directory, and the files that could not be loaded.

    Attributes:
        networks: the loaded networks, in file order (the first is the default).
        failures: (path, error) for each file that failed, in file order.
    """

    networks: tuple[NetworkConfigList, ...]
    failures: tuple[tuple[str, CNIError], ...]

    @property
    def default(self) -> NetworkConfigList | None:
        """The first network that loaded, as runtimes choose their default network."""
        return self.networks[0] if self.networks else None

    def by_name(self, name: str) -> NetworkConfigList | None:
        """The first network called ``name``, or None."""
        return next((n for n in self.networks if n.name == name), None)


def list_networks(directory: str | os.PathLike[str], *, validate: bool = True) -> NetworkListing:
    """Load every network of ``directory`` the way runtimes do, reporting failures instead of aborting.

    Raises:
        IOFailureError: (code 5) only when the directory itself cannot be read.
    """
    networks: list[NetworkConfigList] = []
    failures: list[tuple[str, CNIError]] = []
    files = sorted(conf_files(directory, CONFIG_EXTENSIONS), key=lambda p: p.encode("utf-8", "surrogateescape"))
    for file in files:
        try:
            if file.endswith(".conflist"):
                networks.append(load_network_config_list(file, validate=validate))
            else:
                networks.append(conf_list_from_conf(load_plugin_config(file, validate=validate),
                                                    validate=validate))
        except CNIError as exc:
            failures.append((file, exc))
    return NetworkListing(networks=tuple(networks), failures=tuple(failures))


@attrs.frozen(kw_only=True)
class DuplicateNetwork:
    """Two files that define the same network name.

    Attributes:
        name: the network name.
        first: the file of the first definition (in listing order).
        second: the file of a later definition.
    """

    name: str
    first: str | None
    second: str | None


def find_duplicate_networks(networks: Sequence[NetworkConfigList]) -> tuple[DuplicateNetwork, ...]:
    """Each later network whose name an earlier one already used, paired with the first definition."""
    seen: dict[str, NetworkConfigList] = {}
    found: list[DuplicateNetwork] = []
    for network in networks:
        earlier = seen.get(network.name)
        if earlier is None:
            seen[network.name] = network
        else:
            found.append(DuplicateNetwork(name=network.name, first=earlier.path, second=network.path))
    return tuple(found)


def check_unique_network_names(networks: Sequence[NetworkConfigList]) -> None:
    """Refuse two definitions of one network name.

    Raises:
        InvalidConfigError: (code 7) ``duplicate network name "<name>" in <first> and <second>``
            for the first duplicate found.
    """
    duplicates = find_duplicate_networks(networks)
    if duplicates:
        dup = duplicates[0]
        raise InvalidConfigError(f'duplicate network name "{dup.name}" in {dup.first} and {dup.second}',
                                 key="name", value=dup.name)
