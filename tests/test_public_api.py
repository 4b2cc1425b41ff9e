"""The public names of the top-level package, cnicore.spec and cnicore.testing are pinned.

Adding a name is a decision (update the set here); losing one is a break for users.
"""

from __future__ import annotations

import importlib

import pytest

import cnicore

PINNED = {
    "cnicore": {
        "AddressConflictError", "AddressExhaustedError", "AlreadyExistsError", "CNIError", "DecodingError",
        "IOFailureError", "IncompatibleVersionError", "InternalError", "InvalidConfigError",
        "InvalidEnvironmentError", "InvalidInputError", "InvalidNetNSError", "LimitedConnectivityError",
        "NamespaceNotFoundError", "NotFoundError", "PermissionDeniedError", "PluginNotAvailableError",
        "SystemFailure", "TryAgainLaterError", "UnknownContainerError", "UnsupportedFieldError",
        "__version__", "error_from_object",
    },
    "cnicore.spec": {
        "ALL_VERSIONS", "AnyResult", "CNIEnvironment", "COMMANDS", "CURRENT_VERSION", "Command", "DNS",
        "ENVIRONMENT_VARIABLES", "IPConfig", "IPConfig020", "IPConfig040", "Interface", "Interface040",
        "RESULT_VERSIONS", "Result", "Result020", "Result040", "ResultFamily", "Route", "check_command_allowed",
        "check_known_command", "command_allowed", "compare_versions", "convert_result", "decode_config_version",
        "go_cidr_text", "go_ip_text", "go_parse_cidr", "go_parse_ip", "missing_environment_variables",
        "parse_bool_arg", "parse_cni_args", "parse_environment", "parse_prev_result", "parse_result",
        "parse_version", "plugin_environment", "required_variables", "result_family", "select_version",
        "split_cni_args", "validate_container_id", "validate_interface_name", "validate_network_name",
        "version_greater", "versions_starting_from",
    },
    "cnicore.testing": {
        "allocatable", "cni_environments", "conflists", "dns_settings", "interfaces", "invalid_cni_environments",
        "invalid_conflists", "invalid_plugin_configs", "ip_addresses", "ip_configs", "ip_networks",
        "ipam_configs", "json_values", "mutated_result_objects", "network_names", "plugin_documents",
        "plugin_types", "range_set_specs", "range_sets", "result_texts", "results", "routes",
        "single_configs", "spec_versions",
    },
}


@pytest.mark.parametrize("module_name", sorted(PINNED))
def test_public_names_are_pinned_and_resolve(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == PINNED[module_name]
    for name in module.__all__:
        assert hasattr(module, name), name


def test_every_error_class_has_its_code_and_is_documented() -> None:
    for name in cnicore.__all__:
        obj = getattr(cnicore, name)
        if isinstance(obj, type) and issubclass(obj, cnicore.CNIError):
            assert obj.__doc__, name
            assert obj("m").code == obj.default_code


@pytest.mark.parametrize("module_name", ["cnicore.spec", "cnicore.plugins", "cnicore.stores", "cnicore.backends"])
def test_lazy_packages_list_resolve_and_refuse_names(module_name: str) -> None:
    """The packages whose names load on first use (cnicore._lazy): dir() is __all__, a name resolves to its
    submodule's object and is kept, an unknown name is an AttributeError naming the package."""
    module = importlib.import_module(module_name)
    assert dir(module) == sorted(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        assert vars(module)[name] is value
        assert getattr(importlib.import_module(f"{module_name}.{module._LAZY[name]}"), name) is value
    assert set(module._LAZY) == set(module.__all__)
    with pytest.raises(AttributeError, match=f"module '{module_name}' has no attribute 'no_such_name'"):
        getattr(module, "no_such_name")  # noqa: B009
