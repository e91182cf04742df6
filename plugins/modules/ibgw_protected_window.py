"""Ansible module: refuse to stop or restart live gateways inside the protected window (market hours by default).

Runs on the host, so plain ``ansible-playbook`` runs are guarded exactly like ``ibgw-ops`` ones; the window's
arithmetic is ``session_clock`` (the CLI's own module, linked into module_utils).
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_protected_window
short_description: Fail when now falls inside the protected window, unless forced
description:
  - >-
    Fails with a message starting "PROTECTED WINDOW:" inside the window unless force is true, and with one
    starting "BAD INPUT:" when the window's time zone, days or times are not valid. Never changes anything.
options:
  window: {type: dict, required: true, description: "{time_zone, days, start, end}; {} for none."}
  force: {type: bool, default: false, description: 'Act even inside the window.'}
  action: {type: str, required: true, description: 'What would be done (for the message).'}
  instances: {type: list, elements: str, required: true, description: 'The live instances concerned.'}
"""

from datetime import UTC, datetime  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.session_clock import Window  # noqa: E402


def main() -> None:
    """Parse the window, compare with now, refuse or pass."""
    module = AnsibleModule(
        argument_spec={
            "window": {"type": "dict", "required": True},
            "force": {"type": "bool", "default": False},
            "action": {"type": "str", "required": True},
            "instances": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not params["window"]:
        module.exit_json(changed=False, inside=False)
    try:
        window = Window.parse(params["window"])
    except ValueError as exc:
        module.fail_json(msg=f"BAD INPUT: ib_gateway_protected_window.{exc}")
    now = datetime.now(UTC)
    inside = window.contains(now)
    spec = params["window"]
    described = f"{','.join(spec['days'])} {spec['start']}-{spec['end']} {spec['time_zone']}"
    if inside and not params["force"]:
        module.fail_json(
            msg=f"PROTECTED WINDOW: refusing to {params['action']} live gateway(s) {', '.join(params['instances'])} "
                f"inside the protected window ({described}; now {now.astimezone(window.tz):%a %H:%M %Z}); nothing "
                "was changed. Run again with --force (ansible: -e ib_gateway_force=true) if you mean it.",
            inside=True)
    module.exit_json(changed=False, inside=inside, forced=inside and params["force"], window=described)


if __name__ == "__main__":
    main()
