"""The Cloud Run path on the lab as shipped: a real ib_async pipeline on the controller reaches the gateways at the
address the verbs give it, as a Cloud Run job reaches the VM's internal address (docs/lab.md, the production twins).

The controller's address on the lab network plays the Cloud Run egress; nothing in the lab's inventory is edited.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ibgw_ops.errors import ExitCode
from tests.support.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]

# A pipeline as a Cloud Run job runs one: connect where the environment says, read, disconnect, exit 0.
PIPELINE = """\
import datetime, json, os
from ib_async import IB

host, port = os.environ["IBGW_API_HOST"], int(os.environ["IBGW_API_PORT"])
ib = IB()
ib.connect(host, port, clientId=int(os.environ["IBGW_CLIENT_ID"]), timeout=30)
try:
    server_time = ib.reqCurrentTime().astimezone(datetime.UTC)
    accounts = ib.managedAccounts()
finally:
    ib.disconnect()
print(json.dumps({"host": host, "port": port, "server_time": server_time.isoformat(), "accounts": accounts}))
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.py"
    path.write_text(PIPELINE)
    return path


def internal_address(lab: Lab) -> str:
    """The VM's internal address, where production's Cloud Run jobs connect; never a loopback address."""
    address = lab.host_vars()["ibgw_internal_ip"]
    assert not ipaddress.ip_address(address).is_loopback
    return address


def what_it_read(output: str, started: datetime, ended: datetime) -> dict:
    """The pipeline's report; the server's clock read between the pipeline's start and end (whole seconds)."""
    seen = json.loads(output.splitlines()[-1])
    assert started.replace(microsecond=0) <= datetime.fromisoformat(seen["server_time"]) <= ended, seen
    return seen


def test_a_pipeline_on_the_controller_reaches_paper_through_paper_run(deployed, pipeline):
    address = internal_address(deployed)
    started = datetime.now(UTC)
    result = deployed.cli("paper-run", "--", sys.executable, str(pipeline), check=False)
    ended = datetime.now(UTC)
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    seen = what_it_read(result.stdout, started, ended)
    assert (seen["host"], seen["port"], seen["accounts"]) == (address, 4002, ["DU1234567"])
    assert deployed.container_state("paper") == "exited"


def test_live_answers_the_controller_at_the_address_status_and_probe_give(deployed, pipeline):
    address = internal_address(deployed)
    deployed.cli("up", "live")
    try:
        row = deployed.status_rows("live")["live"]
        assert (row["api_host"], row["api_port"]) == (address, 4001)
        probe = json.loads(deployed.cli("probe", f"{address}:4001", "--json").stdout)
        assert (probe["state"], probe["accounts"]) == ("ready", ["U1234567"])
        env = {**os.environ, "IBGW_API_HOST": row["api_host"], "IBGW_API_PORT": str(row["api_port"]),
               "IBGW_CLIENT_ID": "2"}
        started = datetime.now(UTC)
        result = subprocess.run([sys.executable, str(pipeline)], env=env, capture_output=True, text=True,
                                check=False, timeout=120)
        ended = datetime.now(UTC)
        assert result.returncode == 0, result.stdout + result.stderr
        assert what_it_read(result.stdout, started, ended)["accounts"] == ["U1234567"]
    finally:
        deployed.cli("down", "live")


def test_the_vm_admits_exactly_the_controller_to_the_api_ports(deployed):
    sources = {line.split(" -s ")[1].split()[0] for line in deployed.ssh("iptables -S IBGW-API").splitlines()
               if " -s " in line}
    assert sources == {f"{deployed.controller}/32"}
