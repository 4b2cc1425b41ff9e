"""The ``CNI_*`` environment: reading it as a plugin, building it as a runtime.

Reading follows the reference plugin skeleton (``pkg/skel``) step for step, because
runtimes and tests compare its error objects byte for byte:

1. The variables are visited in a fixed order: ``CNI_COMMAND``, ``CNI_CONTAINERID``,
   ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_ARGS``, ``CNI_PATH``, ``CNI_NETNS_OVERRIDE``.
   An empty or unset variable that the command requires (``CNI_COMMAND`` is always
   required) joins the *missing* list. A set variable that the command requires and
   that has a validator (container ID, interface name) is validated at once, and the
   first failure is returned immediately, before anything else is looked at.
2. A non-empty missing list raises code 4
   ``required env variables [CNI_NETNS,CNI_IFNAME,CNI_PATH] missing``.

Which variables each command requires is the skeleton's table, not the spec's: the
skeleton also insists on ``CNI_PATH`` for ADD, DEL, CHECK, GC and STATUS (the spec
calls it optional for the first three). VERSION needs only ``CNI_COMMAND``.

An *unknown* command is not an error here. The skeleton reads and validates the
configuration on stdin first and only then reports ``unknown CNI_COMMAND: X``
(code 4), so a config error wins over an unknown command. :func:`parse_environment`
therefore returns an environment whose :attr:`CNIEnvironment.command` may be
unknown (:attr:`CNIEnvironment.is_known_command` says so); the exec skeleton calls
:func:`check_known_command` after it has validated stdin. A missing ``CNI_COMMAND``
is reported in the missing list; a skeleton that prints an "about" text instead can
detect that case up front with :func:`missing_environment_variables`.

Note the skeleton of plugins built against older libraries (the Debian 1.1.1 build)
validates the container ID and interface name only after reading stdin; where both
a variable is missing and another is malformed, those builds report the missing
list. This module follows the current skeleton.
"""

from __future__ import annotations

from cnicore._errors import InvalidEnvironmentError
from cnicore.spec._validate import validate_container_id, validate_interface_name
from cnicore.spec._version import COMMANDS

TYPE_CHECKING = False  # typing is left to type checkers: it slows an exec'd plugin's start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, NoReturn

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "CNIEnvironment",
    "check_known_command",
    "missing_environment_variables",
    "parse_environment",
    "plugin_environment",
    "required_variables",
]

#: The variables the skeleton reads, in the order it reads (and reports) them.
ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
    "CNI_NETNS_OVERRIDE",
)

# The skeleton's per-command requirements (reqForCmd). CNI_COMMAND itself is
# always required and handled separately.
_REQUIRED: dict[str, frozenset[str]] = {
    "CNI_CONTAINERID": frozenset({"ADD", "CHECK", "DEL"}),
    "CNI_NETNS": frozenset({"ADD", "CHECK"}),
    "CNI_IFNAME": frozenset({"ADD", "CHECK", "DEL"}),
    "CNI_ARGS": frozenset(),
    "CNI_PATH": frozenset({"ADD", "CHECK", "DEL", "GC", "STATUS"}),
    "CNI_NETNS_OVERRIDE": frozenset(),
}

_VALIDATORS = {
    "CNI_CONTAINERID": validate_container_id,
    "CNI_IFNAME": validate_interface_name,
}


def required_variables(command: str) -> tuple[str, ...]:
    """The variables the skeleton requires for ``command``, in reporting order.

    ``CNI_COMMAND`` is always included; an unknown command requires nothing else.
    """
    return ("CNI_COMMAND", *(name for name, cmds in _REQUIRED.items() if command in cmds))


def _split_path(value: str) -> tuple[str, ...]:
    # Go's filepath.SplitList: "" is no entries, but empty entries between
    # separators are kept.
    if value == "":
        return ()
    return tuple(value.split(":"))


_FIELDS = ("command", "container_id", "netns", "ifname", "args", "path", "netns_override")


class CNIEnvironment:
    """The ``CNI_*`` variables of one plugin invocation.

    A frozen, slotted, keyword-only value like the library's attrs classes (same
    constructor, equality, hash, repr and ``FrozenInstanceError``), written by hand
    because every exec'd plugin builds one first thing and attrs costs
    milliseconds to import.

    Attributes:
        command: ``CNI_COMMAND`` as given (may be an unknown command; see
            :attr:`is_known_command`).
        container_id: ``CNI_CONTAINERID`` (``""`` when not given).
        netns: ``CNI_NETNS`` (``""`` when not given, e.g. on DEL).
        ifname: ``CNI_IFNAME``.
        args: the raw ``CNI_ARGS`` string (parse it with :func:`cnicore.spec.parse_cni_args`).
        path: ``CNI_PATH`` split on ``:`` (empty entries kept, as Go's ``SplitList``).
        netns_override: ``CNI_NETNS_OVERRIDE`` is ``true`` (any case) or ``1``: skip the
            "netns is the plugin's own" check.
    """

    __slots__ = _FIELDS
    __match_args__ = ()

    command: str
    container_id: str
    netns: str
    ifname: str
    args: str
    path: tuple[str, ...]
    netns_override: bool

    def __init__(self, *, command: str, container_id: str = "", netns: str = "", ifname: str = "", args: str = "",
                 path: Iterable[str] = (), netns_override: bool = False) -> None:
        init = object.__setattr__
        init(self, "command", command)
        init(self, "container_id", container_id)
        init(self, "netns", netns)
        init(self, "ifname", ifname)
        init(self, "args", args)
        init(self, "path", tuple(path))
        init(self, "netns_override", netns_override)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        from attrs.exceptions import FrozenInstanceError

        raise FrozenInstanceError

    def __delattr__(self, name: str) -> NoReturn:
        from attrs.exceptions import FrozenInstanceError

        raise FrozenInstanceError

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CNIEnvironment) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((CNIEnvironment, *self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle and copy through the constructor: the instance cannot be filled in afterwards.
        return (_rebuild, (type(self), dict(zip(_FIELDS, self._values(), strict=True))))

    @property
    def is_known_command(self) -> bool:
        """Whether :attr:`command` is one of ADD, DEL, CHECK, GC, STATUS, VERSION."""
        return self.command in COMMANDS

    def as_environ(self) -> dict[str, str]:
        """The variables as a runtime would pass them (see :func:`plugin_environment`)."""
        env = plugin_environment(
            command=self.command,
            container_id=self.container_id,
            netns=self.netns,
            ifname=self.ifname,
            args=self.args,
            path=self.path,
        )
        if self.netns_override:
            env["CNI_NETNS_OVERRIDE"] = "1"
        return env


def _rebuild(cls: type[CNIEnvironment], fields: dict[str, Any]) -> CNIEnvironment:
    return cls(**fields)


def missing_environment_variables(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The required variables that are empty or unset, in the skeleton's order.

    Unlike :func:`parse_environment` this runs no validators and never raises.
    """
    command = environ.get("CNI_COMMAND", "")
    return tuple(name for name in required_variables(command) if environ.get(name, "") == "")


def parse_environment(environ: Mapping[str, str]) -> CNIEnvironment:
    """Read the ``CNI_*`` variables exactly as the reference skeleton does (steps 1-2).

    Args:
        environ: the process environment (``os.environ`` or any mapping).

    Returns:
        The environment. Its command may be unknown: call :func:`check_known_command`
        once the configuration on stdin has been validated.

    Raises:
        InvalidEnvironmentError: (code 4) a required, set variable fails its validator
            (``invalid characters in containerID``, ``interface name is too long``, ...),
            checked in variable order and before the missing list; or required
            variables are missing: ``required env variables [A,B] missing``.
    """
    command = environ.get("CNI_COMMAND", "")
    missing: list[str] = []
    for name in ENVIRONMENT_VARIABLES:
        value = environ.get(name, "")
        required = name == "CNI_COMMAND" or command in _REQUIRED[name]
        if value == "":
            if required:
                missing.append(name)
        elif required and name in _VALIDATORS:
            # The skeleton returns the validator's error as is (no wrapping).
            _VALIDATORS[name](value)
    if missing:
        raise InvalidEnvironmentError(f"required env variables [{','.join(missing)}] missing")
    override = environ.get("CNI_NETNS_OVERRIDE", "")
    return CNIEnvironment(
        command=command,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        args=environ.get("CNI_ARGS", ""),
        path=_split_path(environ.get("CNI_PATH", "")),
        netns_override=override.lower() == "true" or override == "1",
    )


def check_known_command(environment: CNIEnvironment) -> None:
    """Raise code 4 ``unknown CNI_COMMAND: X`` unless the command is known.

    The skeleton does this after reading and validating stdin (step 6), so call it
    at that point to report errors in the reference's order.
    """
    if not environment.is_known_command:
        raise InvalidEnvironmentError(f"unknown CNI_COMMAND: {environment.command}")


def plugin_environment(
    *,
    command: str,
    container_id: str = "",
    netns: str = "",
    ifname: str = "",
    args: str | Iterable[tuple[str, str]] = "",
    path: Sequence[str] = (),
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a runtime gives a plugin, as libcni's ``invoke.Args`` builds it.

    All six variables are always present (possibly empty) and override the same
    names in ``base`` (typically ``os.environ``), so a stray ``CNI_ARGS`` in the
    runtime's own environment never leaks into the plugin.

    Args:
        command: ``CNI_COMMAND``.
        container_id: ``CNI_CONTAINERID``.
        netns: ``CNI_NETNS``.
        ifname: ``CNI_IFNAME``.
        args: ``CNI_ARGS`` as a ready string, or (key, value) pairs joined ``k=v;k=v``.
        path: plugin directories, joined with ``:`` into ``CNI_PATH``.
        base: the environment to start from (nothing by default).
    """
    env = dict(base or {})
    cni_args = args if isinstance(args, str) else ";".join(f"{k}={v}" for k, v in args)
    env.update(
        {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_ARGS": cni_args,
            "CNI_IFNAME": ifname,
            "CNI_PATH": ":".join(path),
        }
    )
    return env
