"""filepipe's Python client: the HTTP API as a ``Client``, resumable uploads, downloads that
check SHA-256, and live events; the ``filepipe`` command (``filepipe_client.cli``) sits on top.

::

    from filepipe_client import Client, Config, Uploader

    with Client(Config.resolve()) as client:  # FILEPIPE_URL, FILEPIPE_API_KEY
        result = Uploader(client).upload(Path("report.pdf"))
        file = client.wait(result.file.id)

Errors are one tree under ``FilepipeError`` (drawn in ``filepipe_client._errors``).
"""

from filepipe_client._client import Client
from filepipe_client._config import API_KEY, URL, Config
from filepipe_client._download import download, safe_filename, target_path
from filepipe_client._errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    FilepipeError,
    IntegrityError,
    NotFound,
    RateLimited,
    RequestRefused,
    ServerError,
    StorageError,
)
from filepipe_client._events import events
from filepipe_client._models import (
    CreatedUpload,
    DownloadUrl,
    Event,
    File,
    MultipartUpload,
    Page,
    PartUrl,
    SingleUpload,
    Status,
    StoredPart,
    StoredParts,
)
from filepipe_client._parts import PartSpan, Progress, plan_parts
from filepipe_client._retry import Backoff
from filepipe_client._uploads import Uploader, UploadResult, guess_content_type, identity_key

__all__ = [
    "API_KEY",
    "URL",
    "ApiError",
    "AuthenticationError",
    "Backoff",
    "Client",
    "Config",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "CreatedUpload",
    "DownloadUrl",
    "Event",
    "File",
    "FilepipeError",
    "IntegrityError",
    "MultipartUpload",
    "NotFound",
    "Page",
    "PartSpan",
    "PartUrl",
    "Progress",
    "RateLimited",
    "RequestRefused",
    "ServerError",
    "SingleUpload",
    "Status",
    "StorageError",
    "StoredPart",
    "StoredParts",
    "UploadResult",
    "Uploader",
    "download",
    "events",
    "guess_content_type",
    "identity_key",
    "plan_parts",
    "safe_filename",
    "target_path",
]
