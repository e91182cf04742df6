"""provision end to end: the fake Compute API hands out the lab VM's address as the VM's external IP, so the
inventory provision writes, its wait for SSH and its deploy all run for real against the lab VM."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest
import yaml

from ibgw_ops.lab.fake_compute import FakeCompute
from tests.support.lab import Lab

pytestmark = pytest.mark.integration


def test_provision_writes_an_inventory_that_deploys_the_vm(converged_lab: Lab, tmp_path):
    lab_vars = converged_lab.host_vars()
    address = lab_vars["ansible_host"]
    subnet = ipaddress.ip_network(f"{address}/24", strict=False)
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "gcp.yml").write_text(yaml.safe_dump({
        "project": "lab-project", "region": "us-east4", "zone": "us-east4-a",
        "network": {"subnet_cidr": str(subnet), "cloud_run_subnet_cidr": ""},
        "api": {"source_ranges": ["10.99.0.0/26"]},
        "ssh": {"via": "external", "admin_ranges": ["172.16.0.0/12"], "user": "root",
                "private_key_file": lab_vars["ansible_ssh_private_key_file"]},
    }))
    (inventory / "group_vars" / "ibgw_gateways.yml").write_text(yaml.safe_dump({
        "ib_gateway_image": lab_vars["ibgw_lab_standin_image"],
        "ib_gateway_image_archive": lab_vars["ibgw_lab_standin_archive"],
        "ib_gateway_credentials_file": lab_vars["ibgw_lab_credentials_file"],
    }))
    with FakeCompute(external_ips=(address,)) as fake:
        env = {**converged_lab.env, "IBGW_OPS_COMPUTE_ENDPOINT": fake.url,
               "GOOGLE_API_USE_CLIENT_CERTIFICATE": "false"}

        def provision() -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "ibgw_ops", "-i", str(inventory), "provision"], env=env,
                                  capture_output=True, text=True, check=False, timeout=900)

        first = provision()
        assert first.returncode == 0, first.stdout + first.stderr
        assert "created instance" in first.stdout and "deployed" in first.stdout
        host = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["ibgw_gateways"]["hosts"]
        assert host["ibgw-vm"]["ansible_host"] == address
        internal = str(list(subnet.hosts())[9])
        assert host["ibgw-vm"]["ib_gateway_bind_address"] == internal
        compose = converged_lab.ssh("cat /opt/ibgw/paper/compose.yaml")
        assert f"{internal}:4002:4004" in compose

        fake.update("firewalls", "ibgw-allow-api", sourceTags=["web"], disabled=True)
        fake.reset_log()
        fixed = provision()
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "source_tags: ['web'] -> [] (update: a patch cannot clear a list)" in fixed.stdout
        assert fake.mutating_calls() == ["PUT /compute/v1/projects/lab-project/global/firewalls/ibgw-allow-api"]
        assert "sourceTags" not in fake.get("firewalls", "ibgw-allow-api")

        fake.reset_log()
        second = provision()
        assert second.returncode == 0, second.stdout + second.stderr
        assert fake.mutating_calls() == []
