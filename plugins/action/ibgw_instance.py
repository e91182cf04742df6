"""Action plugin of ibgw_instance: render every instance's files on the controller, then run the module once.

A task loop over the instances costs a round trip per instance. The role's templates read the instance as
``ib_gateway_instance`` (and every role variable derived from it), so this plugin renders them here once per
instance, with that variable set as a loop would set it, as the template lookup renders (the same output byte for
byte, without the lookup's deep copy of every variable per file: 0.2 s of the 0.5 s two instances took), and sends
every instance's content to the host in one module call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

# ansible_managed and the template_* variables, as the template action and lookup make them (ansible-core 2.19-2.21).
from ansible._internal._templating._template_vars import generate_ansible_template_vars
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

# The variable each instance is rendered as, as the role's templates and variables name it.
INSTANCE_VAR = "ib_gateway_instance"


class Template(NamedTuple):
    """A role template as the template lookup renders it: its text, its folder (for includes), its variables."""

    text: str
    folder: str
    variables: dict[str, Any]


class ActionModule(ActionBase):  # type: ignore[misc]  # Ansible ships no type information
    """``instances``, ``files`` and ``fields`` become the module's per-instance ``instances``."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        """Render, then run the module with every instance; a bad argument fails before any connection."""
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        instances, files, fields = args.pop("instances", None), args.pop("files", None), args.pop("fields", {})
        _check(instances, files, fields)
        templates = {str(entry["template"]): self._template(str(entry["template"]), task_vars)
                     for entry in files if "template" in entry}
        specs = []
        for instance in instances:
            variables = {**task_vars, INSTANCE_VAR: instance}
            templar = self._templar.copy_with_new_env(available_variables=variables)
            spec: dict[str, Any] = {"name": instance["name"]}
            spec.update((key, templar.evaluate_expression(trust_as_template(str(expression))))
                        for key, expression in fields.items())
            spec["files"] = [_rendered(entry, templates, self._templar, variables) for entry in files]
            specs.append(spec)
        result.update(self._execute_module(module_args={**args, "instances": specs}, task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _template(self, name: str, task_vars: dict[str, Any]) -> Template:
        """The template file's text, folder and template variables: read once for every instance."""
        path = self._find_needle("templates", name)
        return Template(trust_as_template(self._loader.get_text_file_contents(path)), os.path.dirname(path),
                        generate_ansible_template_vars(path=name, fullpath=path,
                                                       include_ansible_managed="ansible_managed" not in task_vars))


def _rendered(entry: Mapping[str, Any], templates: Mapping[str, Template], templar: Any,
              variables: dict[str, Any]) -> dict[str, Any]:
    """The file entry with its template rendered for the instance (a content is the same for every instance)."""
    found = {key: value for key, value in entry.items() if key != "template"}
    if "template" in entry:
        template = templates[str(entry["template"])]
        local = templar.copy_with_new_env(available_variables={**variables, **template.variables},
                                          searchpath=[template.folder])
        found["content"] = local.template(template.text, escape_backslashes=False, overrides={"trim_blocks": True})
    return found


def _check(instances: object, files: object, fields: object) -> None:
    """Fail naming the argument that has the wrong shape."""
    if not isinstance(instances, list) or not all(isinstance(i, Mapping) and "name" in i for i in instances):
        raise AnsibleActionFail("instances: a list of instances, each with a name")
    if not isinstance(files, list) or not all(
            isinstance(entry, Mapping) and ("template" in entry) != ("content" in entry) for entry in files):
        raise AnsibleActionFail("files: a list of files, each with a template (rendered per instance) or a content")
    if not isinstance(fields, Mapping):
        raise AnsibleActionFail("fields: a mapping of the module's instance fields to expressions")
