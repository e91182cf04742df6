"""The inventory's YAML files, checked on the controller before any verb reaches a host.

ansible-playbook stops on a broken group_vars file with "YAML parsing failed: ..." and exit 1, naming neither the
file nor the line; so every verb composes each file first and refuses a broken one with exit 2, naming both. Only
composed, never constructed: Ansible's own tags (``!vault``, ``!unsafe``) need no constructor here. A whole
vault-encrypted file is skipped: when Ansible fails on it, ``vault.unparsed`` decrypts it to name its line.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ibgw_ops import yaml_text
from ibgw_ops.errors import BadInput

VARS_DIRS = ("group_vars", "host_vars")
YAML_SUFFIXES = (".yml", ".yaml")
# provision's settings in a GCP inventory folder: no inventory source (ansible.cfg ignores it), checked by provision.
NOT_SOURCES = frozenset({"gcp.yml"})
VAULT_HEADER = b"$ANSIBLE_VAULT;"
# Ansible's parser: libyaml's when pyyaml has it (it takes a tab after "key:", the pure-Python one does not).
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
INSTANCES_KEY = "ib_gateway_instances"
# The host's SSH private key, under either of Ansible's names.
KEY_FILE_VARS = frozenset({"ansible_ssh_private_key_file", "ansible_private_key_file"})
KEY_FILE_ALLOWED = "the path of an existing SSH private key file on the controller"
FIELD = "inventory"
ALLOWED = "UTF-8 text in YAML syntax, as Ansible reads inventory and vars files"


def yaml_files(inventory: Path) -> list[Path]:
    """The YAML files of an inventory folder, or an inventory file and the vars folders beside it.

    As Ansible reads them: ``.yml`` and ``.yaml`` files, and in the vars folders files without an extension too;
    hidden files and editors' leftovers are no part of it.
    """
    root = inventory if inventory.is_dir() else inventory.parent
    if inventory.is_dir():
        found = [p for p in inventory.rglob("*") if p.name not in NOT_SOURCES]
    else:
        found = [inventory, *(p for folder in VARS_DIRS for p in (root / folder).rglob("*"))]
    return sorted(p for p in found if p.is_file() and _yaml_name(p.relative_to(root)))


def check(inventory: Path) -> Path:
    """``inventory``, once each of its YAML files parses; else a refusal naming the file and the line."""
    for path in yaml_files(inventory):
        data = path.read_bytes()
        if not data.startswith(VAULT_HEADER):
            check_text(str(path), data)
    return inventory


def check_text(name: str, data: bytes) -> None:
    """Refuse ``data`` (the text of the file ``name`` shows) unless it is UTF-8 and parses as YAML."""
    text = yaml_text.decode(name, data, FIELD, ALLOWED)
    try:
        for _ in yaml.compose_all(text, Loader=LOADER):
            pass
    except yaml.YAMLError as exc:
        raise yaml_text.invalid(name, text, exc, FIELD, ALLOWED) from None


def instance_modes(inventory: Path) -> dict[str, str]:
    """Instance name -> mode, as the inventory's plain files set ``ib_gateway_instances`` (empty when none does).

    Read from the text, not from Ansible (no vault password, no host): an instance defined in an encrypted or
    templated value is not seen, and the role's own checks still apply to it.
    """
    modes: dict[str, str] = {}
    for path in yaml_files(inventory):
        data = path.read_bytes()
        if data.startswith(VAULT_HEADER):
            continue
        for document in yaml.compose_all(data.decode("utf-8"), Loader=LOADER):
            for entry in _instance_entries(document):
                name, mode = entry.get("name"), entry.get("mode")
                if isinstance(name, str) and isinstance(mode, str):
                    modes[name] = mode
    return modes


def _instance_entries(node: yaml.Node | None) -> list[dict[str, object]]:
    """The scalar keys of each entry of every ``ib_gateway_instances`` list under ``node``."""
    found: list[dict[str, object]] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == INSTANCES_KEY and isinstance(value, yaml.SequenceNode):
                found += [{k.value: v.value for k, v in entry.value if isinstance(v, yaml.ScalarNode)}
                          for entry in value.value if isinstance(entry, yaml.MappingNode)]
            else:
                found += _instance_entries(value)
    return found


def check_key_files(inventory: Path) -> None:
    """Refuse, before a verb reaches a host, every SSH key file that is not a file (ssh would only warn).

    Plain absolute (or ``~``) paths only: a templated or relative one is Ansible's to resolve.
    """
    missing = []
    for path in yaml_files(inventory):
        data = path.read_bytes()
        if data.startswith(VAULT_HEADER):
            continue
        for document in yaml.compose_all(data.decode("utf-8"), Loader=LOADER):
            for key, value in _scalars(document, KEY_FILE_VARS):
                named = Path(value).expanduser()
                if "{{" not in value and named.is_absolute() and not named.is_file():
                    missing.append(f"{key} {named} (in {path})")
    if missing:
        raise BadInput("inventory", f"{'; '.join(missing)}: not a file", KEY_FILE_ALLOWED)


def _scalars(node: yaml.Node | None, keys: frozenset[str]) -> list[tuple[str, str]]:
    """(key, value) of each scalar value under ``node`` whose key is one of ``keys``."""
    found: list[tuple[str, str]] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value in keys and isinstance(value, yaml.ScalarNode):
                found.append((key.value, value.value))
            else:
                found += _scalars(value, keys)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _scalars(item, keys)
    return found


def _yaml_name(relative: Path) -> bool:
    """Whether Ansible reads the file at ``relative`` (to the inventory's folder) as YAML."""
    if any(part.startswith(".") for part in relative.parts) or relative.name.endswith("~"):
        return False
    return relative.suffix in YAML_SUFFIXES or (relative.parts[0] in VARS_DIRS and not relative.suffix)
