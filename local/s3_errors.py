"""S3 refusals as MinIO answers them: HTTP status, error code, message and S3's XML error body.

The body is S3's error document
(https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#RESTErrorResponses). Codes,
messages and statuses are MinIO's (``cmd/api-errors.go``); where they differ from S3's the
constant says so, since MinIO is what filepipe runs against.

``S3Error`` is raised by the checks (``local.sigv4``, ``local.s3_auth``, ``local.s3_body``,
``local.s3_post_policy``) and answered once, by ``local.s3_guard``.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape


class S3Error(Exception):
    """A request the local S3 server refuses, with what S3's error document carries."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Refusal:
    """One kind of refusal; calling it makes the exception (optionally with a detail)."""

    status: int
    code: str
    message: str

    def __call__(self, detail: str | None = None) -> S3Error:
        message = f"{self.message} ({detail})" if detail else self.message
        return S3Error(self.status, self.code, message)


ACCESS_DENIED = Refusal(403, "AccessDenied", "Access Denied.")
EXPIRED = Refusal(403, "AccessDenied", "Request has expired")
NOT_YET_VALID = Refusal(403, "AccessDenied", "Request is not valid yet")
SIGNATURE_DOES_NOT_MATCH = Refusal(
    403,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
)
INVALID_ACCESS_KEY_ID = Refusal(
    403, "InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records."
)
REQUEST_TIME_TOO_SKEWED = Refusal(
    403,
    "RequestTimeTooSkewed",
    "The difference between the request time and the server's time is too large.",
)
UNSIGNED_HEADERS = Refusal(
    400, "AccessDenied", "There were headers present in the request which were not signed"
)
"""MinIO's answer when a header named in SignedHeaders is missing, or an ``x-amz-meta-*``
header is sent unsigned with a presigned URL (S3 answers 403 SignatureDoesNotMatch for the
former)."""
MISSING_DATE = Refusal(
    400, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
)
MALFORMED_DATE = Refusal(
    400,
    "MalformedDate",
    "Invalid date format header, expected to be in ISO8601, RFC1123 or RFC1123Z time format.",
)
SIGNATURE_VERSION_NOT_SUPPORTED = Refusal(
    400,
    "InvalidRequest",
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
)
AUTH_HEADER_EMPTY = Refusal(
    400,
    "InvalidArgument",
    "Authorization header is invalid -- one and only one ' ' (space) required.",
)
MISSING_FIELDS = Refusal(400, "MissingFields", "Missing fields in request.")
INVALID_QUERY_PARAMS = Refusal(
    400,
    "AuthorizationQueryParametersError",
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
)
INVALID_QUERY_SIGNATURE_ALGO = Refusal(
    400, "AuthorizationQueryParametersError", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256".'
)
CREDENTIAL_MALFORMED = Refusal(
    400,
    "AuthorizationQueryParametersError",
    "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "
    '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
)
MALFORMED_CREDENTIAL_DATE = Refusal(
    400,
    "AuthorizationQueryParametersError",
    "Error parsing the X-Amz-Credential parameter; incorrect date format. This date in the "
    'credential must be in the format "yyyyMMdd".',
)
INVALID_SERVICE = Refusal(
    400,
    "AuthorizationParametersError",
    "Error parsing the Credential/X-Amz-Credential parameter; incorrect service. "
    'This endpoint belongs to "s3".',
)
INVALID_REQUEST_VERSION = Refusal(
    400,
    "AuthorizationQueryParametersError",
    "Error parsing the X-Amz-Credential parameter; incorrect terminal. "
    'This endpoint uses "aws4_request".',
)
MALFORMED_PRESIGNED_DATE = Refusal(
    400,
    "AuthorizationQueryParametersError",
    "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
)
MALFORMED_EXPIRES = Refusal(
    400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number"
)
NEGATIVE_EXPIRES = Refusal(
    400, "AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative"
)
MAXIMUM_EXPIRES = Refusal(
    400,
    "AuthorizationQueryParametersError",
    "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
    "must be less than 604800 seconds",
)
MISSING_CONTENT_LENGTH = Refusal(
    411, "MissingContentLength", "You must provide the Content-Length HTTP header."
)
INCOMPLETE_BODY = Refusal(
    400,
    "IncompleteBody",
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
)
CONTENT_SHA256_MISMATCH = Refusal(
    400,
    "XAmzContentSHA256Mismatch",
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
CHECKSUM_MISMATCH = Refusal(
    400,
    "XAmzContentChecksumMismatch",
    "The provided 'x-amz-checksum' header does not match what was computed.",
)
"""MinIO's answer to a body whose ``x-amz-checksum-*`` differs (S3 answers 400 BadDigest)."""
INVALID_CHECKSUM = Refusal(400, "InvalidArgument", "Invalid checksum provided.")
BAD_DIGEST = Refusal(
    400, "BadDigest", "The Content-Md5 you specified did not match what we received."
)
INVALID_DIGEST = Refusal(400, "InvalidDigest", "The Content-Md5 you specified is not valid.")
PRECONDITION_FAILED = Refusal(
    412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
)
MALFORMED_POST_REQUEST = Refusal(
    400,
    "MalformedPOSTRequest",
    "The body of your POST request is not well-formed multipart/form-data.",
)
POST_POLICY_INVALID = Refusal(
    403, "PostPolicyInvalidKeyName", "Invalid according to Policy: Policy Condition failed"
)
"""MinIO's answer to a policy document it cannot parse (S3 answers 400 InvalidPolicyDocument)."""
ENTITY_TOO_SMALL = Refusal(
    400,
    "EntityTooSmall",
    "Your proposed upload is smaller than the minimum allowed object size.",
)
ENTITY_TOO_LARGE = Refusal(
    400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size."
)
CORS_FORBIDDEN = Refusal(403, "AccessForbidden", "CORSResponse: This CORS request is not allowed.")
"""S3's answer to a preflight its CORS rules refuse (MinIO's global CORS answers 204 without CORS
headers); either way the browser stops there."""
NOT_IMPLEMENTED = Refusal(
    501, "NotImplemented", "A header you provided implies functionality that is not implemented"
)


def authorization_header_malformed(region: str) -> S3Error:
    """A credential scoped to another region than the server's."""
    return S3Error(
        400,
        "AuthorizationHeaderMalformed",
        f"The authorization header is malformed; the region is wrong; expecting '{region}'.",
    )


def error_document(
    error: S3Error,
    *,
    resource: str,
    request_id: str,
    region: str,
    bucket: str = "",
    key: str = "",
) -> bytes:
    """S3's XML error body for ``error`` (``Key`` and ``BucketName`` only when known)."""
    fields = [("Code", error.code), ("Message", error.message)]
    if key:
        fields.append(("Key", key))
    if bucket:
        fields.append(("BucketName", bucket))
    fields += [
        ("Resource", resource),
        ("Region", region),
        ("RequestId", request_id),
        ("HostId", ""),
    ]
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()
