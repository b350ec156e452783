"""The file model every function shares, and the only code that writes ``files``.

- ``model``: ``Status``, the typed row ``FileRow``, the API representation;
- ``store``: every SQL statement on ``files`` and ``processing_logs`` but status changes;
- ``transitions``: status changes as compare-and-set, with their log row and outbox event;
- ``outbox``: events recorded with the change they report, published after commit;
- ``republisher``: a background thread that publishes soon what the broker refused;
- ``after_commit`` and ``cache``: what follows a commit (cache invalidation, then publish);
- ``purge``: clearing storage of a DELETED file, or of a settled one after its retention;
- ``missing``: marking a file whose object disappeared MISSING.
"""

from filepipe.files.model import FileRow, Status, representation

__all__ = ["FileRow", "Status", "representation"]
