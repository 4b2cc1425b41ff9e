"""The CNI specification as types: versions, results, environment, arguments, identifiers.

Everything here is pure: it imports only the standard library, netaddr and attrs.
"""

from cnicore.spec._args import parse_bool_arg, parse_cni_args, split_cni_args
from cnicore.spec._validate import validate_container_id, validate_interface_name, validate_network_name
from cnicore.spec._version import (
    ALL_VERSIONS,
    COMMANDS,
    CURRENT_VERSION,
    Command,
    ResultFamily,
    check_command_allowed,
    command_allowed,
    compare_versions,
    decode_config_version,
    parse_version,
    result_family,
    select_version,
    version_greater,
    versions_starting_from,
)

__all__ = [
    "ALL_VERSIONS",
    "COMMANDS",
    "CURRENT_VERSION",
    "Command",
    "ResultFamily",
    "check_command_allowed",
    "command_allowed",
    "compare_versions",
    "decode_config_version",
    "parse_bool_arg",
    "parse_cni_args",
    "parse_version",
    "result_family",
    "select_version",
    "split_cni_args",
    "validate_container_id",
    "validate_interface_name",
    "validate_network_name",
    "version_greater",
    "versions_starting_from",
]
