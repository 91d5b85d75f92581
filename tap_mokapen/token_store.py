"""Where a public app's rotating refresh token is kept between runs.

When Mokapen answers a refresh_token grant with a new refresh token, the old one may
stop working. Neither the config (Meltano writes a fresh copy every run) nor the
STATE (it must never hold a secret) can keep it, so the tap writes it to a small
file readable only by its owner: ``refresh_token_store``, by default
``$XDG_STATE_HOME/tap-mokapen/refresh-tokens.json`` (``~/.local/state/...``).

The entry remembers a fingerprint of the configured token it descends from. When
the user configures a different refresh token (after a new browser consent), that
one wins over the stored descendant of the old one. ``tap-mokapen --authorize``
(consent.py) puts the token of a consent straight in the store, with the origin
CONSENT: with no refresh_token configured, the store's token for the app and the
organization is the one to use, whatever it descends from.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
import typing as t
from pathlib import Path

from tap_mokapen import clock, output
from tap_mokapen.errors import AuthenticationError, ConfigError

logger = logging.getLogger("tap-mokapen")

#: How long a run waits for another one that is exchanging the same refresh token.
LOCK_WAIT_SECONDS = 120
#: What posix_fallocate says when the file system cannot do it (then zeros are written).
_NO_FALLOCATE = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}
#: Room taken on disk before an exchange, beyond the store's present size: a refresh
#: token and its entry are a few hundred bytes.
RESERVED_BYTES = 16 * 1024
#: A file reserved for an exchange and older than this was left by a killed run (an
#: exchange lasts at most max_wait_seconds; a day is past any).
STALE_RESERVATION_SECONDS = 24 * 3600
#: The origin of a token that tap-mokapen --authorize stored (no configured token).
CONSENT = "consent"


def default_path() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state_home) / "tap-mokapen" / "refresh-tokens.json"


def _fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RefreshTokenStore:
    def __init__(
        self,
        path: str | Path | None,
        *,
        client_id: str,
        organization_id: int | str | None,
        configured_token: str | None,
    ) -> None:
        """The store of the app ``client_id`` for ``organization_id`` (None: not known
        until a consent's answer names it, ``keep_consent``). ``configured_token`` is the
        refresh_token setting; None when the config has none, and then the store's token
        (a consent's, or its rotated descendant) is the one to use."""
        self.path = Path(path).expanduser() if path else default_path()
        self.client_id = client_id
        self.organization_id = organization_id
        self._key = _fingerprint(f"{client_id}\0{organization_id}")
        self._origin = CONSENT if configured_token is None else _fingerprint(configured_token)
        self._configured = configured_token
        #: A consent's store: what is at stake when it cannot be written is the code.
        self._for_consent = organization_id is None
        #: The file exchange() reserved for the next save, while an exchange is under way.
        self._reserved: str | None = None

    def _read(self) -> dict[str, dict[str, t.Any]]:
        """The store's entries; none when it does not exist yet. A store that exists but
        cannot be read is an error: its token may be the only one still alive, and the
        configured one spent, so none is sent in its place."""
        try:
            # Never empty when this tap wrote it (it writes whole files, atomically).
            data = json.loads(self.path.read_bytes().decode())
        except (FileNotFoundError, NotADirectoryError):  # nothing kept there yet
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not the JSON it wrote"
            msg = (
                f"refresh_token_store {self.path} cannot be read ({why}): the refresh token "
                "it keeps may be the only one still valid, so no other is sent. Restore the "
                "file, or authorize the app again and remove it"
            )
            raise ConfigError(msg) from None
        if not isinstance(data, dict):
            msg = (
                f"refresh_token_store {self.path} is not an object of tokens: restore or remove it"
            )
            raise ConfigError(msg)
        return data

    def holds_token(self) -> bool:
        """Whether the store has an entry for this app and organization (a consent's, or
        a rotated one): nothing is read but the file, and a missing file holds none."""
        return self._key in self._read()

    def current(self) -> str:
        """The newest refresh token descending from the configured one; with none
        configured, the store's own (what tap-mokapen --authorize kept, or its rotation)."""
        entry = self._read().get(self._key)
        if entry is None:
            if self._configured is None:
                msg = (
                    f"refresh_token_store {self.path} holds no refresh token for this app and "
                    "organization: run tap-mokapen --config FILE --authorize"
                )
                raise ConfigError(msg)
            return self._configured
        token = entry.get("refresh_token") if isinstance(entry, dict) else None
        if not isinstance(token, str) or not token:
            msg = (
                f"refresh_token_store {self.path} holds no refresh token for this app and "
                "organization where it should: restore the file, or authorize the app again "
                "(tap-mokapen --authorize) after removing it"
            )
            raise ConfigError(msg)
        if self._configured is None:
            return token
        return token if entry.get("origin") == self._origin else self._configured

    @contextlib.contextmanager
    def exchange(self) -> t.Iterator[None]:
        """Hold the store for one exchange: room for it reserved, locked against other runs.

        A refresh token may die the moment it is exchanged, so the new one must be
        kept before the old is spent: the file the new store will be is made, with room
        for it taken on disk, before the grant, so a full disk or a store that cannot be
        written stops the run with the old token unspent; and two runs never exchange
        the same token at once.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        except OSError as exc:
            raise self._unwritable(exc) from None
        with lock:
            deadline = clock.monotonic() + LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if clock.monotonic() > deadline:
                        msg = (
                            f"Another tap-mokapen run has held the refresh-token store "
                            f"{self.path} for {LOCK_WAIT_SECONDS} s: let it finish (its "
                            "token is not lost), then run again"
                        )
                        raise AuthenticationError(msg) from None
                    clock.sleep(0.2)
            try:
                self._remove_stale_reservations()
                with output.uninterrupted():  # a stop never leaves the reserved file behind
                    self._reserved = self._reserve()
                yield
            finally:
                self._release()
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _reserve(self) -> str:
        """A file beside the store with room on disk for the store's next content."""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        # The entries of other apps and organizations, and this one's new token.
        room = size + RESERVED_BYTES
        try:
            try:
                os.posix_fallocate(handle, 0, room)
            except (AttributeError, OSError) as exc:
                # Not on every system (macOS) nor every file system (EOPNOTSUPP): zeros
                # written and flushed take the room as surely.
                if isinstance(exc, OSError) and exc.errno not in _NO_FALLOCATE:
                    raise
                os.write(handle, bytes(room))
                os.fsync(handle)
        except OSError as exc:
            os.close(handle)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise self._unwritable(exc) from None
        os.close(handle)
        return temporary

    def _remove_stale_reservations(self) -> None:
        """Files reserved for an exchange by a run that was killed (SIGKILL leaves them):
        older than an exchange can last, they are no one's."""
        cutoff = time.time() - STALE_RESERVATION_SECONDS  # file times are the system's
        for leftover in self.path.parent.glob(".tokens-*"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def _release(self) -> None:
        reserved, self._reserved = self._reserved, None
        if reserved:
            with contextlib.suppress(OSError):
                os.unlink(reserved)

    def _unwritable(self, exc: OSError) -> ConfigError:
        unspent = (
            "the consent's code was not exchanged, so nothing is spent"
            if self._for_consent
            else "the refresh token was not spent"
        )
        return ConfigError(
            f"refresh_token_store {self.path} cannot be written ({exc.strerror}): {unspent}; "
            "point refresh_token_store at a writable file with room beside it"
        )

    def keep_consent(self, organization_id: int | str, refresh_token: str) -> None:
        """Keep the refresh token a consent handed out for the organization the user chose,
        as a rotated one is kept (``save``), in the room ``exchange`` reserved."""
        self.organization_id = organization_id
        self._key = _fingerprint(f"{self.client_id}\0{organization_id}")
        self._origin = CONSENT
        self.save(refresh_token, consent=True)

    def save(self, refresh_token: str, *, consent: bool = False) -> None:
        """Keep a rotated token: atomically, owner-only, on disk before it is used, in the
        room exchange() reserved."""
        data = self._read()
        origin = self._origin
        entry = data.get(self._key)
        if self._configured is None and not consent and isinstance(entry, dict):
            # A rotation keeps what the token descends from (a configured token, later
            # removed from the config, or a consent).
            origin = str(entry.get("origin") or CONSENT)
        # The organization in clear, for whoever looks at the file (the key is a hash).
        data[self._key] = {
            "origin": origin,
            "organization_id": self.organization_id,
            "refresh_token": refresh_token,
        }
        content = json.dumps(data).encode()
        temporary, self._reserved = self._reserved, None
        try:
            if temporary is None:  # a save outside exchange()
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
                os.close(handle)
            with open(temporary, "r+b") as file:
                file.write(content)
                file.truncate(len(content))
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except OSError as exc:
            if temporary:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            if consent:
                msg = (
                    f"Mokapen granted the consent, and saving its refresh token to "
                    f"refresh_token_store {self.path} failed ({exc.strerror}): nothing was "
                    "kept. Point refresh_token_store at a writable file and run "
                    "tap-mokapen --authorize again."
                )
            else:
                msg = (
                    f"Mokapen rotated the refresh token, and saving the new one to "
                    f"refresh_token_store {self.path} failed ({exc.strerror}). The old token "
                    "no longer works: authorize the app again (tap-mokapen --authorize)."
                )
            raise AuthenticationError(msg) from None
        try:  # the new token is in place; this only makes the rename survive a crash
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            logger.warning(
                "The rotated refresh token is saved in %s, but its folder could not be "
                "synced to disk (%s): a crash of the machine now could lose it",
                self.path,
                exc.strerror,
            )
