"""The query function: a tenant's files, one file, one file's processing log.

- ``params``: validation of ``GET /files`` parameters;
- ``cursors``: opaque, signed keyset cursors;
- ``cache``: Redis cache-aside of file representations and API-key lookups;
- ``api``: the HTTP routes.
The SQL lives with the file model (``filepipe.files.store``).
"""
