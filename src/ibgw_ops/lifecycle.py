"""Each lifecycle operation as one playbook plus its extra variables (kayobe style): the verbs share these.

Extra variables only ever name targets and limits; they are visible in ``ps`` and never hold a secret.
"""

from __future__ import annotations

from typing import Any

from ibgw_ops.ansible_run import PlaybookRunner, RunOutcome

PAPER = "paper"


def deploy(runner: PlaybookRunner, *, check: bool = False) -> RunOutcome:
    """Configure the hosts (Docker, each gateway's files); raises on failure."""
    outcome = runner.run("site.yml", check=check)
    outcome.raise_for_failure()
    return outcome


def wait_for_hosts(runner: PlaybookRunner) -> None:
    """Wait until every host answers over SSH (a VM that was just created is still booting)."""
    runner.run("wait_for_hosts.yml").raise_for_failure()


def start(runner: PlaybookRunner, target: str, timeout: int | None = None, *,
          client_id: int | None = None) -> list[dict[str, Any]]:
    """Start the target's gateways and wait for the handshake; return what each ready gateway reported.

    ``client_id``: the pipeline's, which the role refuses when it is the readiness probe's.
    """
    return _reported(runner, "start.yml", "ibgw_ready", _target_vars(target, ib_gateway_ready_timeout=timeout,
                                                                      ib_gateway_pipeline_client_id=client_id))


def stop(runner: PlaybookRunner, target: str, *, cancellable: bool = True, force: bool = False) -> None:
    """Stop the target's gateways tidily and check that they stopped (live ones in the protected window: ``force``)."""
    runner.run("stop.yml", _target_vars(target, ib_gateway_force=force or None),
               cancellable=cancellable).raise_for_failure()


def restart(runner: PlaybookRunner, target: str, timeout: int | None = None, *, hard: bool = False,
            force: bool = False) -> list[dict[str, Any]]:
    """Live: IBC RESTART (no 2FA) unless ``hard``; paper (and live when ``hard``): stop, then start and wait."""
    return _reported(runner, "restart.yml", "ibgw_ready",
                     _target_vars(target, ib_gateway_ready_timeout=timeout, ib_gateway_restart_hard=hard or None,
                                  ib_gateway_force=force or None))


def upgrade(runner: PlaybookRunner, target: str, image: str) -> list[dict[str, Any]]:
    """Pull or load ``image`` for the target's gateways, record their rollback points, deploy; return what each got."""
    return _reported(runner, "upgrade.yml", "ibgw_installed",
                     {"ib_gateway_target": target, "ib_gateway_upgrade_image": image})


def rollback(runner: PlaybookRunner, target: str) -> list[dict[str, Any]]:
    """Put the target's gateways back on the image each rollback point recorded; return what each got."""
    return _reported(runner, "rollback.yml", "ibgw_installed", _target_vars(target))


def status(runner: PlaybookRunner, target: str) -> list[dict[str, Any]]:
    """One row per instance: container state, start time, image, probe verdict, accounts."""
    return _reported(runner, "status.yml", "ibgw_status", _target_vars(target))


def logs(runner: PlaybookRunner, target: str, lines: int | None = None, *,
         previous: bool = False) -> list[dict[str, Any]]:
    """The last log lines of each instance's container, or of the container its last start replaced."""
    return _reported(runner, "logs.yml", "ibgw_logs",
                     _target_vars(target, ib_gateway_log_lines=lines, ib_gateway_logs_previous=previous or None))


def vnc(runner: PlaybookRunner) -> list[dict[str, Any]]:
    """One row per instance: where its VNC listens on the host's loopback (``vnc_port`` 0: VNC is off)."""
    return _reported(runner, "vnc.yml", "ibgw_vnc", _target_vars("all"))


def _reported(runner: PlaybookRunner, playbook: str, kind: str, extravars: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a playbook, raise on failure, and return the role's ``ibgw_<kind>`` reports."""
    outcome = runner.run(playbook, extravars)
    outcome.raise_for_failure()
    return outcome.events.payloads[kind]


def _target_vars(target: str, **optional: int | bool | None) -> dict[str, Any]:
    return {"ib_gateway_target": target, **{key: value for key, value in optional.items() if value is not None}}
