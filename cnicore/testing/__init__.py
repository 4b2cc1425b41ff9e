"""Hypothesis strategies for CNI values, for the property-based tests of tools built on CNI.

Install with the ``testing`` extra (it brings ``hypothesis``). cnicore's own
test suite uses these same strategies.

Results (every spec version): :func:`results`, :func:`result_texts`,
:func:`interfaces`, :func:`ip_configs`, :func:`routes`, :func:`dns_settings`,
:func:`ip_addresses`, :func:`ip_networks`, :func:`mutated_result_objects`
(near-valid documents for fuzzing), :func:`json_values`.

Configurations and environments: :func:`spec_versions`, :func:`network_names`,
:func:`plugin_types`, :func:`plugin_documents`, :func:`single_configs`,
:func:`conflists`, :func:`invalid_plugin_configs` and :func:`invalid_conflists`
(each draws ``(document bytes, expected CNI code)``), :func:`cni_environments`,
:func:`invalid_cni_environments` (draws ``(environ, 4)``).

IPAM: :func:`range_sets` (with a given number of free addresses),
:func:`range_set_specs`, :func:`ipam_configs`, :func:`allocatable`.
"""

from cnicore.testing._config import (
    cni_environments,
    conflists,
    invalid_cni_environments,
    invalid_conflists,
    invalid_plugin_configs,
    network_names,
    plugin_documents,
    plugin_types,
    single_configs,
    spec_versions,
)
from cnicore.testing._ipam import allocatable, ipam_configs, range_set_specs, range_sets
from cnicore.testing._results import (
    dns_settings,
    interfaces,
    ip_addresses,
    ip_configs,
    ip_networks,
    json_values,
    mutated_result_objects,
    result_texts,
    results,
    routes,
)

__all__ = [
    "allocatable",
    "cni_environments",
    "conflists",
    "dns_settings",
    "interfaces",
    "invalid_cni_environments",
    "invalid_conflists",
    "invalid_plugin_configs",
    "ip_addresses",
    "ip_configs",
    "ip_networks",
    "ipam_configs",
    "json_values",
    "mutated_result_objects",
    "network_names",
    "plugin_documents",
    "plugin_types",
    "range_set_specs",
    "range_sets",
    "result_texts",
    "results",
    "routes",
    "single_configs",
    "spec_versions",
]
