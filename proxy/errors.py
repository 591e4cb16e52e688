"""Error types of shadowpi. A leaf module: mapped to HTTP statuses in one place (proxy.web.edge)."""

from __future__ import annotations


class ProxyError(Exception):
    """Base class; str(exc) is the message shown to clients (its first line is the HTTP reason)."""


class ConfigError(ProxyError):
    """The configuration is invalid; the message names the offending key."""


class InvalidProjectName(ProxyError):
    """A project name in a URL or form is not a valid Python package name."""


class InvalidFilename(ProxyError):
    """A distribution filename is unsafe or not a wheel/sdist filename."""


class ProjectNotFound(ProxyError):
    """Neither the private overlay nor upstream knows the project."""


class FileNotFound(ProxyError):
    """The project page does not list the requested file."""


class UpstreamUnavailable(ProxyError):
    """Upstream could not be reached, timed out or answered 5xx, and nothing usable was cached."""


class UpstreamTimeout(UpstreamUnavailable):
    """Upstream did not answer in time."""


class UpstreamInvalid(UpstreamUnavailable):
    """Upstream answered with something that is not a simple-API page."""


class IntegrityError(ProxyError):
    """Downloaded bytes do not match what the index declared (hash or size)."""


class BadRequest(ProxyError):
    """A request that cannot be understood (malformed body, wrong content type)."""


class InvalidUpload(ProxyError):
    """An upload was rejected; the message follows PyPI's wording (twine prints it)."""


class StorageFull(ProxyError):
    """The data dir's disk (or quota) is full: nothing was stored (507 Insufficient Storage)."""

    def __init__(
        self,
        message: str = (
            "Insufficient storage: the disk of shadowpi's data dir is full (or its quota is used up); nothing was "
            "stored. Retry once space has been freed."
        ),
    ) -> None:
        super().__init__(message)


class StorageUnavailable(ProxyError, OSError):
    """Blob storage elsewhere (an object store) failed or could not be reached (503). An OSError too: the blob
    store interface reports storage failures as OSError (proxy/backends/blobs.py)."""


class BackendUnavailable(ProxyError):
    """The metadata database cannot be reached or refuses the connection (wrong password, no such database); the
    message names the key and the URL, never the password."""


class UploadTooLarge(InvalidUpload):
    """The upload exceeds [upload] max_size."""


class FileExists(InvalidUpload):
    """The filename exists with other bytes. The message starts "File already exists" (twine --skip-existing)."""


class AuthenticationRequired(ProxyError):
    """No or wrong credentials for an action that needs them."""


class Forbidden(ProxyError):
    """Valid credentials, but not allowed to do this."""


class TooManyRequests(ProxyError):
    """A client exceeded a rate limit (failed logins); `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IndexNotFound(ProjectNotFound):
    """No index of that name (a 404, like a missing project: index names are not secrets, but URLs are guessed)."""
