"""The presign function: ``POST /uploads`` creates a PENDING file and its upload (a presigned PUT
or a multipart upload), and ``/uploads/{id}/...`` presigns, lists, completes and aborts parts.

- ``request``: validation of the body and headers (pure);
- ``multipart``: the rules of multipart uploads: part plan, part and completion bodies (pure);
- ``create``: the row, its ``file.created`` event and its upload;
- ``parts``: the multipart routes' logic (storage calls in ``filepipe.multipart_storage``);
- ``api``: the HTTP routes.
"""
