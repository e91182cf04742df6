"""Ansible module: remove the gateway repository's old images after an upgrade or a rollback.

Kept: the images the instances are set to (the next start runs them), every image a container uses (running or
stopped), and every rollback point's recorded image id, so a rollback always finds its image. Only images of the
named repositories are looked at: other images on the host are never touched.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_image_prune
short_description: Remove the gateway images no instance, container or rollback point needs
description:
  - >-
    Lists the images of the given repositories and removes (untags) those whose id is not kept. Supports check mode.
options:
  images: {type: list, elements: str, required: true,
    description: 'The references the instances are set to: their images stay, their repositories are pruned.'}
  rollback_points: {type: list, elements: path, default: [],
    description: 'Rollback point files (JSON with image_id); their images stay. A missing file is skipped.'}
"""

import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_container import repository_of  # noqa: E402


def main() -> None:
    """Work out what is kept, remove the rest, report what went."""
    module = AnsibleModule(
        argument_spec={
            "images": {"type": "list", "elements": "str", "required": True},
            "rollback_points": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    docker = module.get_bin_path("docker", required=True)

    def lines(*argv: str) -> list[str]:
        rc, out, err = module.run_command([docker, *argv])
        if rc != 0:
            module.fail_json(msg=f"docker {' '.join(argv)} failed: {err.strip()}")
        return [line for line in out.splitlines() if line.strip()]

    images = module.params["images"]
    kept = {_image_id(module, docker, reference) for reference in images}
    containers = lines("ps", "--all", "--quiet", "--no-trunc")
    if containers:
        kept.update(lines("inspect", "--format", "{{.Image}}", *containers))
    kept.update(_recorded(path) for path in module.params["rollback_points"])
    removed = []
    for repository in sorted({repository_of(reference) for reference in images}):
        for line in lines("image", "ls", "--no-trunc", "--format", "{{.ID}}\t{{.Repository}}:{{.Tag}}", repository):
            image_id, reference = line.split("\t", 1)
            if image_id in kept:
                continue
            target = image_id if reference.endswith(":<none>") else reference
            if not module.check_mode:
                lines("image", "rm", target)
            removed.append(target)
    module.exit_json(changed=bool(removed), removed=removed)


def _image_id(module: AnsibleModule, docker: str, reference: str) -> str:
    rc, out, _ = module.run_command([docker, "image", "inspect", "--format", "{{.Id}}", reference])
    return out.strip() if rc == 0 else ""


def _recorded(path: str) -> str:
    try:
        with open(path) as point:
            return str(json.load(point).get("image_id") or "")
    except (OSError, ValueError):
        return ""


if __name__ == "__main__":
    main()
