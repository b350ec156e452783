"""Tests of the local cloud emulators in local/: S3 server, MinIO events, broker emulator."""
