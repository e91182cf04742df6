"""The vault password: Ansible's words for a missing or a wrong one, as a refusal naming the files and the way.

A vault-encrypted inventory file stops ansible-playbook before any play, saying only "Decryption failed"; the
operator needs to hear which files, which way the password came, and how to give the right one.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from ibgw_ops import inventory_files
from ibgw_ops.errors import BadInput

FILE_ENV = "ANSIBLE_VAULT_PASSWORD_FILE"
HOW = f"{FILE_ENV}=<a file holding the password, or a program printing it>, or --ask-vault-pass at a terminal"
# Ansible's words (ansible.parsing.vault): a password was given but opens none of the files; none was given.
WRONG = "no vault secrets were found that could decrypt"
MISSING = "no vault secrets found"
# Ansible's words for a file that does not parse, with neither the file nor the line.
UNPARSED = "YAML parsing failed"
# A whole encrypted file begins with this; an encrypted value is tagged !vault.
HEADER = inventory_files.VAULT_HEADER
TAG = b"!vault"
LARGEST_SCANNED = 1 << 20


def refusal(output: Iterable[str], inventory: Path, *, prompted: bool) -> BadInput | None:
    """The refusal for a run that stopped on the vault password, else None."""
    said = " ".join(output)
    files = ", ".join(str(path) for path in encrypted_files(inventory)) or f"the vault-encrypted values of {inventory}"
    if WRONG in said:
        field = "--ask-vault-pass" if prompted else FILE_ENV if os.environ.get(FILE_ENV) else "vault password"
        return BadInput(field, f"the vault password given did not decrypt {files}",
                        f"the password they were encrypted with: {HOW}")
    if MISSING in said:
        return BadInput("vault password", f"{files}: vault-encrypted, and no vault password was given", HOW)
    return None


def unparsed(output: Iterable[str], inventory: Path, password: str | None) -> BadInput | None:
    """The refusal for a run that stopped on a vault-encrypted file whose text is no YAML, else None.

    The plain files were checked before the run (inventory_files), so the file is an encrypted one: decrypted here
    with the password the run had, it is named with its line as a plain one would be.
    """
    said = " ".join(output)
    whole = [path for path in encrypted_files(inventory) if path.read_bytes().startswith(HEADER)]
    if UNPARSED not in said or not whole:
        return None
    # Any trouble decrypting here (a password program that fails twice): the refusal below still names the files.
    with contextlib.suppress(Exception):
        for path, text in _decrypted(whole, password):
            try:
                inventory_files.check_text(f"{path} (vault-encrypted)", text)
            except BadInput as exc:
                return exc
    return BadInput(inventory_files.FIELD, f"{', '.join(map(str, whole))}: vault-encrypted, and Ansible could not "
                                           f"parse the text ({said.split(UNPARSED, 1)[1].strip(' :')}); "
                                           "'ansible-vault view FILE' shows it", inventory_files.ALLOWED)


def _decrypted(paths: list[Path], password: str | None) -> list[tuple[Path, bytes]]:
    """Each file's text, decrypted with the prompted password or Ansible's reading of the password file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415 - only on this failure path
        from ansible.parsing.vault import VaultLib, VaultSecret, get_file_vault_secret  # noqa: PLC0415
    if password is not None:
        secret = VaultSecret(password.encode())
    else:
        secret = get_file_vault_secret(filename=os.environ[FILE_ENV], loader=DataLoader())
        secret.load()
    vault = VaultLib([("default", secret)])
    return [(path, vault.decrypt(path.read_bytes())) for path in paths]


def encrypted_files(inventory: Path) -> list[Path]:
    """The inventory's files that hold vault-encrypted data (whole files or tagged values)."""
    if inventory.is_dir():
        candidates = list(inventory.rglob("*"))
    else:
        candidates = [inventory, *(path for folder in ("group_vars", "host_vars")
                                   for path in (inventory.parent / folder).rglob("*"))]
    return sorted(path for path in candidates if path.is_file() and _holds_vault(path))


def _holds_vault(path: Path) -> bool:
    if path.stat().st_size > LARGEST_SCANNED:
        return False
    data = path.read_bytes()
    return data.startswith(HEADER) or TAG in data
