"""Passwords from Secret Manager on the lab VM: the VM reads them with its own (fake) service account.

A fake of the metadata server's token endpoint and of Secret Manager's access method
(tests/support/fake_secret_manager.py) runs inside the lab VM on 127.0.0.1, and the role's endpoint variables point
at it through the lab's inventory;
paper's passwords are Secret Manager versions, live's is a plain one (both paths in one converge).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.lab import Lab, recap_changed

pytestmark = pytest.mark.integration

FAKE_DIR = "/srv/ibgw-fake-gcp"
FAKE_PORT = 18080
PROJECT = "ibgw-lab-test"
TWS_SECRET = f"projects/{PROJECT}/secrets/tws-paper/versions/latest"
VNC_SECRET = f"projects/{PROJECT}/secrets/vnc-paper/versions/2"
ACCOUNT = f"paper-vm@{PROJECT}.iam.gserviceaccount.com"
SECRET_FILES = ["/opt/ibgw/paper/secrets/tws_password", "/opt/ibgw/paper/secrets/vnc_password",
                "/opt/ibgw/live/secrets/tws_password"]


def canary() -> str:
    return f"canary-{uuid.uuid4()}"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class FakeGcp:
    """The fake inside the lab VM; its state (payloads base64-encoded, as the API sends them) goes over SSH stdin."""

    lab: Lab
    token: str = field(default_factory=lambda: f"token-{uuid.uuid4()}")
    values: dict[str, str] = field(default_factory=lambda: {TWS_SECRET: canary(), VNC_SECRET: canary()})
    statuses: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        source = (Path(__file__).parents[1] / "support" / "fake_secret_manager.py").read_text()
        self.lab.cli("lab", "ssh", "--", f"mkdir -p -m 0700 {FAKE_DIR} && cat > {FAKE_DIR}/fake.py", stdin=source)
        self.save()
        self.lab.ssh(f"systemd-run --quiet --collect --unit=ibgw-fake-gcp python3 {FAKE_DIR}/fake.py {FAKE_DIR} "
                     f"{FAKE_PORT} && for i in $(seq 100); do test -e {FAKE_DIR}/ready && exit 0; sleep 0.1; done; "
                     "exit 1")

    def save(self) -> None:
        secrets = {name: {"status": self.statuses.get(name, 200), "version": name.replace("latest", "5"),
                          "data": base64.b64encode(value.encode()).decode()} for name, value in self.values.items()}
        state = json.dumps({"token": self.token, "email": ACCOUNT, "secrets": secrets})
        self.lab.cli("lab", "ssh", "--", f"cat > {FAKE_DIR}/state.new && mv {FAKE_DIR}/state.new {FAKE_DIR}/state.json",
                     stdin=state)

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lab.ssh(f"cat {FAKE_DIR}/requests.jsonl").splitlines()]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{FAKE_PORT}"


@dataclass
class SecretsLab:
    lab: Lab
    fake: FakeGcp
    live_password: str
    first: Any  # the first converge (-vvv)

    def canaries(self) -> list[str]:
        return [*self.fake.values.values(), self.fake.token, self.live_password]


def write_credentials(lab: Lab, entries: dict[str, dict[str, str]]) -> None:
    """The lab's own credentials file (read by plain ansible-playbook and the CLI alike)."""
    path = lab.state / "lab" / "credentials.yml"
    path.write_text(yaml.safe_dump({"ib_gateway_credentials": entries}))
    path.chmod(0o600)


def standard_credentials(live_password: str) -> dict[str, dict[str, str]]:
    return {"live": {"user_id": "lablive", "password": live_password},
            "paper": {"user_id": "labpaper", "password_secret": TWS_SECRET, "vnc_password_secret": VNC_SECRET}}


def file_hashes(lab: Lab) -> list[str]:
    return [line.split()[0] for line in lab.ssh(f"sha256sum {' '.join(SECRET_FILES)}").splitlines()]


@pytest.fixture(scope="module")
def secrets_lab(spare_lab: Lab) -> Iterator[SecretsLab]:
    lab = spare_lab
    settings = lab.inventory / "group_vars" / "ibgw_gateways.yml"
    original = settings.read_text()
    try:
        fake = FakeGcp(lab)
        fake.start()
        with (lab.inventory / "group_vars" / "ibgw_gateways.yml").open("a") as group_vars:
            group_vars.write(f"ib_gateway_metadata_url: {fake.url}/computeMetadata/v1\n"
                             f"ib_gateway_secret_manager_url: {fake.url}/v1\n")
        live_password = canary()
        write_credentials(lab, standard_credentials(live_password))
        yield SecretsLab(lab, fake, live_password, lab.converge("-vvv"))
    finally:
        settings.write_text(original)


def test_the_vm_writes_the_secret_files_from_secret_manager(secrets_lab):
    lab, fake = secrets_lab.lab, secrets_lab.fake
    assert file_hashes(lab) == [sha256(fake.values[TWS_SECRET]), sha256(fake.values[VNC_SECRET]),
                                sha256(secrets_lab.live_password)]
    assert lab.ssh(f"stat -c '%u %g %a' {' '.join(SECRET_FILES)}").split("\n")[:3] == ["1000 1000 400"] * 3
    assert "VNC_SERVER_PASSWORD_FILE='/run/secrets/vnc_password'" in lab.ssh("cat /opt/ibgw/paper/.env")
    assert lab.ssh("ls -A /opt/ibgw/paper/secrets").split() == ["tws_password", "vnc_password"]
    requests = fake.requests()
    assert {r["path"] for r in requests} == {"/computeMetadata/v1/instance/service-accounts/default/token",
                                             f"/v1/{TWS_SECRET}:access", f"/v1/{VNC_SECRET}:access"}
    assert all(r["flavor_ok"] for r in requests if r["path"].startswith("/computeMetadata/"))
    assert all(r["bearer_ok"] for r in requests if r["path"].startswith("/v1/"))


def test_a_second_converge_changes_nothing(secrets_lab):
    assert recap_changed(secrets_lab.lab.converge().stdout) == 0


def test_the_canaries_appear_only_in_their_secret_files(secrets_lab):
    lab, first = secrets_lab.lab, secrets_lab.first
    output = first.stdout + first.stderr
    assert "ESTABLISH SSH CONNECTION" in output  # it really was -vvv
    assert [value for value in secrets_lab.canaries() if value in output] == []
    patterns = " ".join(f"-f {path}" for path in SECRET_FILES)
    places = " ".join(["/opt/ibgw", "/etc", "/var/log", "/root", "/home", "/tmp", "/var/tmp", "/srv", "/run"])  # noqa: S108
    found = lab.ssh(f"grep -rIlF -D skip --exclude-dir=secrets {patterns} {places} 2>/dev/null; "
                    f"echo journal $(journalctl --no-pager -o cat | grep -cF {patterns})")
    assert found.split() == ["journal", "0"]


def test_a_changed_secret_marks_the_running_gateway_restart_pending(secrets_lab):
    lab, fake = secrets_lab.lab, secrets_lab.fake
    lab.ssh("docker compose --project-directory /opt/ibgw/paper up --detach --wait")
    before = lab.container("paper")
    fake.values[TWS_SECRET] = canary()
    fake.save()
    result = lab.converge()
    assert "restart pending: gateway paper" in result.stdout
    assert "restart pending: gateway live" not in result.stdout
    assert recap_changed(result.stdout) == 2  # the secret file and the restart-pending marker
    assert file_hashes(lab)[0] == sha256(fake.values[TWS_SECRET])
    assert lab.container("paper") == before
    inspect = lab.ssh("docker inspect ibgw-paper > /tmp/inspect.json; grep -cF -f /opt/ibgw/paper/secrets/tws_password "
                      "/tmp/inspect.json; rm /tmp/inspect.json")
    assert inspect.strip() == "0"
    assert fake.values[TWS_SECRET] not in result.stdout + result.stderr


def test_a_permission_error_fails_naming_the_role_and_keeps_the_file(secrets_lab):
    """Through the CLI, as an operator runs it: a failed step (exit 1), not bad input."""
    lab, fake = secrets_lab.lab, secrets_lab.fake
    stat = f"stat -c '%i %Y %s %u %a' {SECRET_FILES[0]}"
    before, hashes = lab.ssh(stat), file_hashes(lab)
    fake.values[TWS_SECRET] = canary()  # what a wrong run would write
    fake.statuses[TWS_SECRET] = 403
    fake.save()
    try:
        result = lab.cli("deploy", check=False)
    finally:
        fake.statuses.clear()
        fake.save()
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (f"gateway paper, secret {TWS_SECRET}: permission denied (HTTP 403): the VM's service account {ACCOUNT} "
            f"lacks roles/secretmanager.secretAccessor on {TWS_SECRET}") in output
    assert [value for value in secrets_lab.canaries() if value in output] == []
    assert lab.ssh(stat) == before
    assert file_hashes(lab) == hashes


def test_a_password_given_both_ways_is_bad_input(secrets_lab):
    lab = secrets_lab.lab
    value = canary()
    entries = standard_credentials(secrets_lab.live_password)
    entries["paper"]["password"] = value
    write_credentials(lab, entries)
    try:
        result = lab.cli("deploy", check=False)
    finally:
        write_credentials(lab, standard_credentials(secrets_lab.live_password))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "paper.password given both as a value and as a Secret Manager version" in output
    assert value not in output


def test_a_malformed_version_name_is_bad_input(secrets_lab, tmp_path):
    lab = secrets_lab.lab
    value = canary()  # a password pasted into the name field by mistake must not be echoed
    path = tmp_path / "credentials.yml"
    entries = standard_credentials(secrets_lab.live_password)
    entries["paper"]["vnc_password_secret"] = value
    path.write_text(yaml.safe_dump({"ib_gateway_credentials": entries}))
    path.chmod(0o600)
    result = lab.playbook("site.yml", "-e", f"ib_gateway_credentials_file={path}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ("paper.vnc_password_secret must be a Secret Manager version name, projects/<project id or number>/"
            "secrets/<secret id>/versions/<version number or latest>") in output
    assert "Configure the gateway hosts" not in output
    assert value not in output
