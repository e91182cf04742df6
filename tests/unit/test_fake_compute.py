"""The Compute Engine fake, exercised through the real google-cloud-compute REST clients."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1 as c

from ibgw_ops.lab.fake_compute import API_ROOT, ApiError, FakeCompute

P, R, Z = "proj", "us-east1", "us-east1-b"
DONE, RUNNING = c.Operation.Status.DONE, c.Operation.Status.RUNNING
NET_LINK = f"{API_ROOT}projects/{P}/global/networks/net"
SUB_LINK = f"{API_ROOT}projects/{P}/regions/{R}/subnetworks/sub"


@pytest.fixture(autouse=True)
def _no_mtls(monkeypatch):
    monkeypatch.setenv("GOOGLE_API_USE_CLIENT_CERTIFICATE", "false")


def clients(fake: FakeCompute) -> SimpleNamespace:
    kw = {"credentials": AnonymousCredentials(), "client_options": {"api_endpoint": fake.url}}
    return SimpleNamespace(
        networks=c.NetworksClient(**kw), firewalls=c.FirewallsClient(**kw), subnetworks=c.SubnetworksClient(**kw),
        addresses=c.AddressesClient(**kw), routers=c.RoutersClient(**kw), instances=c.InstancesClient(**kw),
        global_ops=c.GlobalOperationsClient(**kw), region_ops=c.RegionOperationsClient(**kw),
        zone_ops=c.ZoneOperationsClient(**kw),
    )


@pytest.fixture
def fake() -> Iterator[FakeCompute]:
    with FakeCompute() as f:
        yield f


@pytest.fixture
def gce(fake):
    return clients(fake)


def add_network(gce, name="net"):
    return gce.networks.insert_unary(project=P, network_resource=c.Network(name=name, auto_create_subnetworks=False))


def add_subnet(gce, name="sub", cidr="10.10.0.0/24", network="global/networks/net"):
    return gce.subnetworks.insert_unary(project=P, region=R, subnetwork_resource=c.Subnetwork(
        name=name, network=network, ip_cidr_range=cidr))


def add_address(gce, name, **fields):
    return gce.addresses.insert_unary(project=P, region=R, address_resource=c.Address(name=name, **fields))


def add_internal(gce, name="ip-int", **fields):
    return add_address(gce, name, address_type="INTERNAL", purpose="GCE_ENDPOINT", subnetwork=SUB_LINK, **fields)


def add_instance(gce, name="vm", nic=None, **fields):
    disk = c.AttachedDisk(boot=True, auto_delete=True, initialize_params=c.AttachedDiskInitializeParams(
        source_image="projects/debian-cloud/global/images/family/debian-13", disk_size_gb=20))
    return gce.instances.insert_unary(project=P, zone=Z, instance_resource=c.Instance(
        name=name, machine_type=f"zones/{Z}/machineTypes/e2-medium", disks=[disk],
        network_interfaces=[nic or c.NetworkInterface(subnetwork=f"regions/{R}/subnetworks/sub")], **fields))


@pytest.fixture
def vpc(gce):
    add_network(gce)
    add_subnet(gce)
    return gce


def test_network_lifecycle(fake, gce):
    op = add_network(gce)
    assert op.status == DONE and op.name.startswith("operation-") and op.operation_type == "insert"
    assert op.target_link == NET_LINK
    net = gce.networks.get(project=P, network="net")
    assert net.self_link == NET_LINK and net.id > 0 and net.creation_timestamp and net.kind == "compute#network"
    assert net.auto_create_subnetworks is False
    assert [n.name for n in gce.networks.list(project=P)] == ["net"]
    assert gce.networks.delete_unary(project=P, network="net").operation_type == "delete"
    with pytest.raises(exceptions.NotFound, match="projects/proj/global/networks/net"):
        gce.networks.get(project=P, network="net")
    assert fake.names("networks") == []


def test_extended_operation_result_needs_no_polling_when_done(fake, gce):
    gce.networks.insert(project=P, network_resource=c.Network(name="net", auto_create_subnetworks=False)).result()
    assert fake.names("networks") == ["net"]


@pytest.mark.parametrize("network", [NET_LINK, f"projects/{P}/global/networks/net", "global/networks/net"])
def test_firewall_references_are_normalised_and_patch_replaces_lists(vpc, network):
    vpc.firewalls.insert_unary(project=P, firewall_resource=c.Firewall(
        name="fw", network=network, allowed=[c.Allowed(I_p_protocol="tcp", ports=["4002"])],
        source_ranges=["10.20.0.0/26"], target_tags=["ibgw"]))
    vpc.firewalls.patch_unary(project=P, firewall="fw", firewall_resource=c.Firewall(source_ranges=["10.30.0.0/26"]))
    fw = vpc.firewalls.get(project=P, firewall="fw")
    assert fw.network == NET_LINK
    assert list(fw.source_ranges) == ["10.30.0.0/26"] and list(fw.target_tags) == ["ibgw"]
    assert fw.allowed[0].I_p_protocol == "tcp" and fw.direction == "INGRESS" and fw.priority == 1000
    vpc.firewalls.delete_unary(project=P, firewall="fw")
    assert list(vpc.firewalls.list(project=P)) == []


def test_firewall_without_sources_is_open_to_all_like_gce(vpc):
    vpc.firewalls.insert_unary(project=P, firewall_resource=c.Firewall(
        name="fw", network="global/networks/net", allowed=[c.Allowed(I_p_protocol="tcp")]))
    assert list(vpc.firewalls.get(project=P, firewall="fw").source_ranges) == ["0.0.0.0/0"]


def test_subnetwork_lifecycle_and_private_google_access(vpc):
    sub = vpc.subnetworks.get(project=P, region=R, subnetwork="sub")
    assert sub.self_link == SUB_LINK and sub.network == NET_LINK and sub.region.endswith(f"/regions/{R}")
    assert sub.private_ip_google_access is False and sub.gateway_address == "10.10.0.1"
    assert list(vpc.networks.get(project=P, network="net").subnetworks) == [SUB_LINK]
    op = vpc.subnetworks.set_private_ip_google_access_unary(
        project=P, region=R, subnetwork="sub",
        subnetworks_set_private_ip_google_access_request_resource=c.SubnetworksSetPrivateIpGoogleAccessRequest(
            private_ip_google_access=True))
    assert op.region.endswith(f"/regions/{R}") and op.operation_type == "setPrivateIpGoogleAccess"
    assert vpc.subnetworks.get(project=P, region=R, subnetwork="sub").private_ip_google_access is True
    vpc.subnetworks.delete_unary(project=P, region=R, subnetwork="sub")
    assert [s.name for s in vpc.subnetworks.list(project=P, region=R)] == []


def test_router_lifecycle_and_patch(vpc):
    nat = c.RouterNat(name="nat", nat_ip_allocate_option="AUTO_ONLY",
                      source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES")
    vpc.routers.insert_unary(project=P, region=R, router_resource=c.Router(
        name="rt", network="global/networks/net", nats=[nat]))
    vpc.routers.patch_unary(project=P, region=R, router="rt", router_resource=c.Router(
        nats=[c.RouterNat(name="nat2", nat_ip_allocate_option="AUTO_ONLY")]))
    router = vpc.routers.get(project=P, region=R, router="rt")
    assert router.network == NET_LINK and [n.name for n in router.nats] == ["nat2"]
    assert [r.name for r in vpc.routers.list(project=P, region=R)] == ["rt"]
    vpc.routers.delete_unary(project=P, region=R, router="rt")
    with pytest.raises(exceptions.NotFound):
        vpc.routers.get(project=P, region=R, router="rt")


def test_addresses_get_ips_and_become_in_use_with_an_instance(fake, vpc):
    add_internal(vpc)
    add_address(vpc, "ip-ext", address_type="EXTERNAL", network_tier="PREMIUM")
    internal = vpc.addresses.get(project=P, region=R, address="ip-int")
    external = vpc.addresses.get(project=P, region=R, address="ip-ext")
    assert ipaddress.ip_address(internal.address) in ipaddress.ip_network("10.10.0.0/24")
    assert internal.address not in ("10.10.0.0", "10.10.0.1") and not ipaddress.ip_address(external.address).is_private
    assert internal.status == external.status == "RESERVED"
    assert sorted(a.name for a in vpc.addresses.list(project=P, region=R)) == ["ip-ext", "ip-int"]

    add_instance(vpc, nic=c.NetworkInterface(
        subnetwork=f"regions/{R}/subnetworks/sub", network_i_p=internal.address,
        access_configs=[c.AccessConfig(type_="ONE_TO_ONE_NAT", nat_i_p=external.address)]))
    vm = vpc.instances.get(project=P, zone=Z, instance="vm")
    assert vm.status == "RUNNING" and vm.zone == f"{API_ROOT}projects/{P}/zones/{Z}"
    assert vm.network_interfaces[0].network_i_p == internal.address
    assert vm.network_interfaces[0].access_configs[0].nat_i_p == external.address
    assert vm.network_interfaces[0].network == NET_LINK
    for name in ("ip-int", "ip-ext"):
        address = vpc.addresses.get(project=P, region=R, address=name)
        assert address.status == "IN_USE" and list(address.users) == [vm.self_link]

    vpc.instances.delete_unary(project=P, zone=Z, instance="vm")
    assert fake.get("addresses", "ip-ext")["status"] == "RESERVED"
    vpc.addresses.delete_unary(project=P, region=R, address="ip-ext")
    assert fake.names("addresses") == ["ip-int"]


def test_instance_without_network_ip_gets_a_free_one(vpc):
    add_internal(vpc, address="10.10.0.2")
    add_instance(vpc)
    vm = vpc.instances.get(project=P, zone=Z, instance="vm")
    assert vm.network_interfaces[0].network_i_p not in ("10.10.0.0", "10.10.0.1", "10.10.0.2")
    assert [i.name for i in vpc.instances.list(project=P, zone=Z)] == ["vm"]


@pytest.mark.parametrize("call", [
    lambda g: g.networks.get(project=P, network="nope"),
    lambda g: g.firewalls.delete_unary(project=P, firewall="nope"),
    lambda g: g.subnetworks.patch_unary(project=P, region=R, subnetwork="nope", subnetwork_resource=c.Subnetwork()),
    lambda g: g.instances.set_labels_unary(project=P, zone=Z, instance="nope",
                                           instances_set_labels_request_resource=c.InstancesSetLabelsRequest()),
    lambda g: g.addresses.set_labels_unary(project=P, region=R, resource="nope",
                                           region_set_labels_request_resource=c.RegionSetLabelsRequest()),
    lambda g: g.global_ops.get(project=P, operation="operation-nope"),
], ids=["get", "delete", "patch", "instance-setLabels", "address-setLabels", "operation"])
def test_missing_items_are_not_found(gce, call):
    with pytest.raises(exceptions.NotFound):
        call(gce)


def test_insert_of_existing_name_is_conflict(fake, gce):
    add_network(gce)
    with pytest.raises(exceptions.Conflict, match="already exists"):
        add_network(gce)
    assert fake.names("networks") == ["net"]


@pytest.mark.parametrize(("collection", "call"), [
    ("subnetworks", lambda g: add_subnet(g, name="sub2", cidr="10.11.0.0/24", network="global/networks/ghost")),
    ("addresses", lambda g: add_address(g, "ip", address_type="INTERNAL", subnetwork=f"regions/{R}/subnetworks/ghost")),
    ("instances", lambda g: add_instance(g, nic=c.NetworkInterface(subnetwork=f"regions/{R}/subnetworks/ghost"))),
    ("instances", lambda g: add_instance(g, nic=c.NetworkInterface(
        subnetwork=SUB_LINK, access_configs=[c.AccessConfig(nat_i_p="34.1.2.3")]))),
])
def test_insert_with_missing_reference_is_bad_request(fake, vpc, collection, call):
    with pytest.raises(exceptions.BadRequest):
        call(vpc)
    assert fake.names(collection) == ([] if collection != "subnetworks" else ["sub"])


def test_stale_fingerprints_are_refused_with_412(vpc):
    add_instance(vpc, labels={"app": "ibgw"}, tags=c.Tags(items=["a"]))
    old = vpc.instances.get(project=P, zone=Z, instance="vm")
    kw = {"project": P, "zone": Z, "instance": "vm"}
    vpc.instances.set_labels_unary(**kw, instances_set_labels_request_resource=c.InstancesSetLabelsRequest(
        labels={"app": "ibgw", "v": "2"}, label_fingerprint=old.label_fingerprint))
    vpc.instances.set_tags_unary(**kw, tags_resource=c.Tags(items=["b"], fingerprint=old.tags.fingerprint))
    vpc.instances.set_metadata_unary(**kw, metadata_resource=c.Metadata(
        items=[c.Items(key="enable-oslogin", value="TRUE")], fingerprint=old.metadata.fingerprint))
    new = vpc.instances.get(**kw)
    assert dict(new.labels) == {"app": "ibgw", "v": "2"} and list(new.tags.items) == ["b"]
    assert new.metadata.items[0].key == "enable-oslogin"
    assert new.label_fingerprint != old.label_fingerprint and new.tags.fingerprint != old.tags.fingerprint
    with pytest.raises(exceptions.PreconditionFailed):
        vpc.instances.set_labels_unary(**kw, instances_set_labels_request_resource=c.InstancesSetLabelsRequest(
            labels={}, label_fingerprint=old.label_fingerprint))
    with pytest.raises(exceptions.PreconditionFailed):
        vpc.instances.set_tags_unary(**kw, tags_resource=c.Tags(items=[], fingerprint=old.tags.fingerprint))
    with pytest.raises(exceptions.PreconditionFailed):
        vpc.instances.set_metadata_unary(**kw, metadata_resource=c.Metadata(fingerprint=old.metadata.fingerprint))
    assert dict(vpc.instances.get(**kw).labels) == {"app": "ibgw", "v": "2"}


def test_address_set_labels_checks_fingerprint(vpc):
    add_address(vpc, "ip-ext")
    fingerprint = vpc.addresses.get(project=P, region=R, address="ip-ext").label_fingerprint
    request = c.RegionSetLabelsRequest(labels={"app": "ibgw"}, label_fingerprint=fingerprint)
    vpc.addresses.set_labels_unary(project=P, region=R, resource="ip-ext", region_set_labels_request_resource=request)
    assert dict(vpc.addresses.get(project=P, region=R, address="ip-ext").labels) == {"app": "ibgw"}
    with pytest.raises(exceptions.PreconditionFailed):
        vpc.addresses.set_labels_unary(project=P, region=R, resource="ip-ext",
                                       region_set_labels_request_resource=request)


@pytest.mark.parametrize(("setup", "delete"), [
    (lambda g: None, lambda g: g.networks.delete_unary(project=P, network="net")),
    (add_internal, lambda g: g.subnetworks.delete_unary(project=P, region=R, subnetwork="sub")),
    (add_instance, lambda g: g.subnetworks.delete_unary(project=P, region=R, subnetwork="sub")),
    (lambda g: (add_internal(g, address="10.10.0.9"), add_instance(g, nic=c.NetworkInterface(
        subnetwork=SUB_LINK, network_i_p="10.10.0.9"))),
     lambda g: g.addresses.delete_unary(project=P, region=R, address="ip-int")),
], ids=["network-with-subnet", "subnet-with-address", "subnet-with-instance", "address-in-use"])
def test_delete_of_resource_in_use_is_refused(fake, vpc, setup, delete):
    setup(vpc)
    before = {col: fake.names(col) for col in ("networks", "subnetworks", "addresses")}
    with pytest.raises(exceptions.BadRequest, match="already being used"):
        delete(vpc)
    assert {col: fake.names(col) for col in before} == before


def test_delayed_operations_run_then_finish_in_every_scope():
    with FakeCompute(delay=0.4) as fake:
        gce = clients(fake)
        start = time.monotonic()
        ops = [(gce.global_ops, {}, add_network(gce))]
        ops.append((gce.region_ops, {"region": R}, add_subnet(gce)))
        ops.append((gce.zone_ops, {"zone": Z}, add_instance(gce)))
        assert [op.status for _, _, op in ops] == [RUNNING] * 3
        assert fake.names("instances") == ["vm"]  # the change is applied at once
        assert gce.global_ops.get(project=P, operation=ops[0][2].name).status == RUNNING
        with pytest.raises(exceptions.NotFound):  # an operation lives in its resource's scope only
            gce.global_ops.get(project=P, operation=ops[2][2].name)
        for ops_client, scope, op in ops:
            assert ops_client.wait(project=P, operation=op.name, **scope).status == DONE
        assert time.monotonic() - start >= 0.4
        assert gce.zone_ops.get(project=P, zone=Z, operation=ops[2][2].name).progress == 100


def test_injected_http_error_changes_nothing_and_fires_once(fake, vpc):
    fake.fail_next("POST", "/instances", status=503)
    with pytest.raises(exceptions.ServiceUnavailable):
        add_instance(vpc)
    assert fake.names("instances") == []
    add_instance(vpc)
    assert fake.names("instances") == ["vm"]


def test_injected_operation_error_ends_done_with_error_and_creates_nothing(fake, gce):
    fake.fail_next("POST", "/global/networks", operation_error="QUOTA_EXCEEDED", message="Quota 'NETWORKS' exceeded")
    op = add_network(gce)
    assert op.status == DONE and op.error.errors[0].code == "QUOTA_EXCEEDED"
    assert op.http_error_status_code == 403 and fake.names("networks") == []
    fake.fail_next("POST", "/global/networks", operation_error="QUOTA_EXCEEDED", message="Quota 'NETWORKS' exceeded")
    with pytest.raises(exceptions.Forbidden, match="NETWORKS"):
        gce.networks.insert(project=P, network_resource=c.Network(name="net", auto_create_subnetworks=False)).result()
    assert fake.names("networks") == []


def test_list_filters_by_label(vpc):
    for name, env in (("a", "prod"), ("b", "dev"), ("c", None)):
        add_address(vpc, name, labels={"env": env} if env else {})

    def names(filter_):
        request = c.ListAddressesRequest(project=P, region=R, filter=filter_)
        return [a.name for a in vpc.addresses.list(request=request)]

    assert names('labels.env = "prod"') == ["a"]
    assert names("labels.env=dev") == ["b"]
    assert names("something unsupported") == ["a", "b", "c"]


def test_request_log_and_mutating_calls(fake, vpc):
    fake.reset_log()
    op = add_internal(vpc)
    vpc.region_ops.wait(project=P, region=R, operation=op.name)
    vpc.addresses.get(project=P, region=R, address="ip-int")
    vpc.addresses.delete_unary(request=c.DeleteAddressRequest(project=P, region=R, address="ip-int", request_id="u1"))
    base = f"/compute/v1/projects/{P}/regions/{R}/addresses"
    assert fake.mutating_calls() == [f"POST {base}", f"DELETE {base}/ip-int"]
    assert [r.method for r in fake.requests] == ["POST", "POST", "GET", "DELETE"]
    assert fake.requests[0].body["addressType"] == "INTERNAL" and fake.requests[3].query["requestId"] == "u1"
    fake.reset_log()
    assert fake.requests == [] and fake.mutating_calls() == []


def test_retry_with_same_request_id_returns_the_first_operation(gce):
    request = c.InsertNetworkRequest(project=P, request_id="4b1c", network_resource=c.Network(
        name="net", auto_create_subnetworks=False))
    assert gce.networks.insert_unary(request=request).name == gce.networks.insert_unary(request=request).name


def test_drift_helpers_are_seen_by_the_client(fake, vpc):
    vpc.firewalls.insert_unary(project=P, firewall_resource=c.Firewall(
        name="fw", network="global/networks/net", allowed=[c.Allowed(I_p_protocol="tcp")],
        source_ranges=["10.0.0.0/8"]))
    fake.update("firewalls", "fw", sourceRanges=["0.0.0.0/0"])
    assert list(vpc.firewalls.get(project=P, firewall="fw").source_ranges) == ["0.0.0.0/0"]
    add_instance(vpc)
    stale = fake.get("instances", "vm")["labelFingerprint"]
    fake.update("instances", "vm", labels={"edited": "console"})
    with pytest.raises(exceptions.PreconditionFailed):
        vpc.instances.set_labels_unary(project=P, zone=Z, instance="vm", instances_set_labels_request_resource=(
            c.InstancesSetLabelsRequest(labels={}, label_fingerprint=stale)))
    fake.delete("firewalls", "fw")
    with pytest.raises(exceptions.NotFound):
        vpc.firewalls.get(project=P, firewall="fw")
    fake.create("networks", {"name": "seeded", "autoCreateSubnetworks": False}, project=P)
    assert vpc.networks.get(project=P, network="seeded").self_link == f"{API_ROOT}projects/{P}/global/networks/seeded"


def test_unsupported_calls_are_not_mistaken_for_missing_resources(gce):
    add_network(gce)
    with pytest.raises(exceptions.MethodNotImplemented):
        gce.networks.switch_to_custom_mode_unary(project=P, network="net")



def add_rule(gce, name="fw", **fields):
    fields.setdefault("allowed", [c.Allowed(I_p_protocol="tcp", ports=["4002"])])
    return gce.firewalls.insert_unary(project=P, firewall_resource=c.Firewall(
        name=name, network="global/networks/net", **fields))


def test_a_firewall_patch_cannot_clear_a_list_but_an_update_replaces_the_rule(fake, vpc):
    add_rule(vpc, source_ranges=["10.20.0.0/26"], source_tags=["web"], target_tags=["ibgw"], priority=900)
    vpc.firewalls.patch_unary(project=P, firewall="fw", firewall_resource=c.Firewall(
        source_tags=[], disabled=False, priority=1000))
    patched = fake.get("firewalls", "fw")
    assert patched["sourceTags"] == ["web"] and patched["priority"] == 1000  # [] is never sent, False and 1000 are
    assert fake.requests[-1].body == {"disabled": False, "priority": 1000}
    before = fake.get("firewalls", "fw")
    vpc.firewalls.update_unary(project=P, firewall="fw", firewall_resource=c.Firewall(
        name="fw", network="global/networks/net", allowed=[c.Allowed(I_p_protocol="tcp", ports=["4001"])],
        source_ranges=["10.30.0.0/26"]))
    after = fake.get("firewalls", "fw")
    assert "sourceTags" not in after and "targetTags" not in after
    assert after["sourceRanges"] == ["10.30.0.0/26"] and after["priority"] == 1000 and after["disabled"] is False
    assert (after["id"], after["selfLink"], after["creationTimestamp"]) == (
        before["id"], before["selfLink"], before["creationTimestamp"])


@pytest.mark.parametrize("change", [
    {"direction": "EGRESS", "source_tags": []},
    {"denied": [c.Denied(I_p_protocol="tcp")], "allowed": []},
    {"network": "global/networks/other"},
], ids=["direction", "action", "network"])
def test_a_firewalls_direction_action_and_network_stay_as_created(fake, vpc, change):
    add_network(vpc, "other")
    add_rule(vpc, source_ranges=["10.20.0.0/26"])
    before = fake.get("firewalls", "fw")
    body = {"name": "fw", "network": "global/networks/net", "allowed": [c.Allowed(I_p_protocol="tcp")], **change}
    for call in (lambda: vpc.firewalls.update_unary(project=P, firewall="fw", firewall_resource=c.Firewall(**body)),
                 lambda: vpc.firewalls.patch_unary(project=P, firewall="fw", firewall_resource=c.Firewall(**change))):
        with pytest.raises(exceptions.BadRequest, match="cannot be changed"):
            call()
    assert fake.get("firewalls", "fw") == before
    with pytest.raises(ApiError, match="cannot be changed"):
        fake.update("firewalls", "fw", direction="EGRESS")


@pytest.mark.parametrize("fields", [
    {"source_service_accounts": ["a@p.iam.gserviceaccount.com"], "target_tags": ["ibgw"]},
    {"target_service_accounts": ["a@p.iam.gserviceaccount.com"], "source_tags": ["web"]},
    {"allowed": [c.Allowed(I_p_protocol="tcp")], "denied": [c.Denied(I_p_protocol="udp")]},
    {"allowed": []},
    {"direction": "EGRESS", "source_tags": ["web"]},
    {"log_config": c.FirewallLogConfig(enable=False, metadata="INCLUDE_ALL_METADATA")},
], ids=["source-accounts-with-tags", "target-accounts-with-tags", "allowed-and-denied", "neither", "egress-tags",
        "log-metadata-without-logging"])
def test_firewall_combinations_the_api_refuses(fake, vpc, fields):
    with pytest.raises(exceptions.BadRequest):
        add_rule(vpc, **fields)
    assert fake.names("firewalls") == []


def test_access_configs_are_removed_and_added_one_per_interface(fake, vpc):
    add_address(vpc, "ip-ext")
    reserved = fake.get("addresses", "ip-ext")["address"]
    add_instance(vpc)
    kw = {"project": P, "zone": Z, "instance": "vm", "network_interface": "nic0"}
    vpc.instances.add_access_config_unary(**kw, access_config_resource=c.AccessConfig(name="by-hand"))
    ephemeral = fake.get("instances", "vm")["networkInterfaces"][0]["accessConfigs"][0]
    assert ephemeral["name"] == "by-hand" and ephemeral["natIP"] != reserved
    with pytest.raises(exceptions.BadRequest, match="one access config"):
        vpc.instances.add_access_config_unary(**kw, access_config_resource=c.AccessConfig(nat_i_p=reserved))
    with pytest.raises(exceptions.BadRequest, match="No such access config"):
        vpc.instances.delete_access_config_unary(**kw, access_config="External NAT")
    vpc.instances.delete_access_config_unary(**kw, access_config="by-hand")
    assert "accessConfigs" not in fake.get("instances", "vm")["networkInterfaces"][0]
    vpc.instances.add_access_config_unary(**kw, access_config_resource=c.AccessConfig(nat_i_p=reserved))
    assert fake.get("instances", "vm")["networkInterfaces"][0]["accessConfigs"][0]["natIP"] == reserved
    assert fake.get("addresses", "ip-ext")["status"] == "IN_USE"


def test_a_service_account_changes_only_on_a_stopped_vm(fake, vpc):
    add_instance(vpc)
    kw = {"project": P, "zone": Z, "instance": "vm"}
    request = c.InstancesSetServiceAccountRequest(email="gw@proj.iam.gserviceaccount.com",
                                                  scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with pytest.raises(exceptions.BadRequest, match="must be stopped"):
        vpc.instances.set_service_account_unary(**kw, instances_set_service_account_request_resource=request)
    vpc.instances.stop_unary(**kw)
    vpc.instances.set_service_account_unary(**kw, instances_set_service_account_request_resource=request)
    assert fake.get("instances", "vm")["serviceAccounts"] == [
        {"email": "gw@proj.iam.gserviceaccount.com", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    vpc.instances.set_service_account_unary(
        **kw, instances_set_service_account_request_resource=c.InstancesSetServiceAccountRequest())
    assert "serviceAccounts" not in fake.get("instances", "vm")


def test_a_manual_nat_uses_reserved_external_addresses_and_holds_them(fake, vpc):
    add_address(vpc, "nat-ip")
    add_internal(vpc)
    link = f"{API_ROOT}projects/{P}/regions/{R}/addresses/nat-ip"

    def router(name, option, ips):
        return c.Router(name=name, network="global/networks/net", nats=[c.RouterNat(
            name="nat", nat_ip_allocate_option=option, nat_ips=ips,
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES")])

    for option, ips in (("MANUAL_ONLY", []), ("AUTO_ONLY", [link]), ("MANUAL_ONLY", [f"regions/{R}/addresses/ip-int"])):
        with pytest.raises(exceptions.BadRequest):
            vpc.routers.insert_unary(project=P, region=R, router_resource=router("rt", option, ips))
    vpc.routers.insert_unary(project=P, region=R, router_resource=router("rt", "AUTO_ONLY", []))
    vpc.routers.patch_unary(project=P, region=R, router="rt", router_resource=router(
        "rt", "MANUAL_ONLY", [f"regions/{R}/addresses/nat-ip"]))
    assert fake.get("routers", "rt")["nats"][0]["natIps"] == [link]
    address = fake.get("addresses", "nat-ip")
    assert address["status"] == "IN_USE" and address["users"] == [f"{API_ROOT}projects/{P}/regions/{R}/routers/rt"]
    with pytest.raises(exceptions.BadRequest, match="not a free external address"):
        vpc.routers.insert_unary(project=P, region=R, router_resource=router("rt2", "MANUAL_ONLY", [link]))
    with pytest.raises(exceptions.BadRequest, match="already being used"):
        vpc.addresses.delete_unary(project=P, region=R, address="nat-ip")


def test_a_wait_answers_running_at_gcps_cap_until_a_slow_operation_is_done():
    with FakeCompute(time_scale=0.01) as fake:
        gce = clients(fake)
        fake.slow_next("POST", "/global/networks", seconds=330)
        op = add_network(gce)
        answers = [op.status]
        while answers[-1] != DONE:
            answers.append(gce.global_ops.wait(project=P, operation=op.name).status)
        assert answers[:3] == [RUNNING, RUNNING, RUNNING] and answers[-1] == DONE
        add_subnet(gce)
        assert fake.names("subnetworks") == ["sub"]  # the slowness was for the next call only


def test_an_instance_gets_gcps_scheduling_and_deletion_protection_guards_it(fake, vpc):
    add_instance(vpc)
    vm = fake.get("instances", "vm")
    assert vm["scheduling"] == {"onHostMaintenance": "MIGRATE", "automaticRestart": True, "preemptible": False,
                                "provisioningModel": "STANDARD"}
    assert vm["deletionProtection"] is False
    vpc.instances.set_deletion_protection_unary(request=c.SetDeletionProtectionInstanceRequest(
        project=P, zone=Z, resource="vm", deletion_protection=True))
    with pytest.raises(exceptions.BadRequest, match="protected against deletion"):
        vpc.instances.delete_unary(project=P, zone=Z, instance="vm")
    assert fake.names("instances") == ["vm"]
    vpc.instances.set_deletion_protection_unary(request=c.SetDeletionProtectionInstanceRequest(
        project=P, zone=Z, resource="vm", deletion_protection=False))
    vpc.instances.delete_unary(project=P, zone=Z, instance="vm")
    assert fake.names("instances") == []


def test_set_scheduling_replaces_it_and_the_provisioning_model_changes_only_when_stopped(fake, vpc):
    add_instance(vpc)
    vpc.instances.set_scheduling_unary(project=P, zone=Z, instance="vm", scheduling_resource=c.Scheduling(
        on_host_maintenance="TERMINATE", automatic_restart=False))
    assert fake.get("instances", "vm")["scheduling"] == {"onHostMaintenance": "TERMINATE", "automaticRestart": False,
                                                         "preemptible": False, "provisioningModel": "STANDARD"}
    spot = c.Scheduling(provisioning_model="SPOT", on_host_maintenance="TERMINATE", automatic_restart=False)
    with pytest.raises(exceptions.BadRequest, match="must be stopped to change provisioningModel"):
        vpc.instances.set_scheduling_unary(project=P, zone=Z, instance="vm", scheduling_resource=spot)
    vpc.instances.stop_unary(project=P, zone=Z, instance="vm")
    with pytest.raises(exceptions.BadRequest, match="Spot and preemptible instances must have onHostMaintenance"):
        vpc.instances.set_scheduling_unary(project=P, zone=Z, instance="vm", scheduling_resource=c.Scheduling(
            provisioning_model="SPOT", on_host_maintenance="MIGRATE"))
    vpc.instances.set_scheduling_unary(project=P, zone=Z, instance="vm", scheduling_resource=spot)
    assert fake.get("instances", "vm")["scheduling"]["provisioningModel"] == "SPOT"


def test_a_missing_permission_is_named_as_gcp_names_it(fake, gce):
    fake.fail_next("POST", "/global/networks", permission="compute.networks.create")
    with pytest.raises(exceptions.Forbidden, match=r"Required 'compute\.networks\.create' permission"):
        add_network(gce)
    assert fake.names("networks") == []
