"""Ansible module: write one gateway secret file, from the controller's credentials or a Secret Manager version.

Either way the value is written only into its file: a controller value arrives as a module argument (over the
pipelined connection's stdin, never in a temporary file as ansible.builtin.copy would stage it); a Secret Manager
value goes from Secret Manager to the file on the VM and never passes through the controller. It is never returned,
and is compared with the file's content without being reported. Stdlib only.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_secret_file
short_description: Write a secret file from a given value or from Secret Manager with the VM's own service account
description:
  - >-
    With content, writes that value. With secret, gets an access token for the VM's default service account from
    the GCE metadata server, reads the secret version with Secret Manager's access method, and writes its payload.
    Either is written byte for byte to dest (owner and group numeric, mode 0400) through a temporary file in the
    same directory and a rename.
  - >-
    Changed only when the content, owner or mode differ. In check mode it reads the secret and reports whether the
    file would change, writing nothing. The value and the token are never returned nor put in a message.
  - >-
    Fails with error set (permission_denied, not_found, unauthenticated, metadata, http, payload, write) and a
    message naming the instance and the secret version; the existing file is left untouched.
options:
  instance: {type: str, required: true, description: 'The gateway instance, for messages.'}
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
version: {type: str, description: 'The resolved version''s resource name (never the value).'}
error: {type: str, description: 'On failure, the kind of failure.'}
"""

import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

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
    """A failure whose message names the instance and the secret, never a value."""

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


def fetch_token(metadata_url: str, timeout: float, where: str) -> str:
    """The default service account's access token from the metadata server (no proxy: it is link-local)."""
    url = f"{metadata_url.rstrip('/')}/instance/service-accounts/default/token"
    try:
        body = _get(url, {"Metadata-Flavor": "Google"}, timeout, proxies=False)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise Failure("metadata", f"{where}: the metadata server has no default service account (HTTP 404 from "
                                      f"{url}): attach a service account to the VM") from None
        raise Failure("metadata", f"{where}: the metadata server answered HTTP {exc.code} for the token "
                                  f"({url})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Failure("metadata", f"{where}: the metadata server at {metadata_url} is unreachable "
                                  f"({_reason(exc)}): not a GCE VM, or no service account attached") from None
    try:
        token = json.loads(body)["access_token"]
    except (ValueError, KeyError, TypeError):
        raise Failure("metadata", f"{where}: the metadata server's token answer has no access_token") from None
    if not isinstance(token, str) or not token:
        raise Failure("metadata", f"{where}: the metadata server's token answer has no access_token")
    return token


def service_account(metadata_url: str, timeout: float) -> str:
    """The default service account's e-mail, for a permission message; empty when unknown."""
    url = f"{metadata_url.rstrip('/')}/instance/service-accounts/default/email"
    try:
        return _get(url, {"Metadata-Flavor": "Google"}, timeout, proxies=False).decode("utf-8", "replace")[:200]
    except (urllib.error.URLError, OSError, ValueError):
        return ""


def access(params: dict[str, Any], token: str, where: str) -> tuple[bytes, str]:
    """The payload of the secret version and the resolved version name."""
    name = params["secret"]
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
                          f"{where}: permission denied (HTTP 403): {who} lacks roles/secretmanager.secretAccessor "
                          f"on {name} (also check that the VM's access scopes include cloud-platform and that the "
                          f"Secret Manager API is enabled){reason}") from None
        if exc.code == 404:
            raise Failure("not_found", f"{where}: no such secret or version: {name} (HTTP 404){reason}") from None
        if exc.code == 401:
            raise Failure("unauthenticated", f"{where}: Secret Manager refused the VM's access token for {name} "
                                             f"(HTTP 401){reason}") from None
        raise Failure("http", f"{where}: Secret Manager answered HTTP {exc.code} for {name}{reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Failure("http", f"{where}: Secret Manager at {params['secret_manager_url']} is unreachable for "
                              f"{name} ({_reason(exc)})") from None
    try:
        answer = json.loads(body)
        data = answer["payload"]["data"]
        value = base64.b64decode(data, validate=True)
    except (ValueError, KeyError, TypeError):
        raise Failure("payload", f"{where}: Secret Manager's answer for {name} has no base64 payload.data") from None
    if not value:
        raise Failure("payload", f"{where}: secret version {name} is empty")
    return value, str(answer.get("name") or name)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc.__class__.__name__)[:200]


def run(module: AnsibleModule) -> dict[str, Any]:
    """Fetch (Secret Manager) or take the value, compare, write; the result never holds the value."""
    params = module.params
    if params["content"] is not None:
        where = f"gateway {params['instance']}, {os.path.basename(params['dest'])}"
        value, version = params["content"].encode(), None
    else:
        value, version, where = _from_secret_manager(module)
    module.no_log_values.add(value.decode("utf-8", "replace"))
    try:
        changed = differs(params["dest"], value, params["owner"], params["group"], FILE_MODE)
        if changed and not module.check_mode:
            write_atomically(params["dest"], value, params["owner"], params["group"], FILE_MODE)
    except HostFileError as exc:
        raise Failure("write", f"{where}: {exc}") from None
    return {"changed": changed, "dest": params["dest"], "secret": params["secret"], "version": version}


def _from_secret_manager(module: AnsibleModule) -> tuple[bytes, str, str]:
    params = module.params
    name = params["secret"]
    where = f"gateway {params['instance']}, secret {name}"
    if not VERSION_NAME.match(name):
        raise Failure("bad_name", f"gateway {params['instance']}: secret must be "
                                  "projects/<project>/secrets/<secret>/versions/<number or latest>")
    token = fetch_token(params["metadata_url"], params["timeout"], where)
    module.no_log_values.add(token)
    value, version = access(params, token, where)
    return value, version, where


def fail(module: AnsibleModule, failure: Failure) -> NoReturn:
    """Fail with the message and the kind of failure; no value is in either."""
    params = module.params
    module.fail_json(msg=str(failure), error=failure.error, instance=params["instance"], secret=params["secret"],
                     dest=params["dest"], changed=False)
    raise AssertionError("unreachable")  # fail_json exits


def main() -> None:
    """Write the secret file, or fail naming the instance and the secret (never its value)."""
    module = AnsibleModule(
        argument_spec={
            "instance": {"type": "str", "required": True},
            "content": {"type": "str", "no_log": True},
            "secret": {"type": "str"},
            "dest": {"type": "path", "required": True},
            "owner": {"type": "int", "required": True},
            "group": {"type": "int", "required": True},
            "metadata_url": {"type": "str", "default": "http://metadata.google.internal/computeMetadata/v1"},
            "secret_manager_url": {"type": "str", "default": "https://secretmanager.googleapis.com/v1"},
            "timeout": {"type": "float", "default": 10.0},
        },
        required_one_of=[("content", "secret")],
        mutually_exclusive=[("content", "secret")],
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except Failure as failure:
        fail(module, failure)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
