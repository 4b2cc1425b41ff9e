"""``validate``: load configuration files as libcni would and report every error, running nothing."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from cnicore._errors import CNIError, InvalidConfigError, InvalidInputError
from cnicore.cli._output import EXIT_INPUT, EXIT_OK, EXIT_SYSTEM, _is_input_error, _Output

if TYPE_CHECKING:
    from cnicore.config import NetworkConfigList


class _Finding:
    """One problem in one file."""

    def __init__(self, file: str, exc: CNIError, key_prefix: str = "") -> None:
        self.file = file
        self.code = exc.code
        self.message = exc.msg
        self.key = (key_prefix + exc.key) if exc.key else None
        self.value = exc.value
        self.has_value = exc.has_value
        self.input_error = _is_input_error(exc)

    def text(self) -> str:
        where = f"{self.key}: " if self.key else ""
        return f"{self.file}: {where}{self.message} (CNI code {self.code})"

    def to_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"file": self.file, "key": self.key, "message": self.message, "code": self.code}
        if self.has_value:
            obj["value"] = self.value
        return obj


def _config_files(path: str) -> list[str] | CNIError:
    from cnicore.config import CONFIG_EXTENSIONS, conf_files

    if os.path.isdir(path):
        try:
            files = conf_files(path, CONFIG_EXTENSIONS)
        except CNIError as exc:
            return exc
        if not files:
            return InvalidConfigError(f"no {', '.join(CONFIG_EXTENSIONS)} files in directory {path}", key=None)
        return files
    if not os.path.lexists(path):
        return InvalidInputError(f"no such file or directory: {path}")
    return [path]


def _plugin_documents(file: str, network: NetworkConfigList | None) -> list[tuple[str, dict[str, Any]]]:
    """(key prefix, the plugin's configuration as the plugin would receive it) for each plugin of a file.

    From the loaded network when the configuration engine accepted the file;
    otherwise from the raw JSON, so that a file with a list-level error still has
    its plugins checked.
    """
    import json

    from cnicore._json import decode
    from cnicore.config import build_request

    listed = file.endswith(".conflist")
    if network is not None:
        documents = []
        for index in range(len(network.plugins)):
            document = json.loads(build_request(network, index))
            documents.append((f"plugins[{index}]." if listed else "", document))
        return documents
    from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular

    try:
        raw = decode(read_regular(file, MAX_DOCUMENT_BYTES), what="network config")
    except (OSError, CNIError):
        return []
    if not isinstance(raw, dict):
        return []
    if not listed:
        return [("", raw)]
    plugins = raw.get("plugins")
    if not isinstance(plugins, list):
        return []
    found = []
    for index, plugin in enumerate(plugins):
        if isinstance(plugin, dict):
            document = dict(plugin)
            for key in ("name", "cniVersion"):
                if isinstance(raw.get(key), str):
                    document[key] = raw[key]
            found.append((f"plugins[{index}].", document))
    return found


def _plugin_checks(file: str, documents: list[tuple[str, dict[str, Any]]]) -> list[_Finding]:
    from cnicore.ipam import load_ipam_config
    from cnicore.plugins import load_bridge_config

    findings = []
    for prefix, document in documents:
        ipam = document.get("ipam")
        if isinstance(ipam, dict) and ipam.get("type") == "host-local":
            try:
                load_ipam_config(document)
            except CNIError as exc:
                findings.append(_Finding(file, exc, prefix))
        if document.get("type") == "bridge":
            try:
                load_bridge_config(document)
            except CNIError as exc:
                findings.append(_Finding(file, exc, prefix))
    return findings


def _validate_file(file: str) -> tuple[NetworkConfigList | None, list[_Finding]]:
    from cnicore.config import conf_list_from_conf, load_network_config_list, load_plugin_config

    findings: list[_Finding] = []
    network = None
    try:
        if file.endswith(".conflist"):
            network = load_network_config_list(file)
        else:
            network = conf_list_from_conf(load_plugin_config(file))
    except CNIError as exc:
        findings.append(_Finding(file, exc))
    seen = {finding.key for finding in findings}
    for finding in _plugin_checks(file, _plugin_documents(file, network)):
        if finding.key is None or finding.key not in seen:  # the engine already said it
            findings.append(finding)
    return network, findings


def validate(args: argparse.Namespace) -> int:
    from cnicore.config import find_duplicate_networks

    out: _Output = args.output
    findings: list[_Finding] = []
    networks: list[NetworkConfigList] = []
    checked: list[tuple[str, NetworkConfigList | None, list[_Finding]]] = []
    for path in args.paths:
        files = _config_files(path)
        if isinstance(files, CNIError):
            finding = _Finding(path, files)
            findings.append(finding)
            checked.append((path, None, [finding]))
            continue
        for file in files:
            network, found = _validate_file(file)
            findings += found
            checked.append((file, network, found))
            if network is not None:
                networks.append(network)
    by_file = {file: found for file, _, found in checked}
    for duplicate in find_duplicate_networks(networks):
        exc = InvalidConfigError(f'duplicate network name "{duplicate.name}": also defined in {duplicate.first}',
                                 key="name", value=duplicate.name)
        finding = _Finding(duplicate.second or "", exc)
        findings.append(finding)
        by_file.setdefault(duplicate.second or "", []).append(finding)
    if out.json:
        out.document([finding.to_object() for finding in findings])
    else:
        for file, network, _ in checked:
            found = by_file.get(file, [])
            if not found and network is not None:
                plugins = ", ".join(p.type for p in network.plugins)
                out.line(f"{file}: ok (network {network.name}, cniVersion {network.cni_version or '(none)'}, "
                         f"plugins: {plugins})")
            for finding in found:
                out.line(finding.text())
        valid = sum(1 for file, network, _ in checked if network is not None and not by_file.get(file))
        out.line(f"{len(checked)} file(s) checked: {valid} valid, {len(findings)} error(s)")
    if not findings:
        return EXIT_OK
    return EXIT_INPUT if all(f.input_error for f in findings) else EXIT_SYSTEM
