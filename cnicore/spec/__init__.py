"""The CNI specification as types: versions, results, environment, arguments, identifiers.

Everything here is pure: it imports only the standard library, netaddr and attrs.

The names load on first use, so that an exec'd plugin which needs only the
environment and version rules never pays for the result types (attrs, netaddr).
"""

from cnicore._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cnicore.spec._args import parse_bool_arg, parse_cni_args, split_cni_args
    from cnicore.spec._convert import convert_result
    from cnicore.spec._environ import (
        ENVIRONMENT_VARIABLES,
        CNIEnvironment,
        check_known_command,
        missing_environment_variables,
        parse_environment,
        plugin_environment,
        required_variables,
    )
    from cnicore.spec._result import (
        DNS,
        RESULT_VERSIONS,
        AnyResult,
        Interface,
        Interface040,
        IPConfig,
        IPConfig020,
        IPConfig040,
        Result,
        Result020,
        Result040,
        Route,
        go_cidr_text,
        go_ip_text,
        go_parse_cidr,
        go_parse_ip,
        parse_prev_result,
        parse_result,
    )
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
    "AnyResult",
    "CNIEnvironment",
    "COMMANDS",
    "CURRENT_VERSION",
    "Command",
    "DNS",
    "ENVIRONMENT_VARIABLES",
    "IPConfig",
    "IPConfig020",
    "IPConfig040",
    "Interface",
    "Interface040",
    "RESULT_VERSIONS",
    "Result",
    "Result020",
    "Result040",
    "ResultFamily",
    "Route",
    "check_command_allowed",
    "check_known_command",
    "command_allowed",
    "compare_versions",
    "convert_result",
    "decode_config_version",
    "go_cidr_text",
    "go_ip_text",
    "go_parse_cidr",
    "go_parse_ip",
    "missing_environment_variables",
    "parse_bool_arg",
    "parse_cni_args",
    "parse_environment",
    "parse_prev_result",
    "parse_result",
    "parse_version",
    "plugin_environment",
    "required_variables",
    "result_family",
    "select_version",
    "split_cni_args",
    "validate_container_id",
    "validate_interface_name",
    "validate_network_name",
    "version_greater",
    "versions_starting_from",
]

_LAZY = {
    "parse_bool_arg": "_args", "parse_cni_args": "_args", "split_cni_args": "_args",
    "convert_result": "_convert",
    "ENVIRONMENT_VARIABLES": "_environ", "CNIEnvironment": "_environ", "check_known_command": "_environ",
    "missing_environment_variables": "_environ", "parse_environment": "_environ", "plugin_environment": "_environ",
    "required_variables": "_environ",
    "DNS": "_result", "RESULT_VERSIONS": "_result", "AnyResult": "_result", "Interface": "_result",
    "Interface040": "_result", "IPConfig": "_result", "IPConfig020": "_result", "IPConfig040": "_result",
    "Result": "_result", "Result020": "_result", "Result040": "_result", "Route": "_result",
    "go_cidr_text": "_result", "go_ip_text": "_result", "go_parse_cidr": "_result", "go_parse_ip": "_result",
    "parse_prev_result": "_result", "parse_result": "_result",
    "validate_container_id": "_validate", "validate_interface_name": "_validate",
    "validate_network_name": "_validate",
    "ALL_VERSIONS": "_version", "COMMANDS": "_version", "CURRENT_VERSION": "_version", "Command": "_version",
    "ResultFamily": "_version", "check_command_allowed": "_version", "command_allowed": "_version",
    "compare_versions": "_version", "decode_config_version": "_version", "parse_version": "_version",
    "result_family": "_version", "select_version": "_version", "version_greater": "_version",
    "versions_starting_from": "_version",
}

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
