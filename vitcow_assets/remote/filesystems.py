"""A connected fsspec file system per location; credentials from the environment only.

SFTP (paramiko through fsspec's ``SFTPFileSystem``): the user from the URL (else the local
user); ``VITCOW_SFTP_KEY`` (a private key file; else the SSH agent and ``~/.ssh/id_*``);
``VITCOW_SFTP_PASSWORD``; host keys checked against ``VITCOW_SFTP_KNOWN_HOSTS`` (default
``~/.ssh/known_hosts``) and unknown or changed keys refused, unless
``VITCOW_SFTP_NO_HOST_KEY_CHECK=1`` (an explicit, logged opt-out).
S3 (s3fs): ``VITCOW_S3_ENDPOINT_URL`` for S3-compatible stores, and the standard AWS
variables and profiles (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``AWS_DEFAULT_REGION``...), read by botocore.

Secrets are never put in messages, URIs, metadata or tables. Every failure is a
``RemoteError`` with a one-line message naming the server and what to check.
"""

import getpass
import logging
import os
import socket
from pathlib import Path

from vitcow_assets.remote.locations import Location

SFTP_KEY_ENV = "VITCOW_SFTP_KEY"
SFTP_PASSWORD_ENV = "VITCOW_SFTP_PASSWORD"
SFTP_KNOWN_HOSTS_ENV = "VITCOW_SFTP_KNOWN_HOSTS"
SFTP_NO_HOST_KEY_CHECK_ENV = "VITCOW_SFTP_NO_HOST_KEY_CHECK"
S3_ENDPOINT_ENV = "VITCOW_S3_ENDPOINT_URL"
CONNECT_TIMEOUT_S = 15.0


class RemoteError(OSError):
    """A remote operation failed; the message is one line without secrets."""


class ConnectError(RemoteError):
    """The server could not be reached or refused us (credentials, host key)."""


class VanishedError(RemoteError, FileNotFoundError):
    """The remote file is gone."""


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def describe(exc: BaseException) -> str:
    """One line for an exception, without a traceback."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _sftp_class():
    import paramiko
    from fsspec.implementations.sftp import SFTPFileSystem

    class VerifiedSFTPFileSystem(SFTPFileSystem):
        """fsspec's paramiko SFTP file system, but refusing unknown host keys."""

        def __init__(self, host, known_hosts=None, check_host_key=True, **ssh_kwargs):
            self._known_hosts = known_hosts
            self._check_host_key = check_host_key
            super().__init__(host, **ssh_kwargs)

        def _connect(self):
            client = paramiko.SSHClient()
            if self._check_host_key:
                if self._known_hosts and Path(self._known_hosts).is_file():
                    client.load_host_keys(self._known_hosts)
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            else:
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect(self.host, **self.ssh_kwargs)
            transport = client.get_transport()
            if transport is not None:
                transport.set_keepalive(30)
            self.client = client
            self.ftp = client.open_sftp()

    return VerifiedSFTPFileSystem


def _sftp_kwargs(location: Location) -> dict:
    key = os.path.expanduser(os.environ[SFTP_KEY_ENV]) if os.environ.get(SFTP_KEY_ENV) else None
    password = os.environ.get(SFTP_PASSWORD_ENV) or None
    known_hosts = os.path.expanduser(os.environ.get(SFTP_KNOWN_HOSTS_ENV) or "~/.ssh/known_hosts")
    return {
        "port": location.port or 22,
        "username": location.user or getpass.getuser(),
        "password": password,
        "key_filename": key,
        "allow_agent": key is None,
        "look_for_keys": key is None,
        "timeout": CONNECT_TIMEOUT_S,
        "banner_timeout": CONNECT_TIMEOUT_S,
        "auth_timeout": CONNECT_TIMEOUT_S,
        "known_hosts": known_hosts,
        "check_host_key": not _truthy(os.environ.get(SFTP_NO_HOST_KEY_CHECK_ENV)),
    }


def connect_error(location: Location, exc: BaseException) -> ConnectError:
    """A one-line ``ConnectError`` for a failed connection to ``location``'s server."""
    server = location.server
    name = type(exc).__name__
    if name == "AuthenticationException" or name == "BadAuthenticationType" or name == "PasswordRequiredException":
        return ConnectError(f"{server}: authentication refused (check {SFTP_KEY_ENV} / {SFTP_PASSWORD_ENV} / the SSH agent)")
    if name == "BadHostKeyException":
        return ConnectError(f"{server}: host key does not match the one in known_hosts ({SFTP_KNOWN_HOSTS_ENV}); refusing to connect")
    if "not found in known_hosts" in str(exc):
        return ConnectError(
            f"{server}: host key unknown: add it to {SFTP_KNOWN_HOSTS_ENV} (ssh-keyscan) or set {SFTP_NO_HOST_KEY_CHECK_ENV}=1"
        )
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ConnectError(f"{server}: no AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)")
    if isinstance(exc, PermissionError):
        return ConnectError(f"{server}: access refused ({describe(exc)})")
    if name == "NoValidConnectionsError" or isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"{server}: cannot connect (connection refused)")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ConnectError(f"{server}: timed out connecting")
    return ConnectError(f"{server}: cannot connect ({describe(exc)})")


def open_filesystem(location: Location):
    """A fresh, connected fsspec file system for ``location`` (never a cached instance, so a
    dropped connection is replaced by a new one). Raises ``ConnectError``."""
    try:
        if location.scheme == "sftp":
            kwargs = _sftp_kwargs(location)
            if not kwargs["check_host_key"]:
                logging.getLogger(__name__).warning(f"{location.server}: host key NOT checked ({SFTP_NO_HOST_KEY_CHECK_ENV}=1)")
            return _sftp_class()(location.host, skip_instance_cache=True, **kwargs)
        if location.scheme == "s3":
            import s3fs

            endpoint = os.environ.get(S3_ENDPOINT_ENV) or None
            fs = s3fs.S3FileSystem(
                endpoint_url=endpoint, skip_instance_cache=True, use_listings_cache=False, config_kwargs={"connect_timeout": CONNECT_TIMEOUT_S}
            )
            fs.ls(location.host)  # connect and check the credentials now, not on first read
            return fs
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()
    except ConnectError:
        raise
    except FileNotFoundError:
        raise ConnectError(f"{location.server}: no such bucket or folder {location.host or location.path!r}") from None
    except Exception as exc:  # paramiko / botocore / socket errors: one line
        raise connect_error(location, exc) from None


def close_filesystem(fs) -> None:
    client = getattr(fs, "client", None)
    if client is not None:
        try:
            client.close()
        except Exception:
            pass
