"""Load the template engine in ansible-playbook's main process, before a play's first worker forks.

Every task runs on every host in a worker process forked from the main process. ansible-core loads Jinja's lexer,
its filter and test plugins and a collection's filters on first use in a process, and the main process of our
plays never templates before the first fork, so every worker loaded them again: 15-20 ms of each of a no-op
deploy's 28 task events (docs/benchmarks.md, round four). This callback runs in the main process when a play
starts; what it loads there, every later fork inherits.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader
from ansible.template import Templar, trust_as_template

DOCUMENTATION = """
name: template_preload
type: aggregate
short_description: Load the template engine once, before the play's workers fork
description:
  - When a play starts, compiles a template using a filter and a test in the main process (Jinja's lexer, and the
    built-in filter and test plugins), and loads a filter of each of this collection's filter plugin files.
  - Every task's worker is forked from the main process afterwards and inherits them instead of loading them again.
requirements:
  - enabled in callbacks_enabled (the shipped ansible.cfg does)
author: ibgw-ops
"""

# Compiles (the lexer) and uses a filter and a test: ansible-core loads every built-in filter, or every built-in
# test, on the first use of one.
PRELOAD_TEMPLATE = "{{ '' | string is string }}"
# The collection of this plugin: ansible_collections.<namespace>.<name>.plugins.callback.<module>.
COLLECTION = ".".join(__name__.split(".")[1:3])
FILTER_FOLDER = Path(__file__).resolve().parent.parent / "filter"


def collection_filters() -> list[str]:
    """One filter of each of the collection's filter plugin files, by its full name: loading one loads its file."""
    names = []
    for path in sorted(FILTER_FOLDER.glob("*.py")):
        plugin = import_module(f"ansible_collections.{COLLECTION}.plugins.filter.{path.stem}")
        names.append(f"{COLLECTION}.{next(iter(plugin.FilterModule().filters()))}")
    return names


class CallbackModule(CallbackBase):  # type: ignore[misc]  # Ansible ships no type information
    """Preloads at each play's start (the later plays find everything loaded: a few microseconds)."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "ibgw_ops.gateway.template_preload"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play: Any) -> None:
        """Before the play's first task: its workers fork from this process."""
        Templar(loader=play.get_loader()).template(trust_as_template(PRELOAD_TEMPLATE))
        for name in collection_filters():
            filter_loader.get(name)
