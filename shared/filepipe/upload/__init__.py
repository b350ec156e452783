"""The presign function: ``POST /uploads`` creates a PENDING file and presigns its upload.

- ``request``: validation of the body and headers (pure);
- ``create``: the row, its ``file.created`` event and the presigned PUT;
- ``api``: the HTTP routes.
"""
