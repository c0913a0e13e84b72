"""Credentials at rest: Fernet-encrypted JSON, with the key material the caller hands in (its settings').

Only connectors and the worker ever see decrypted credentials; the store holds the token
bytes. ``CALBOOK_ENCRYPTION_KEY`` may list several comma-separated keys: the first encrypts,
all decrypt, so a key can be rotated without a migration.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialsUnreadable(Exception):
    """The stored credentials cannot be decrypted with any configured key."""


def _fernet(key_material: str) -> MultiFernet:
    return MultiFernet([Fernet(k.strip().encode()) for k in key_material.split(",") if k.strip()])


def encrypt_json(value: dict[str, Any], key_material: str) -> str:
    return _fernet(key_material).encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str, key_material: str) -> dict[str, Any]:
    try:
        return json.loads(_fernet(key_material).decrypt(token.encode()))
    except InvalidToken as exc:
        raise CredentialsUnreadable("stored credentials cannot be decrypted with the configured key") from exc


def rotate_token(token: str, key_material: str) -> str | None:
    """The same secret encrypted with the first key (``MultiFernet.rotate``); ``None`` when no key opens it."""
    try:
        return _fernet(key_material).rotate(token.encode()).decode()
    except InvalidToken:
        return None
