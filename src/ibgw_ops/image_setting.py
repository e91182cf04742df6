"""Where the inventory sets each gateway's image, and the edit that sets a new one there (upgrade, rollback).

The inventory stays the one source of truth, so after an upgrade the CLI changes the one line that names the image,
in the file that defines it, byte for byte nothing else (ruamel.yaml finds the node, the edit is textual). When it
cannot do that safely (the value is templated or vault-encrypted, defined in several places, or a flow mapping), it
refuses before anything runs and names the exact line to change by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ibgw_ops import inventory_files
from ibgw_ops.errors import BadInput, ExitCode, OpsError

IMAGE_KEY = "ib_gateway_image"
INSTANCES_KEY = "ib_gateway_instances"
# The role's default instances (roles/ib_gateway/defaults/main.yml) when the inventory names none.
DEFAULT_INSTANCES = ({"name": "live", "mode": "live"}, {"name": "paper", "mode": "paper"})
PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")


@dataclass(frozen=True)
class Definition:
    """One place a variable is set: the file, the mapping holding it, the key's node and its value's node."""

    path: Path
    mapping: MappingNode = field(repr=False)
    key: ScalarNode
    value: Node

    @property
    def line(self) -> str:
        """``file:line: text`` of the key, as an operator would look for it."""
        text = self.path.read_text().splitlines()[self.key.start_mark.line]
        return f"{self.path}:{self.key.start_mark.line + 1}: {text.strip()}"


@dataclass(frozen=True)
class Edit:
    """Set ``key`` of ``mapping`` (a definition's value, or one instance entry) for ``instances``."""

    path: Path
    mapping: MappingNode = field(repr=False)
    key: str
    instances: frozenset[str]
    where: str


@dataclass(frozen=True)
class Plan:
    """The edits an upgrade or a rollback of a target makes, checked before anything runs."""

    edits: tuple[Edit, ...]
    modes: frozenset[str]

    def apply(self, images: Mapping[str, str]) -> list[str]:
        """Write each instance's new reference (instance name -> reference); return ``file:line: text`` per edit."""
        changes: dict[Path, list[tuple[int, int, str]]] = {}
        shown = []
        for edit in self.edits:
            values = {images[name] for name in edit.instances if name in images}
            if len(values) != 1:
                raise OpsError(f"{edit.where} serves {', '.join(sorted(edit.instances))}, which now run "
                               f"{', '.join(sorted(values)) or 'nothing reported'}: set it by hand", ExitCode.FAILED)
            value = values.pop()
            changes.setdefault(edit.path, []).append(_splice(edit, value))
            shown.append(f"{edit.where}: {edit.key}: {value}")
        for path, splices in changes.items():
            text = path.read_text()
            for start, end, new in sorted(splices, reverse=True):
                text = text[:start] + new + text[end:]
            _check_parses(path, text)
            tmp = path.with_name(path.name + ".ibgw-ops.tmp")
            tmp.write_text(text)
            tmp.chmod(path.stat().st_mode & 0o777)
            tmp.replace(path)
        return shown


def plan(inventory: Path, hostvars: Mapping[str, Mapping[str, Any]], target: str, value: str) -> Plan:
    """The edits that set the image of ``target``'s instances on every gateway host; refuse (exit 2) when unsafe.

    ``value`` is only shown in a refusal: the line to write by hand.
    """
    files = inventory_files.yaml_files(inventory)
    image_defs = _definitions(files, IMAGE_KEY)
    instance_defs = _definitions(files, INSTANCES_KEY)
    edits: dict[tuple[Path, int, str], Edit] = {}
    modes: set[str] = set()
    for host, variables in sorted(hostvars.items()):
        instances = list(variables.get(INSTANCES_KEY) or DEFAULT_INSTANCES)
        selected = [i for i in instances if target in ("all", i.get("name"), i.get("mode"))]
        if not selected:
            allowed = ["all", *sorted({str(i.get(k)) for i in instances for k in ("mode", "name")})]
            raise BadInput("TARGET", f"'{target}' matches no instance on {host}", allowed)
        modes.update(str(i.get("mode")) for i in selected)
        shared = {str(i.get("name")) for i in instances if "image" not in i}
        mode_images = {m for m, d in (variables.get("ib_gateway_mode_defaults") or {}).items() if "image" in d}
        for instance in selected:
            name = str(instance.get("name"))
            if instance.get("mode") in mode_images:
                _refuse(f"ib_gateway_mode_defaults.{instance.get('mode')}.image sets {name}'s image", [], value)
            if "image" not in instance and shared <= {str(i.get("name")) for i in selected}:
                edit = _image_edit(image_defs, variables, shared, value)
            else:
                edit = _instance_edit(instance_defs, variables, name, value)
            slot = (edit.path, edit.mapping.start_mark.index, edit.key)
            known = edits.get(slot)
            edits[slot] = replace(edit, instances=edit.instances | known.instances) if known else edit
    return Plan(tuple(edits.values()), frozenset(modes))


def _image_edit(defs: list[Definition], variables: Mapping[str, Any], shared: set[str], value: str) -> Edit:
    """The instances without an image of their own all change: edit ib_gateway_image where it is set."""
    if IMAGE_KEY not in variables:
        _refuse(f"{IMAGE_KEY} is not set in the inventory (the role's default applies)", [], value,
                f"add '{IMAGE_KEY}: {value}' to group_vars/ibgw_gateways.yml")
    definition = _single(defs, IMAGE_KEY, variables[IMAGE_KEY], value)
    return Edit(definition.path, definition.mapping, IMAGE_KEY, frozenset(shared), f"{definition.path}")


def _instance_edit(defs: list[Definition], variables: Mapping[str, Any], name: str, value: str) -> Edit:
    """Only some instances change (or the instance has its own image): set ``image`` in its own entry."""
    if INSTANCES_KEY not in variables:
        _refuse(f"{name} shares {IMAGE_KEY} with instances the target leaves alone, and the inventory sets no "
                f"{INSTANCES_KEY} (the role's default applies)", [], value,
                f"set {INSTANCES_KEY} with an entry for {name} holding 'image: {value}'")
    definition = _single(defs, INSTANCES_KEY, variables[INSTANCES_KEY], value)
    entries = definition.value.value if isinstance(definition.value, SequenceNode) else []
    entry = next((e for e in entries if isinstance(e, MappingNode) and _scalar(e, "name") == name), None)
    if entry is None or entry.flow_style:
        _refuse(f"the entry of {name} in {INSTANCES_KEY} is not a block mapping this edit can change", [definition],
                value, f"set 'image: {value}' in the entry of {name}")
    return Edit(definition.path, entry, "image", frozenset({name}), f"{definition.path} {INSTANCES_KEY}[{name}]")


def _single(defs: list[Definition], key: str, resolved: object, value: str) -> Definition:
    """The one plain definition of ``key`` whose value is what Ansible resolved, or a refusal naming the lines."""
    if len(defs) != 1:
        problem = "defined in several places" if defs else "set in no file this edit can read (an encrypted one?)"
        _refuse(f"{key} is {problem}", defs, value)
    definition = defs[0]
    plain = _plain(definition.value)
    if _opaque(definition.value) or "{{" in json.dumps(plain) or plain != resolved:
        _refuse(f"{key} is templated, vault-encrypted or set again elsewhere", defs, value)
    return definition


def _refuse(problem: str, defs: Iterable[Definition], value: str, advice: str | None = None) -> NoReturn:
    lines = "; ".join(d.line for d in defs)
    raise BadInput("inventory", f"cannot set the image safely: {problem}" + (f" ({lines})" if lines else ""),
                   advice or f"change that line by hand to the reference {value}")


def _definitions(files: list[Path], key: str) -> list[Definition]:
    """Each place ``key`` is set: top level of a vars file, any depth of an inventory source (host or group vars)."""
    found = []
    for path in files:
        text = path.read_text()
        if text.startswith("$ANSIBLE_VAULT"):
            continue
        try:
            root = YAML().compose(text)
        except YAMLError as exc:
            raise BadInput("inventory", f"{path} is not valid YAML ({exc.__class__.__name__})") from exc
        in_vars = any(part in inventory_files.VARS_DIRS for part in path.parts)
        nodes = [root] if in_vars else list(_mappings(root))
        found += [Definition(path, node, k, v) for node in nodes if isinstance(node, MappingNode)
                  for k, v in node.value if isinstance(k, ScalarNode) and k.value == key]
    return found


def _mappings(node: Node | None) -> Iterable[MappingNode]:
    if isinstance(node, MappingNode):
        yield node
        for _, value in node.value:
            yield from _mappings(value)


def _scalar(mapping: MappingNode, key: str) -> str | None:
    return next((str(v.value) for k, v in mapping.value if k.value == key and isinstance(v, ScalarNode)), None)


def _opaque(node: Node) -> bool:
    """A vault-encrypted value, or a block scalar (a reference is one line)."""
    return str(node.tag).endswith("vault") or (isinstance(node, ScalarNode) and node.style in ("|", ">"))


def _plain(node: Node) -> object:
    """A node as plain data (the comparison with what Ansible resolved)."""
    if isinstance(node, MappingNode):
        return {str(k.value): _plain(v) for k, v in node.value}
    if isinstance(node, SequenceNode):
        return [_plain(v) for v in node.value]
    if isinstance(node, ScalarNode) and node.style is None:
        return YAML(typ="safe").load(node.value)
    return node.value


def _splice(edit: Edit, value: str) -> tuple[int, int, str]:
    """The text span to replace and its new text: the value's scalar, or a new ``key: value`` line."""
    for key, node in edit.mapping.value:
        if key.value == edit.key:
            if not isinstance(node, ScalarNode) or node.style in ("|", ">"):
                raise OpsError(f"{edit.where}: {edit.key} is no single-line value: set it by hand", ExitCode.FAILED)
            return node.start_mark.index, node.end_mark.index, _render(value, node.style)
    # A new line below the entry's name, indented like it (the entry matched by its name has one).
    name_key, name_value = next((k, v) for k, v in edit.mapping.value if k.value == "name")
    text = edit.path.read_text()
    line_end = text.find("\n", name_value.end_mark.index)
    at = len(text) if line_end < 0 else line_end + 1
    lead = "\n" if line_end < 0 else ""
    return at, at, f"{lead}{' ' * name_key.start_mark.column}{edit.key}: {_render(value, None)}\n"


def _render(value: str, style: str | None) -> str:
    """The reference as a YAML scalar in the style the line had (plain when it reads back the same)."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not PLAIN.match(value):
        return json.dumps(value)
    return value


def _check_parses(path: Path, text: str) -> None:
    try:
        YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise OpsError(f"{path}: the edit would not be valid YAML ({exc}); nothing written", ExitCode.FAILED) from exc
