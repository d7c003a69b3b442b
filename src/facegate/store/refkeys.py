"""The secret keys of external-reference hashes: a random key per install, kept in a file (mode 0600).

A reference (e.g. an e-mail) is stored as HMAC-SHA256(key, normalised reference), with the
id of the key beside it (``people.ref_key_id``). The file is a small key ring (JSON): the
``current`` key hashes new references; the others are keys that came with imported archives,
so their references still resolve. Rows written before the key file existed (no key id) were
hashed with the old public constant ``LEGACY_KEY``: they are still found, and a reference set
again is hashed with the install's key.

The key is deliberately not in the database: a copy of the database alone does not let
anyone test guessed e-mails against the hashes. Back the file up with the database; servers
sharing one PostgreSQL database must share the file too.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from facegate.store.errors import StoreError

LEGACY_KEY = b"facegate"  # the constant every install used before the key file (rows with no key id)
KEY_BYTES = 32


class RefKeyError(StoreError):
    """The reference key file cannot be read or written, or holds something else."""

    code = "ref_key_invalid"


def key_id(key: bytes) -> str:
    """A short public id of a key (not the key): 16 hex digits of a hash of it."""
    return hashlib.sha256(b"facegate-ref-key\0" + key).hexdigest()[:16]


def normalise(reference: str) -> bytes:
    return reference.strip().lower().encode()


@dataclass
class RefKeys:
    """A key ring: the current key and every other known key, by id; ``path`` where it is kept."""

    current: str
    keys: dict[str, bytes]
    path: Path | None = None

    @classmethod
    def generate(cls, path: Path | None = None) -> RefKeys:
        key = secrets.token_bytes(KEY_BYTES)
        return cls(key_id(key), {key_id(key): key}, path)

    @classmethod
    def open(cls, path: Path) -> RefKeys:
        """The key ring in ``path``, created with a new random key (mode 0600, atomically) if absent."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = cls.generate(path)
            tmp = fresh._write_temp()
            try:
                os.link(tmp, path)  # fails if another process created it first: then theirs is used
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return cls._read(path)

    @classmethod
    def _read(cls, path: Path) -> RefKeys:
        try:
            doc = json.loads(path.read_text())
            keys = {kid: base64.b64decode(k, validate=True) for kid, k in doc["keys"].items()}
            current = doc["current"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RefKeyError(f"cannot read the reference key file {path}: {exc}") from None
        if current not in keys or any(key_id(k) != kid for kid, k in keys.items()):
            raise RefKeyError(f"the reference key file {path} is damaged (a key does not match its id)")
        return cls(current, keys, path)

    def _document(self) -> str:
        keys = {kid: base64.b64encode(k).decode() for kid, k in sorted(self.keys.items())}
        return json.dumps({"current": self.current, "keys": keys}, indent=1) + "\n"

    def _write_temp(self) -> Path:
        """The key ring written and flushed to a new private file beside ``path``."""
        assert self.path is not None
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self._document())
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def hash(self, reference: str) -> tuple[str, str]:
        """(key id, keyed hash) of a reference under the current key."""
        return self.current, hmac.new(self.keys[self.current], normalise(reference), hashlib.sha256).hexdigest()

    def candidates(self, reference: str) -> list[tuple[str | None, str]]:
        """(key id, hash) of a reference under every known key; ``None`` is the legacy constant."""
        text = normalise(reference)
        pairs: list[tuple[str | None, str]] = [
            (kid, hmac.new(k, text, hashlib.sha256).hexdigest()) for kid, k in self.keys.items()
        ]
        return [*pairs, (None, hmac.new(LEGACY_KEY, text, hashlib.sha256).hexdigest())]

    def export(self, ids: set[str]) -> dict[str, str]:
        """These keys (base64), to travel with an archive; an unknown id raises ``ref_key_missing``."""
        missing = sorted(ids - set(self.keys))
        if missing:
            raise StoreError(
                f"the reference key {missing[0]} is not in this install's key file", code="ref_key_missing"
            )
        return {kid: base64.b64encode(self.keys[kid]).decode() for kid in sorted(ids)}

    def add(self, keys: dict[str, bytes]) -> None:
        """Learn keys (from an archive) and keep them in the file; the current key stays."""
        new = {kid: k for kid, k in keys.items() if kid not in self.keys}
        if not new:
            return
        if self.path is None:
            self.keys.update(new)
            return
        with _locked(self.path):
            on_disk = RefKeys._read(self.path) if self.path.exists() else self
            on_disk.keys.update(new)
            on_disk.path = self.path
            os.replace(on_disk._write_temp(), self.path)
            self.keys.update(on_disk.keys)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock beside the key file, so two processes adding keys do not lose one."""
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def decode_keys(encoded: dict) -> dict[str, bytes]:
    """Keys as an archive carries them (id -> base64), checked against their ids."""
    keys = {}
    for kid, text in encoded.items():
        try:
            key = base64.b64decode(text, validate=True)
        except (ValueError, TypeError):
            raise StoreError(f"reference key {kid!r} is not base64", code="archive_invalid") from None
        if len(key) < 16 or key_id(key) != kid:
            raise StoreError(f"reference key {kid!r} does not match its id", code="archive_invalid")
        keys[kid] = key
    return keys
