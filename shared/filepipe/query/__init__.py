"""The query function: a tenant's files, one file, one file's processing log, a
verified file's download URL, deleting a file.

- ``params``: validation of ``GET /files`` parameters;
- ``cursors``: opaque, signed keyset cursors;
- ``cache``: Redis cache-aside of file representations and API-key lookups;
- ``download``: short-lived presigned GETs of PROCESSED files;
- ``delete``: marking a file DELETED and clearing its storage;
- ``api``: the HTTP routes.
The SQL lives with the file model (``filepipe.files.store``).
"""
