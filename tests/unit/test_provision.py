"""provision / destroy through the real google-cloud-compute client against the local fake Compute API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from ibgw_ops.cli import main
from ibgw_ops.errors import ExitCode, OpsError
from ibgw_ops.gcp import compute
from ibgw_ops.gcp import provision as cloud
from ibgw_ops.gcp.settings import load
from ibgw_ops.lab.fake_compute import FakeCompute
from ibgw_ops.paths import data_dir

PROJECT, REGION, ZONE = "my-trading-project", "us-east4", "us-east4-a"
EVERYTHING = {
    "networks": ["ibgw-net"], "subnetworks": ["ibgw-run-egress", "ibgw-subnet"],
    "addresses": ["ibgw-vm-external", "ibgw-vm-internal"], "firewalls": ["ibgw-allow-api", "ibgw-allow-ssh"],
    "routers": [], "instances": ["ibgw-vm"],
}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeCompute]:
    monkeypatch.setattr(compute, "TIMING", replace(compute.TIMING, first_backoff=0.0, max_backoff=0.0))
    with FakeCompute() as server:
        monkeypatch.setenv("IBGW_OPS_COMPUTE_ENDPOINT", server.url)
        monkeypatch.setenv("IBGW_OPS_STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setenv("GOOGLE_API_USE_CLIENT_CERTIFICATE", "false")
        yield server


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    directory = tmp_path / "inventory"
    shutil.copytree(data_dir() / "inventory" / "gcp", directory)
    return directory


def provision(inventory: Path, *args: str) -> int:
    return main(["-i", str(inventory), "provision", "--skip-deploy", *args])


def everything(fake: FakeCompute) -> dict[str, list[str]]:
    return {collection: fake.names(collection) for collection in EVERYTHING}


def edit(inventory: Path, section: str, **values: object) -> None:
    path = inventory / "gcp.yml"
    document = yaml.safe_load(path.read_text())
    document.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(document))


def test_plan_on_an_empty_project_lists_every_resource_and_changes_nothing(fake, inventory, capsys):
    assert main(["-i", str(inventory), "provision", "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 8
    assert all(line.startswith("create ") for line in lines)
    plan = "\n".join(lines)
    for fragment in ("network     ibgw-net", "10.20.0.0/24 in us-east4", "10.20.1.0/26", "internal 10.20.0.10",
                     "tcp:4001,4002 from 10.20.1.0/26 to tag ibgw-gateway",
                     "tcp:22 from 35.235.240.0/20 to tag ibgw-gateway", "e2-medium, 20 GB debian-13, shielded"):
        assert fragment in plan
    assert fake.mutating_calls() == []
    assert not (inventory / "hosts.yml").exists()


def test_a_fresh_project_gets_every_resource_with_its_settings(fake, inventory):
    assert provision(inventory) == 0
    assert everything(fake) == EVERYTHING

    api_rule = fake.get("firewalls", "ibgw-allow-api")
    assert api_rule["sourceRanges"] == ["10.20.1.0/26"]
    assert api_rule["allowed"] == [{"IPProtocol": "tcp", "ports": ["4001", "4002"]}]
    assert api_rule["targetTags"] == ["ibgw-gateway"]
    assert fake.get("firewalls", "ibgw-allow-ssh")["sourceRanges"] == ["35.235.240.0/20"]
    assert fake.get("networks", "ibgw-net")["autoCreateSubnetworks"] is False

    vm = fake.get("instances", "ibgw-vm")
    external = fake.get("addresses", "ibgw-vm-external")["address"]
    interface = vm["networkInterfaces"][0]
    assert interface["networkIP"] == "10.20.0.10"
    assert interface["accessConfigs"][0]["natIP"] == external
    assert vm["labels"] == {"managed-by": "ibgw-ops", "ibgw-deployment": "ibgw"}
    assert vm["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableVtpm": True,
                                            "enableIntegrityMonitoring": True}
    assert vm["metadata"]["items"] == [{"key": "enable-oslogin", "value": "TRUE"},
                                       {"key": "block-project-ssh-keys", "value": "TRUE"},
                                       {"key": "serial-port-enable", "value": "FALSE"}]
    assert vm["machineType"].endswith(f"zones/{ZONE}/machineTypes/e2-medium")
    sent = next(r.body for r in fake.requests if r.method == "POST" and r.path.endswith("/instances"))
    assert sent["disks"][0]["initializeParams"]["sourceImage"].endswith("family/debian-13")
    assert "serviceAccounts" not in vm or vm["serviceAccounts"] == []
    assert fake.get("addresses", "ibgw-vm-internal")["status"] == "IN_USE"

    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["ibgw_gateways"]["hosts"]
    host = hosts["ibgw-vm"]
    assert host["ib_gateway_bind_address"] == "10.20.0.10"
    assert host["ibgw_external_ip"] == host["ibgw_egress_ip"] == external
    assert host["host_firewall_api_source_ranges"] == ["10.20.1.0/26"]
    assert "start-iap-tunnel ibgw-vm 22" in host["ansible_ssh_common_args"]


def test_a_second_run_makes_no_mutating_call(fake, inventory, capsys):
    assert provision(inventory) == 0
    fake.reset_log()
    capsys.readouterr()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == []
    assert all(line.startswith("ok ") for line in capsys.readouterr().out.splitlines())


def test_the_requests_go_out_in_dependency_order_with_request_ids(fake, inventory):
    assert provision(inventory) == 0
    inserts = [r for r in fake.requests if r.method == "POST" and "/operations/" not in r.path]
    order = [r.path.rsplit("/", 1)[-1] for r in inserts]
    assert order.index("networks") < order.index("subnetworks") < order.index("instances")
    assert all(r.query.get("requestId") for r in inserts)


def test_drift_is_patched_and_a_plan_shows_it_first(fake, inventory, capsys):
    assert provision(inventory) == 0
    fake.update("firewalls", "ibgw-allow-api", sourceRanges=["0.0.0.0/0"],
                allowed=[{"IPProtocol": "tcp", "ports": ["4001-4004"]}])
    fake.update("instances", "ibgw-vm", tags={"items": ["ibgw-gateway", "http-server"]})
    fake.reset_log()
    capsys.readouterr()

    assert main(["-i", str(inventory), "provision", "--plan"]) == 0
    plan = capsys.readouterr().out
    assert "update  firewall    ibgw-allow-api" in plan
    assert "source_ranges: ['0.0.0.0/0'] -> ['10.20.1.0/26'] (patch)" in plan
    assert "update  instance    ibgw-vm" in plan
    assert fake.mutating_calls() == []

    assert provision(inventory) == 0
    assert sorted(fake.mutating_calls()) == sorted([
        f"PATCH /compute/v1/projects/{PROJECT}/global/firewalls/ibgw-allow-api",
        f"POST /compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/ibgw-vm/setTags",
    ])
    api_rule = fake.get("firewalls", "ibgw-allow-api")
    assert (api_rule["sourceRanges"], api_rule["allowed"][0]["ports"]) == (["10.20.1.0/26"], ["4001", "4002"])
    assert fake.get("instances", "ibgw-vm")["tags"]["items"] == ["ibgw-gateway"]
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == []


def test_settings_changes_reach_the_cloud(fake, inventory):
    assert provision(inventory) == 0
    with (inventory / "group_vars" / "ibgw_gateways.yml").open("a") as group_vars:
        group_vars.write(yaml.safe_dump({"ib_gateway_instances": [
            {"name": "live", "mode": "live"}, {"name": "paper", "mode": "paper"},
            {"name": "paper-b", "mode": "paper", "api_port": 4003, "vnc_port": 5903}]}))
    edit(inventory, "api", ports=[4001, 4002, 4003], source_ranges=["10.30.0.0/26"])
    edit(inventory, "ssh", admin_ranges=["203.0.113.0/28"])
    assert provision(inventory) == 0
    assert fake.get("firewalls", "ibgw-allow-api")["allowed"][0]["ports"] == ["4001", "4002", "4003"]
    assert fake.get("firewalls", "ibgw-allow-ssh")["sourceRanges"] == ["35.235.240.0/20", "203.0.113.0/28"]


def test_drift_that_needs_a_recreate_is_reported_and_left_alone(fake, inventory, capsys):
    assert provision(inventory) == 0
    edit(inventory, "vm", machine_type="e2-standard-2")
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == []
    err = capsys.readouterr().err
    assert "instance ibgw-vm: machine_type differs and cannot change in place" in err


def test_a_failure_midway_keeps_what_succeeded_and_a_rerun_completes(fake, inventory, capsys):
    fake.fail_next("POST", "/instances", status=503, times=compute.TIMING.attempts)
    assert provision(inventory) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "instance ibgw-vm: insert refused by the Compute API: 503" in err
    assert fake.names("instances") == []
    assert fake.names("firewalls") == ["ibgw-allow-api", "ibgw-allow-ssh"]
    assert not (inventory / "hosts.yml").exists()

    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == [f"POST /compute/v1/projects/{PROJECT}/zones/{ZONE}/instances"]
    assert everything(fake) == EVERYTHING


def test_a_failed_operation_names_its_error_and_skips_what_depends_on_it(fake, inventory, capsys):
    fake.fail_next("POST", "/subnetworks", operation_error="QUOTA_EXCEEDED", times=2)
    assert provision(inventory) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "insert failed: QUOTA_EXCEEDED" in err
    assert "not attempted: ibgw-vm, ibgw-vm-internal" in err
    assert fake.names("instances") == []
    assert provision(inventory) == 0
    assert everything(fake) == EVERYTHING


def test_a_resource_of_the_same_name_not_ours_is_not_adopted(fake, inventory, capsys):
    fake.create("networks", {"name": "ibgw-net", "autoCreateSubnetworks": False}, project=PROJECT)
    assert provision(inventory) == ExitCode.FAILED
    assert "network ibgw-net exists but is not managed by ibgw-ops" in capsys.readouterr().err
    assert fake.names("subnetworks") == []


def test_without_a_public_ip_the_vm_gets_cloud_nat(fake, inventory, capsys):
    edit(inventory, "vm", public_ip=False)
    assert provision(inventory) == 0
    assert fake.names("routers") == ["ibgw-router"]
    assert fake.names("addresses") == ["ibgw-nat-external", "ibgw-vm-internal"]
    nat = fake.get("routers", "ibgw-router")["nats"][0]
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    nat_address = fake.get("addresses", "ibgw-nat-external")
    assert (nat["natIpAllocateOption"], nat["natIps"]) == ("MANUAL_ONLY", [nat_address["selfLink"]])
    assert nat_address["status"] == "IN_USE" and nat_address["labels"]["ibgw-deployment"] == "ibgw"
    assert "accessConfigs" not in fake.get("instances", "ibgw-vm")["networkInterfaces"][0]
    host = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["ibgw_gateways"]["hosts"]
    assert (host["ibgw-vm"]["ibgw_external_ip"], host["ibgw-vm"]["ibgw_egress_ip"]) == ("", nat_address["address"])
    capsys.readouterr()
    assert main(["-i", str(inventory), "hosts"]) == 0
    shown = capsys.readouterr().out
    assert f"{{ibgw_egress_ip = {nat_address['address']}}}" in shown and "{ansible_host = ibgw-vm}" in shown
    assert "ansible_ssh_common_args" not in shown
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == []


def test_cloud_nat_moves_from_automatic_to_a_static_address_in_one_provision(fake, inventory, capsys):
    edit(inventory, "vm", public_ip=False, nat_ip="auto")
    assert provision(inventory) == 0
    assert fake.names("addresses") == ["ibgw-vm-internal"]
    assert fake.get("routers", "ibgw-router")["nats"][0]["natIpAllocateOption"] == "AUTO_ONLY"
    host = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["ibgw_gateways"]["hosts"]
    assert host["ibgw-vm"]["ibgw_egress_ip"] == ""
    edit(inventory, "vm", nat_ip="static")
    capsys.readouterr()
    assert main(["-i", str(inventory), "provision", "--plan"]) == 0
    plan = capsys.readouterr().out
    assert "create  address     ibgw-nat-external" in plan and "update  router      ibgw-router" in plan
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == [f"POST /compute/v1/projects/{PROJECT}/regions/{REGION}/addresses",
                                     f"PATCH /compute/v1/projects/{PROJECT}/regions/{REGION}/routers/ibgw-router"]
    assert fake.get("addresses", "ibgw-nat-external")["status"] == "IN_USE"
    assert "egress IP " + fake.get("addresses", "ibgw-nat-external")["address"] in capsys.readouterr().out
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == []


@pytest.mark.parametrize("public_ip", [True, False], ids=["external-ip", "cloud-nat"])
def test_destroy_removes_only_what_provision_created_and_twice_is_fine(fake, inventory, capsys, public_ip):
    fake.create("networks", {"name": "someone-else", "autoCreateSubnetworks": True}, project=PROJECT)
    edit(inventory, "vm", public_ip=public_ip)
    assert provision(inventory) == 0
    assert main(["-i", str(inventory), "destroy", "--yes"]) == 0
    assert everything(fake) == {collection: [] for collection in EVERYTHING} | {"networks": ["someone-else"]}
    assert not (inventory / "hosts.yml").exists()
    assert main(["-i", str(inventory), "destroy", "--yes"]) == 0
    assert "nothing of deployment 'ibgw'" in capsys.readouterr().out


def test_destroy_asks_and_without_a_terminal_refuses(fake, inventory, monkeypatch, capsys):
    assert provision(inventory) == 0
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["-i", str(inventory), "destroy"]) == ExitCode.BAD_INPUT
    assert "--yes" in capsys.readouterr().err
    assert fake.names("instances") == ["ibgw-vm"]


BAD = [
    ("zone", "us-west1-b", "zone: 'us-west1-b' is not in region 'us-east4'"),
    ("project", "", "project: is missing"),
    ("network.cloud_run_subnet_cidr", "10.20.0.0/26", "overlaps network.subnet_cidr"),
    ("api.source_ranges", ["10.30.0.0/26", "0.0.0.0/0"], "api.source_ranges: 0.0.0.0/0 opens the port to the world"),
    ("api.source_ranges", ["198.51.100.0/24"], "api.source_ranges: 198.51.100.0/24 is not a private range"),
    ("api.allow_public_sources", "yes", "api.allow_public_sources: 'yes' is not true or false"),
    ("vm.nat_ip", "static", "vm.nat_ip: applies only without an external IP"),
    ("compute_endpoint", "https://user:pw@compute.example.com", "compute_endpoint: 'https://user:pw@compute"),
]


@pytest.mark.parametrize("bad", BAD, ids=[b[0] for b in BAD])
def test_bad_settings_fail_before_any_api_call(fake, inventory, capsys, bad):
    field, value, message = bad
    section, _, key = field.rpartition(".")
    path = inventory / "gcp.yml"
    document = yaml.safe_load(path.read_text())
    (document.setdefault(section, {}) if section else document)[key] = value
    path.write_text(yaml.safe_dump(document))
    for verb in (["provision", "--skip-deploy"], ["provision", "--plan"], ["destroy", "--yes"]):
        assert main(["-i", str(inventory), *verb]) == ExitCode.BAD_INPUT
        assert message in capsys.readouterr().err
    assert fake.requests == []


def test_an_unreachable_endpoint_is_its_own_exit_code(fake, inventory, monkeypatch, capsys):
    monkeypatch.setenv("IBGW_OPS_COMPUTE_ENDPOINT", "http://127.0.0.1:9")
    assert main(["-i", str(inventory), "provision", "--plan"]) == ExitCode.UNREACHABLE
    assert "cannot reach the Compute API at http://127.0.0.1:9" in capsys.readouterr().err


API_RULE = f"/compute/v1/projects/{PROJECT}/global/firewalls/ibgw-allow-api"
VM_PATH = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/ibgw-vm"
ACCOUNT = "gateway@my-trading-project.iam.gserviceaccount.com"
OTHER_ACCOUNT = "build@my-trading-project.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def set_instances(inventory: Path, where: str, instances: list[dict[str, object]]) -> None:
    """The inventory's ib_gateway_instances, in group_vars or in the VM's host_vars."""
    path = inventory / where
    path.parent.mkdir(exist_ok=True)
    with path.open("a") as variables:
        variables.write(yaml.safe_dump({"ib_gateway_instances": instances}))


@pytest.mark.parametrize("case", [
    ([4001], None, "group_vars/ibgw_gateways.yml",
     "api.ports: [4001] lacks the API port of instance paper 4002 (ib_gateway_instances[].api_port, default "
     "ib_gateway_mode_defaults.<mode>.api_port): its clients could not reach it (allowed: [4001, 4002], the "
     "instances' API ports)"),
    ([4001, 4002, 4010], None, "group_vars/ibgw_gateways.yml",
     "api.ports: [4001, 4002, 4010] opens [4010], which no instance uses"),
    ([4001, 4002], [{"name": "paper", "mode": "paper", "api_port": 4012}], "host_vars/ibgw-vm.yml",
     "api.ports: [4001, 4002] lacks the API port of instance paper 4012"),
    ([4001, 4002], [{"name": "paper", "mode": "paper"}], "group_vars/ibgw_gateways.yml",
     "api.ports: [4001, 4002] opens [4001], which no instance uses (ib_gateway_instances[].api_port, default "
     "ib_gateway_mode_defaults.<mode>.api_port) (allowed: [4002], the instances' API ports)"),
], ids=["instance-port-missing", "port-unused", "host-vars-port-missing", "live-removed"])
def test_api_ports_must_be_the_instances_api_ports_before_any_call(fake, inventory, capsys, case):
    ports, instances, where, message = case
    edit(inventory, "api", ports=ports)
    if instances is not None:
        set_instances(inventory, where, instances)
    for verb in (["provision", "--plan"], ["provision", "--skip-deploy"]):
        assert main(["-i", str(inventory), *verb]) == ExitCode.BAD_INPUT
        assert message in capsys.readouterr().err
    assert fake.requests == []
    assert main(["-i", str(inventory), "destroy", "--yes"]) == ExitCode.OK


def test_api_ports_matching_instances_of_the_inventory_s_own_are_planned(fake, inventory, capsys):
    set_instances(inventory, "group_vars/ibgw_gateways.yml", [{"name": "paper", "mode": "paper", "api_port": 4012}])
    edit(inventory, "api", ports=[4012])
    assert main(["-i", str(inventory), "provision", "--plan"]) == ExitCode.OK
    assert "tcp:4012 from 10.20.1.0/26" in capsys.readouterr().out


def plan_of(inventory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-i", str(inventory), "provision", "--plan"])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_provision_fixes_it(fake: FakeCompute, inventory: Path, calls: list[str]) -> None:
    """The drift goes with exactly ``calls``, and the provision after that changes nothing."""
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == calls
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == []


def instances_client(fake: FakeCompute) -> compute_v1.InstancesClient:
    """The real client, as someone with gcloud would change the VM behind provision's back."""
    return compute_v1.InstancesClient(credentials=AnonymousCredentials(), client_options={"api_endpoint": fake.url})


FIREWALL_DRIFT = [
    ({"sourceTags": ["web"]}, "source_tags: ['web'] -> [] (update: a patch cannot clear a list)", "PUT"),
    ({"targetTags": [], "targetServiceAccounts": [OTHER_ACCOUNT], "sourceServiceAccounts": [OTHER_ACCOUNT]},
     f"source_service_accounts: ['{OTHER_ACCOUNT}'] -> [] (update: a patch cannot clear a list)", "PUT"),
    ({"targetTags": ["ibgw-gateway", "web"]}, "target_tags: ['ibgw-gateway', 'web'] -> ['ibgw-gateway'] (patch)",
     "PATCH"),
    ({"disabled": True}, "disabled: True -> False (patch)", "PATCH"),
    ({"priority": 65000}, "priority: 65000 -> 1000 (patch)", "PATCH"),
    ({"logConfig": {"enable": True}}, "log_config: {'enable': True} -> {'enable': False} (patch)", "PATCH"),
    ({"logConfig": {"enable": True, "metadata": "INCLUDE_ALL_METADATA"}},
     "log_config: {'enable': True, 'metadata': 'INCLUDE_ALL_METADATA'} -> {'enable': False} "
     "(update: a patch cannot remove a key)", "PUT"),
]


@pytest.mark.parametrize("drift", FIREWALL_DRIFT, ids=["source-tags", "service-accounts", "target-tags", "disabled",
                                                        "priority", "logging", "logging-metadata"])
def test_firewall_drift_is_shown_field_by_field_and_fixed_in_one_provision(fake, inventory, capsys, drift):
    change, shown, method = drift
    assert provision(inventory) == 0
    want = fake.get("firewalls", "ibgw-allow-api")
    fake.update("firewalls", "ibgw-allow-api", **change)
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0
    assert "update  firewall    ibgw-allow-api" in plan
    assert shown in plan
    assert_one_provision_fixes_it(fake, inventory, [f"{method} {API_RULE}"])
    fixed = fake.get("firewalls", "ibgw-allow-api")
    for name in ("sourceRanges", "allowed", "targetTags", "direction", "priority", "disabled", "logConfig"):
        assert fixed.get(name) == want.get(name), name
    for name in ("sourceTags", "sourceServiceAccounts", "targetServiceAccounts", "denied"):
        assert not fixed.get(name), name


@pytest.mark.parametrize(("recreated", "shown"), [
    ({"direction": "EGRESS", "destinationRanges": ["10.20.1.0/26"], "sourceRanges": []},
     "direction: EGRESS -> INGRESS (recreate)"),
    ({"allowed": [], "denied": [{"IPProtocol": "tcp", "ports": ["4001"]}]},
     "denied: [{'I_p_protocol': 'tcp', 'ports': ['4001']}] -> [] (recreate)"),
], ids=["direction", "deny-action"])
def test_a_rule_recreated_with_another_direction_or_action_is_recreated(fake, inventory, capsys, recreated, shown):
    assert provision(inventory) == 0
    rule = fake.get("firewalls", "ibgw-allow-api")
    fake.delete("firewalls", "ibgw-allow-api")
    fake.create("firewalls", {key: rule[key] for key in ("name", "description", "network", "allowed",
                                                         "sourceRanges", "targetTags")} | recreated,
                project=PROJECT)
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0 and shown in plan
    assert_one_provision_fixes_it(fake, inventory, [f"DELETE {API_RULE}",
                                                    f"POST /compute/v1/projects/{PROJECT}/global/firewalls"])
    fixed = fake.get("firewalls", "ibgw-allow-api")
    assert (fixed["direction"], fixed["allowed"], fixed.get("denied")) == ("INGRESS", rule["allowed"], None)


def test_an_external_ip_added_by_hand_to_a_private_vm_is_removed(fake, inventory, capsys):
    edit(inventory, "vm", public_ip=False)
    assert provision(inventory) == 0
    instances_client(fake).add_access_config_unary(project=PROJECT, zone=ZONE, instance="ibgw-vm",
                                                 network_interface="nic0", access_config_resource={"name": "oops"})
    added = fake.get("instances", "ibgw-vm")["networkInterfaces"][0]["accessConfigs"][0]["natIP"]
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0
    assert f"access_configs: ['{added}'] -> [] (deleteAccessConfig/addAccessConfig)" in plan
    assert_one_provision_fixes_it(fake, inventory, [f"POST {VM_PATH}/deleteAccessConfig"])
    assert "accessConfigs" not in fake.get("instances", "ibgw-vm")["networkInterfaces"][0]


def swap_the_external_ip(fake: FakeCompute) -> str:
    """What someone does by hand: the VM's reserved external IP swapped for an ephemeral one; returns the new IP."""
    vms = instances_client(fake)
    kw = {"project": PROJECT, "zone": ZONE, "instance": "ibgw-vm", "network_interface": "nic0"}
    vms.delete_access_config_unary(**kw, access_config="external-nat")
    vms.add_access_config_unary(**kw, access_config_resource={"name": "External NAT"})
    return str(fake.get("instances", "ibgw-vm")["networkInterfaces"][0]["accessConfigs"][0]["natIP"])


def test_the_reserved_external_ip_is_put_back_when_another_was_swapped_in(fake, inventory, capsys):
    assert provision(inventory) == 0
    reserved = fake.get("addresses", "ibgw-vm-external")["address"]
    swapped = swap_the_external_ip(fake)
    instances_client(fake).stop_unary(project=PROJECT, zone=ZONE, instance="ibgw-vm")  # a running VM's is reported
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0 and f"access_configs: ['{swapped}'] -> ['{reserved}']" in plan
    assert_one_provision_fixes_it(fake, inventory, [f"POST {VM_PATH}/deleteAccessConfig",
                                                    f"POST {VM_PATH}/addAccessConfig"])
    assert fake.get("instances", "ibgw-vm")["networkInterfaces"][0]["accessConfigs"][0]["natIP"] == reserved
    assert fake.get("addresses", "ibgw-vm-external")["status"] == "IN_USE"


def test_login_metadata_is_put_back_and_other_keys_are_kept(fake, inventory, capsys):
    assert provision(inventory) == 0
    fake.update("instances", "ibgw-vm", metadata={"items": [
        {"key": "enable-oslogin", "value": "FALSE"}, {"key": "serial-port-enable", "value": "TRUE"},
        {"key": "startup-script", "value": "echo hi"}]})
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0
    for line in ("metadata.enable-oslogin: FALSE -> TRUE (setMetadata)",
                 "metadata.block-project-ssh-keys: (none) -> TRUE (setMetadata)",
                 "metadata.serial-port-enable: TRUE -> FALSE (setMetadata)"):
        assert line in plan
    assert_one_provision_fixes_it(fake, inventory, [f"POST {VM_PATH}/setMetadata"])
    items = {item["key"]: item["value"] for item in fake.get("instances", "ibgw-vm")["metadata"]["items"]}
    assert items == {"startup-script": "echo hi", "enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE",
                     "serial-port-enable": "FALSE"}


def test_a_service_account_swapped_in_is_left_on_a_running_vm_and_fixed_once_it_is_stopped(fake, inventory, capsys):
    edit(inventory, "vm", service_account=ACCOUNT)
    assert provision(inventory) == 0
    fake.update("instances", "ibgw-vm", serviceAccounts=[
        {"email": OTHER_ACCOUNT, "scopes": [CLOUD_PLATFORM, "https://www.googleapis.com/auth/compute"]}])
    code, plan, _ = plan_of(inventory, capsys)
    assert code == ExitCode.ATTENTION and "ok      instance    ibgw-vm" in plan
    assert (f"service_accounts: [{{'email': '{OTHER_ACCOUNT}', 'scopes': ['https://www.googleapis.com/auth/cloud-"
            "platform', 'https://www.googleapis.com/auth/compute']}] -> "
            f"[{{'email': '{ACCOUNT}', 'scopes': ['{CLOUD_PLATFORM}']}}] "
            "(can change only while the VM is stopped, left as is)") in plan
    fake.reset_log()
    assert provision(inventory) == ExitCode.ATTENTION
    assert fake.mutating_calls() == []
    assert "service_accounts differs and can change only while the VM is stopped" in capsys.readouterr().err

    instances_client(fake).stop_unary(project=PROJECT, zone=ZONE, instance="ibgw-vm")
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0 and "(setServiceAccount)" in plan
    assert_one_provision_fixes_it(fake, inventory, [f"POST {VM_PATH}/setServiceAccount"])
    assert fake.get("instances", "ibgw-vm")["serviceAccounts"] == [{"email": ACCOUNT, "scopes": [CLOUD_PLATFORM]}]


NETWORK_LINK = f"projects/{PROJECT}/global/networks/ibgw-net"


def foreign(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "network": NETWORK_LINK, "sourceRanges": ["0.0.0.0/0"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["4000-4010"]}], **fields}


def test_a_foreign_rule_admitting_the_api_is_named_and_exits_attention(fake, inventory, capsys):
    assert provision(inventory) == 0
    fake.create("firewalls", foreign("open-everything", allowed=[{"IPProtocol": "all"}]), project=PROJECT)
    fake.create("firewalls", foreign("web-to-gateway", sourceRanges=[], sourceTags=["web"],
                                     targetTags=["ibgw-gateway"], allowed=[{"IPProtocol": "tcp", "ports": ["22"]}]),
                project=PROJECT)
    harmless = [
        foreign("other-tag", targetTags=["web"]),
        foreign("udp-only", allowed=[{"IPProtocol": "udp"}]),
        foreign("other-ports", allowed=[{"IPProtocol": "tcp", "ports": ["80", "443", "5000-6000"]}]),
        foreign("switched-off", disabled=True),
        foreign("outbound", direction="EGRESS", sourceRanges=[], destinationRanges=["0.0.0.0/0"]),
        foreign("a-deny-rule", allowed=[], denied=[{"IPProtocol": "tcp"}]),
    ]
    for rule in harmless:
        fake.create("firewalls", rule, project=PROJECT)
    fake.create("networks", {"name": "elsewhere", "autoCreateSubnetworks": False}, project=PROJECT)
    fake.create("firewalls", foreign("elsewhere-open", network=f"projects/{PROJECT}/global/networks/elsewhere"),
                project=PROJECT)

    code, plan, err = plan_of(inventory, capsys)
    assert code == ExitCode.ATTENTION
    assert ("foreign firewall    open-everything      admits tcp:22,4001,4002 to every instance from 0.0.0.0/0 "
            "(not managed by this deployment)") in plan
    assert "foreign firewall    web-to-gateway       admits tcp:22 to tag ibgw-gateway from tag web" in plan
    assert plan.count("foreign ") == 2
    assert "2 firewall rule(s) not managed by this deployment" in err

    fake.reset_log()
    assert provision(inventory) == ExitCode.ATTENTION
    out, err = capsys.readouterr()
    assert "open-everything" in out and "deploy skipped" in err
    assert fake.mutating_calls() == []
    assert fake.names("firewalls").count("open-everything") == 1

    assert main(["-i", str(inventory), "provision", "--plan", "--accept-foreign-rules"]) == 0
    assert provision(inventory, "--accept-foreign-rules") == 0
    assert "open-everything" in capsys.readouterr().out


def test_a_foreign_rule_for_the_vms_service_account_counts(fake, inventory, capsys):
    edit(inventory, "vm", service_account=ACCOUNT)
    assert provision(inventory) == 0
    fake.create("firewalls", foreign("by-account", sourceRanges=["10.0.0.0/8"], targetServiceAccounts=[ACCOUNT]),
                project=PROJECT)
    code, plan, _ = plan_of(inventory, capsys)
    assert code == ExitCode.ATTENTION
    assert f"by-account           admits tcp:4001,4002 to service account {ACCOUNT} from 10.0.0.0/8" in plan


def test_an_endpoint_from_the_environment_over_gcp_yml_is_announced(fake, inventory, capsys):
    path = inventory / "gcp.yml"
    document = yaml.safe_load(path.read_text())
    document["compute_endpoint"] = "https://compute-private.example.com"
    path.write_text(yaml.safe_dump(document))
    code, _, err = plan_of(inventory, capsys)
    assert code == 0
    assert (f"Compute endpoint {fake.url} from $IBGW_OPS_COMPUTE_ENDPOINT, not gcp.yml's compute_endpoint "
            "https://compute-private.example.com") in err


# GCP's clock fifty times faster, client and fake alike: a two-minute wait cap takes 2.4 s. One ordinary call keeps
# 10 s (not 1.2): a loaded machine must not turn a local request into a timeout.
FAST = 0.02


def waits_for_the_vm(fake: FakeCompute) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path.endswith("/wait") and "/zones/" in r.path)


@pytest.mark.parametrize("slow", [(75, 1), (330, 3)],
                         ids=["longer-than-the-old-client-timeout", "longer-than-gcps-wait"])
def test_a_slow_vm_insert_is_waited_for_not_reported_unreachable(fake, inventory, monkeypatch, capsys, slow):
    seconds, waits = slow
    monkeypatch.setattr(compute, "TIMING", replace(compute.TIMING.scaled(FAST), call=10.0))
    fake.time_scale = FAST
    fake.slow_next("POST", "/instances", seconds=seconds)
    assert provision(inventory) == 0
    assert "cannot reach" not in capsys.readouterr().err
    assert waits_for_the_vm(fake) == waits
    assert fake.names("instances") == ["ibgw-vm"]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_refused_mutation_is_retried_with_the_same_request_id(fake, inventory, capsys, status):
    fake.fail_next("POST", "/instances", status=status, times=2)
    assert provision(inventory) == 0
    inserts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/instances")]
    assert len(inserts) == 3 and len({r.query["requestId"] for r in inserts}) == 1
    err = capsys.readouterr().err
    assert f"instance ibgw-vm: insert: {status} " in err
    assert "retry 1 of 5" in err and "retry 2 of 5" in err and "retry 3 of" not in err


def test_retries_back_off_doubling_up_to_their_bound(fake, inventory):
    paused: list[float] = []
    api = compute.ComputeApi(load(inventory), timing=compute.Timing(), sleep=paused.append, notice=lambda _: None)
    fake.fail_next("POST", "/global/networks", status=503, times=compute.Timing().attempts)
    with pytest.raises(OpsError, match="network ibgw-net: insert refused by the Compute API: 503"):
        cloud.apply(api, load(inventory), lambda step: None)
    assert paused == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert len([r for r in fake.requests if r.path.endswith("/global/networks")]) == compute.Timing().attempts


@pytest.mark.parametrize("refusal", [
    ("/instances", "compute.instances.create", "roles/compute.instanceAdmin.v1"),
    ("/firewalls", "compute.firewalls.create", "roles/compute.securityAdmin"),
    ("/instances", "iam.serviceAccounts.actAs", "roles/iam.serviceAccountUser"),
])
def test_a_refused_permission_is_named_with_the_role_that_grants_it(fake, inventory, capsys, refusal):
    path, permission, role = refusal
    fake.fail_next("POST", path, permission=permission)
    assert provision(inventory) == ExitCode.FAILED
    assert f"missing permission {permission}: grant {role}" in capsys.readouterr().err


def test_the_vm_is_protected_and_scheduled_for_the_week(fake, inventory):
    assert provision(inventory) == 0
    vm = fake.get("instances", "ibgw-vm")
    assert vm["deletionProtection"] is True
    assert vm["scheduling"] == {"onHostMaintenance": "MIGRATE", "automaticRestart": True, "preemptible": False,
                                "provisioningModel": "STANDARD"}


def test_scheduling_and_protection_drift_is_put_back_without_a_restart(fake, inventory, capsys):
    assert provision(inventory) == 0
    instances_client(fake).set_scheduling_unary(project=PROJECT, zone=ZONE, instance="ibgw-vm",
                                                scheduling_resource={"on_host_maintenance": "TERMINATE",
                                                                     "automatic_restart": False})
    fake.update("instances", "ibgw-vm", deletionProtection=False)
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0
    assert "deletion_protection: False -> True (setDeletionProtection)" in plan
    assert "'on_host_maintenance': 'TERMINATE'" in plan and "(setScheduling)" in plan
    assert_one_provision_fixes_it(fake, inventory, [f"POST {VM_PATH}/setScheduling",
                                                    f"POST {VM_PATH}/setDeletionProtection"])
    vm = fake.get("instances", "ibgw-vm")
    assert (vm["scheduling"]["onHostMaintenance"], vm["scheduling"]["automaticRestart"]) == ("MIGRATE", True)
    assert (vm["status"], vm["deletionProtection"]) == ("RUNNING", True)


def test_a_spot_vm_is_reported_with_the_command_and_fixed_once_stopped(fake, inventory, capsys):
    assert provision(inventory) == 0
    fake.update("instances", "ibgw-vm", scheduling={"onHostMaintenance": "TERMINATE", "automaticRestart": False,
                                                    "preemptible": False, "provisioningModel": "SPOT"})
    code, plan, _ = plan_of(inventory, capsys)
    assert code == ExitCode.ATTENTION
    assert "(can change only while the VM is stopped, left as is)" in plan
    stop = f"gcloud compute instances stop ibgw-vm --project={PROJECT} --zone={ZONE}"
    assert f"to apply it: {stop} && ibgw-ops -i <inventory> provision --skip-deploy && " in plan
    fake.reset_log()
    assert provision(inventory) == ExitCode.ATTENTION
    assert fake.mutating_calls() == []
    assert f"scheduling differs and can change only while the VM is stopped; when the interruption is acceptable " \
           f"(the gateway sessions end): {stop}" in capsys.readouterr().err
    instances_client(fake).stop_unary(project=PROJECT, zone=ZONE, instance="ibgw-vm")
    assert_one_provision_fixes_it(fake, inventory, [f"POST {VM_PATH}/setScheduling"])
    assert fake.get("instances", "ibgw-vm")["scheduling"]["provisioningModel"] == "STANDARD"


def test_destroy_lifts_the_protection_of_its_own_vm_only(fake, inventory, capsys):
    fake.create("networks", {"name": "elsewhere", "autoCreateSubnetworks": False}, project=PROJECT)
    fake.create("subnetworks", {"name": "elsewhere", "network": "global/networks/elsewhere",
                                "ipCidrRange": "10.99.0.0/24"}, project=PROJECT, location=REGION)
    fake.create("instances", {"name": "someone-elses", "machineType": f"zones/{ZONE}/machineTypes/e2-small",
                              "disks": [{"boot": True}], "deletionProtection": True,
                              "networkInterfaces": [{"subnetwork": f"regions/{REGION}/subnetworks/elsewhere"}]},
                project=PROJECT, location=ZONE)
    assert provision(inventory) == 0
    fake.reset_log()
    capsys.readouterr()
    assert main(["-i", str(inventory), "destroy", "--yes"]) == 0
    assert "instance ibgw-vm (deletion protection lifted first)" in capsys.readouterr().out
    calls = fake.mutating_calls()
    assert calls[:2] == [f"POST {VM_PATH}/setDeletionProtection", f"DELETE {VM_PATH}"]
    assert not any("someone-elses" in call for call in calls)
    assert fake.names("instances") == ["someone-elses"]
    assert fake.get("instances", "someone-elses")["deletionProtection"] is True


def test_an_external_ip_swap_on_a_running_vm_is_reported_not_applied(fake, inventory, capsys):
    assert provision(inventory) == 0
    reserved = fake.get("addresses", "ibgw-vm-external")["address"]
    swap_the_external_ip(fake)
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0 and "(would drop the running VM's connections, left as is)" in plan
    command = (f"gcloud compute instances delete-access-config ibgw-vm --project={PROJECT} --zone={ZONE} "
               "--network-interface=nic0 --access-config-name='External NAT' && gcloud compute instances "
               f"add-access-config ibgw-vm --project={PROJECT} --zone={ZONE} --network-interface=nic0 "
               f"--access-config-name=external-nat --address={reserved} --network-tier=PREMIUM")
    assert f"to apply it: {command}" in plan
    fake.reset_log()
    assert provision(inventory) == 0
    assert fake.mutating_calls() == []
    assert command in capsys.readouterr().err


def test_going_private_removes_the_external_ip_only_once_cloud_nat_existed(fake, inventory, capsys):
    assert provision(inventory) == 0
    edit(inventory, "vm", public_ip=False)
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0 and "create  router      ibgw-router" in plan
    assert "(would cut the running VM off the internet: Cloud NAT did not exist before this run, left as is)" in plan
    fake.reset_log()
    assert provision(inventory) == 0
    assert f"POST {VM_PATH}/deleteAccessConfig" not in fake.mutating_calls()
    assert fake.names("routers") == ["ibgw-router"]
    assert fake.get("instances", "ibgw-vm")["networkInterfaces"][0]["accessConfigs"]
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0 and "access_configs:" in plan and "(deleteAccessConfig/addAccessConfig)" in plan
    assert_one_provision_fixes_it(fake, inventory, [f"POST {VM_PATH}/deleteAccessConfig"])


def test_a_machine_type_change_is_reported_with_the_command_in_the_plan_too(fake, inventory, capsys):
    assert provision(inventory) == 0
    edit(inventory, "vm", machine_type="e2-standard-2")
    code, plan, _ = plan_of(inventory, capsys)
    assert code == 0 and "(cannot change in place, left as is)" in plan
    vm = f"ibgw-vm --project={PROJECT} --zone={ZONE}"
    assert (f"to apply it: gcloud compute instances stop {vm} && gcloud compute instances set-machine-type {vm} "
            f"--machine-type=e2-standard-2 && gcloud compute instances start {vm}") in plan
