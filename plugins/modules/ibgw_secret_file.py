"""Ansible module: write the gateways' secret files, from the controller's credentials or Secret Manager versions.

Either way a value is written only into its file: a controller value arrives as a module argument (over the
pipelined connection's stdin, never in a temporary file as ansible.builtin.copy would stage it); a Secret Manager
value goes from Secret Manager to the file on the VM and never passes through the controller. It is never returned,
and is compared with the file's content without being reported. One call writes every file of the host: a looped
task paid an SSH round trip and a Python start on the VM per file, and a metadata token per Secret Manager file.
Stdlib only.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_secret_file
short_description: Write secret files from given values or from Secret Manager with the VM's own service account
description:
  - >-
    Writes each of files. With content, that value. With secret, it reads the secret version with Secret Manager's
    access method, with an access token for the VM's default service account from the GCE metadata server (asked
    once per call, only when a file has secret), and writes its payload. Either is written byte for byte to dest
    (owner and group numeric, mode 0400) through a temporary file in the same directory and a rename.
  - >-
    A file changes only when its content, owner or mode differ. In check mode it reads the secrets and reports
    whether each file would change, writing nothing. Values and the token are never returned nor put in a message.
  - >-
    A file that fails (error permission_denied, not_found, unauthenticated, metadata, http, payload, write or
    bad_name) is left untouched and the others are still written; the module then fails, with failures listing
    each failed file and a message naming its instance and secret version.
options:
  files:
    type: list
    elements: dict
    required: true
    description: The files to write, each with content or secret.
    suboptions:
      instance: {type: str, required: true, description: 'Whose file it is (a gateway instance), for messages.'}
      content: {type: str, description: 'The value to write (no_log); give content or secret.'}
      secret:
        type: str
        description: Version resource name, projects/<project>/secrets/<secret>/versions/<number or latest>.
      dest: {type: path, required: true, description: 'The secret file to write.'}
      owner: {type: int, required: true, description: 'Numeric owner of the file.'}
      group: {type: int, required: true, description: 'Numeric group of the file.'}
  metadata_url:
    type: str
    default: http://metadata.google.internal/computeMetadata/v1
    description: The GCE metadata server (no proxy is used for it).
  secret_manager_url:
    type: str
    default: https://secretmanager.googleapis.com/v1
    description: The Secret Manager API (https_proxy applies; redirects are refused).
  timeout: {type: float, default: 10, description: 'Seconds allowed for each HTTP request.'}
"""

RETURN = r"""
files:
  type: list
  elements: dict
  description: >-
    Every file, in the order given, failed or not: instance, dest, secret, changed, and version (the resolved
    version's resource name, never the value; null for content or a failure).
failures:
  type: list
  elements: dict
  description: >-
    On failure, each failed file: instance, dest, secret, error (the kind of failure) and msg (no value).
"""

import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.host_files import (  # noqa: E402
    HostFileError,
    differs,
    write_atomically,
)

VERSION_NAME = re.compile(r"^projects/[A-Za-z0-9.:-]+/secrets/[A-Za-z0-9_-]+/versions/[A-Za-z0-9_-]+$")
MAX_BODY = 1 << 20  # Secret Manager payloads are at most 64 KiB; its JSON is base64 plus a few fields.
FILE_MODE = 0o400


class Failure(Exception):
    """A file's failure; its message names the secret, never a value (where() puts the instance first)."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect with the Authorization header to another host: refuse redirects."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """No new request: the redirect ends as an HTTP error."""
        return None


def _get(url: str, headers: dict[str, str], timeout: float, *, proxies: bool) -> bytes:
    """GET url; HTTP errors raise urllib.error.HTTPError with the status and the body readable."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if not proxies:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310 - http(s) URLs from the role
    with opener.open(request, timeout=timeout) as response:
        status = response.status
        body: bytes = response.read(MAX_BODY + 1)
    if status != 200:
        raise urllib.error.HTTPError(url, status, f"HTTP {status}", response.headers, None)
    if len(body) > MAX_BODY:
        raise ValueError("response larger than 1 MiB")
    return body


def _google_reason(error: urllib.error.HTTPError) -> str:
    """Google's status and message from an error body (error bodies carry names and reasons, never payloads)."""
    try:
        detail = json.loads(error.read(8192)).get("error", {})
        reason = " ".join(str(detail.get(key, "")) for key in ("status", "message")).strip()
    except (ValueError, AttributeError, OSError):
        return ""
    return f" (Secret Manager said: {reason[:300]})" if reason else ""


def fetch_token(metadata_url: str, timeout: float) -> str:
    """The default service account's access token from the metadata server (no proxy: it is link-local)."""
    url = f"{metadata_url.rstrip('/')}/instance/service-accounts/default/token"
    try:
        body = _get(url, {"Metadata-Flavor": "Google"}, timeout, proxies=False)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise Failure("metadata", f"the metadata server has no default service account (HTTP 404 from {url}): "
                                      "attach a service account to the VM") from None
        raise Failure("metadata", f"the metadata server answered HTTP {exc.code} for the token ({url})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Failure("metadata", f"the metadata server at {metadata_url} is unreachable ({_reason(exc)}): not a "
                                  "GCE VM, or no service account attached") from None
    try:
        token = json.loads(body)["access_token"]
    except (ValueError, KeyError, TypeError):
        raise Failure("metadata", "the metadata server's token answer has no access_token") from None
    if not isinstance(token, str) or not token:
        raise Failure("metadata", "the metadata server's token answer has no access_token")
    return token


def service_account(metadata_url: str, timeout: float) -> str:
    """The default service account's e-mail, for a permission message; empty when unknown."""
    url = f"{metadata_url.rstrip('/')}/instance/service-accounts/default/email"
    try:
        return _get(url, {"Metadata-Flavor": "Google"}, timeout, proxies=False).decode("utf-8", "replace")[:200]
    except (urllib.error.URLError, OSError, ValueError):
        return ""


def access(name: str, params: dict[str, Any], token: str) -> tuple[bytes, str]:
    """The payload of the secret version and the resolved version name."""
    url = f"{params['secret_manager_url'].rstrip('/')}/{name}:access"
    try:
        body = _get(url, {"Authorization": f"Bearer {token}", "Accept": "application/json"}, params["timeout"],
                    proxies=True)
    except urllib.error.HTTPError as exc:
        reason = _google_reason(exc)
        if exc.code == 403:
            account = service_account(params["metadata_url"], params["timeout"])
            who = f"the VM's service account {account}" if account else "the VM's service account"
            raise Failure("permission_denied",
                          f"permission denied (HTTP 403): {who} lacks roles/secretmanager.secretAccessor on {name} "
                          "(also check that the VM's access scopes include cloud-platform and that the Secret "
                          f"Manager API is enabled){reason}") from None
        if exc.code == 404:
            raise Failure("not_found", f"no such secret or version: {name} (HTTP 404){reason}") from None
        if exc.code == 401:
            raise Failure("unauthenticated", f"Secret Manager refused the VM's access token for {name} "
                                             f"(HTTP 401){reason}") from None
        raise Failure("http", f"Secret Manager answered HTTP {exc.code} for {name}{reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Failure("http", f"Secret Manager at {params['secret_manager_url']} is unreachable for {name} "
                              f"({_reason(exc)})") from None
    try:
        answer = json.loads(body)
        data = answer["payload"]["data"]
        value = base64.b64decode(data, validate=True)
    except (ValueError, KeyError, TypeError):
        raise Failure("payload", f"Secret Manager's answer for {name} has no base64 payload.data") from None
    if not value:
        raise Failure("payload", f"secret version {name} is empty")
    return value, str(answer.get("name") or name)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc.__class__.__name__)[:200]


class Token:
    """The VM's access token, asked of the metadata server once per call and only when a file needs it.

    A failure is kept too: every later Secret Manager file fails the same way without asking again.
    """

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.value: str | None = None
        self.failure: Failure | None = None

    def get(self) -> str:
        """The token, fetched on first use."""
        if self.failure is not None:
            raise self.failure
        if self.value is None:
            params = self.module.params
            try:
                self.value = fetch_token(params["metadata_url"], params["timeout"])
            except Failure as failure:
                self.failure = failure
                raise
            self.module.no_log_values.add(self.value)
        return self.value


def write(module: AnsibleModule, file: dict[str, Any], token: Token) -> dict[str, Any]:
    """Fetch (Secret Manager) or take one file's value, compare, write; the result never holds the value."""
    name = file["secret"]
    if file["content"] is not None:
        value, version = file["content"].encode(), None
    else:
        if not VERSION_NAME.match(name):
            raise Failure("bad_name", "secret must be projects/<project>/secrets/<secret>/versions/<number or latest>")
        value, version = access(name, module.params, token.get())
    module.no_log_values.add(value.decode("utf-8", "replace"))
    try:
        changed = differs(file["dest"], value, file["owner"], file["group"], FILE_MODE)
        if changed and not module.check_mode:
            write_atomically(file["dest"], value, file["owner"], file["group"], FILE_MODE)
    except HostFileError as exc:
        raise Failure("write", str(exc)) from None
    return {"changed": changed, "version": version}


def where(file: dict[str, Any], failure: Failure) -> str:
    """What a failure's message starts with: the instance, and the secret version or the file.

    A malformed version name is left out: it may be a value given in the wrong field.
    """
    if failure.error == "bad_name":
        return f"gateway {file['instance']}"
    if file["secret"] is not None:
        return f"gateway {file['instance']}, secret {file['secret']}"
    return f"gateway {file['instance']}, {os.path.basename(file['dest'])}"


def run(module: AnsibleModule) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every file, each on its own: what each changed, and the failures (a failure does not stop the others)."""
    token = Token(module)
    files, failures = [], []
    for file in module.params["files"]:
        names = {"instance": file["instance"], "dest": file["dest"], "secret": file["secret"]}
        try:
            files.append({**names, **write(module, file, token)})
        except Failure as failure:
            files.append({**names, "changed": False, "version": None})
            failures.append({**names, "error": failure.error, "msg": f"{where(file, failure)}: {failure}"})
    return files, failures


FILE_OPTIONS: dict[str, Any] = {
    "instance": {"type": "str", "required": True},
    "content": {"type": "str", "no_log": True},
    "secret": {"type": "str"},
    "dest": {"type": "path", "required": True},
    "owner": {"type": "int", "required": True},
    "group": {"type": "int", "required": True},
}


def main() -> None:
    """Write every file, or fail listing the failed ones by instance and secret (never a value)."""
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True, "options": FILE_OPTIONS,
                      "required_one_of": [("content", "secret")], "mutually_exclusive": [("content", "secret")]},
            "metadata_url": {"type": "str", "default": "http://metadata.google.internal/computeMetadata/v1"},
            "secret_manager_url": {"type": "str", "default": "https://secretmanager.googleapis.com/v1"},
            "timeout": {"type": "float", "default": 10.0},
        },
        supports_check_mode=True,
    )
    files, failures = run(module)
    changed = any(file["changed"] for file in files)
    if failures:
        module.fail_json(msg=" ".join(failure["msg"] for failure in failures), failures=failures, files=files,
                         changed=changed)
    module.exit_json(changed=changed, files=files)


if __name__ == "__main__":
    main()
