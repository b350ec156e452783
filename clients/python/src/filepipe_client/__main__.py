"""``python -m filepipe_client``: the ``filepipe`` command."""

from filepipe_client.cli import run

run()
