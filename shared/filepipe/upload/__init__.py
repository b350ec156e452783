"""The presign function: ``POST /uploads`` creates a PENDING file and its upload (a presigned PUT
or a multipart upload), ``/uploads/{id}/...`` presigns, lists, completes and aborts parts, and
``/s3/...`` does the same for Uppy in Companion's shapes, and ``POST /upload-tokens`` mints the
scoped tokens browsers use instead of an API key.

- ``request``: validation of the body and headers (pure);
- ``multipart``: the rules of multipart uploads: part plan, part and completion bodies (pure);
- ``tokens``: minting upload tokens (``POST /upload-tokens``) and holding uploads to a token's
  scope (the token format itself is ``filepipe.upload_tokens``);
- ``create``: the row, its ``file.created`` event and its upload;
- ``parts``: the multipart routes' logic (storage calls in ``filepipe.multipart_storage``);
- ``companion``: Companion's S3 routes (``/s3/...``, for Uppy's ``@uppy/aws-s3``) on ``create``
  and ``parts``;
- ``api``: the HTTP routes.
"""
