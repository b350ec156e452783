"""Large uploads: the ``filepipe`` CLI against boto3's ``upload_file``, and a file end to end.

1. Writes a 2 GiB text file (``--gib``), then uploads it to the local S3 server twice with the
   same part size and concurrency: once with boto3's ``upload_file`` (multipart, straight to
   S3), once with ``filepipe upload`` through the front (``POST /uploads``, presigned parts, the
   per-part and whole-file SHA-256 computed while reading, ``complete``). Prints both
   throughputs, their ratio (target >= 0.9) and the CLI's peak RSS (target < 150 MiB).
2. Writes a 6 GiB file (``--end-to-end-gib``; 0 skips it), uploads it with the CLI and
   ``--wait``, and prints the time to upload and the time until it is PROCESSED.

Needs the pipeline running (``make up``; ``bench/run.sh`` starts it), its environment from
``local/filepipe.env``. Usage: ``python bench/upload.py [--gib 2] [--end-to-end-gib 6]``.
The files are written to ``--dir`` (default: the system's temporary directory) and removed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv/bin"
FRONT_URL = "http://127.0.0.1:8080"
MIB = 1024**2
GIB = 1024**3
PART_SIZE = 16 * MIB
CONCURRENCY = 4
RSS_LIMIT_MIB = 150
RATIO_TARGET = 0.9


def local_env() -> dict[str, str]:
    """``local/filepipe.env`` as a dict (what every ``make up`` process reads)."""
    values = {}
    for line in (ROOT / "local/filepipe.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def write_text_file(path: Path, size: int) -> None:
    """``size`` bytes of random hexadecimal lines (text/plain, so processing accepts it)."""
    block = b"".join(os.urandom(32).hex().encode() + b"\n" for _ in range(4 * MIB // 65))
    with path.open("wb") as out:
        for offset in range(0, size, len(block)):
            out.write(block[: size - offset])


def create_key(env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(BIN / "filepipe-admin"), "create-key", "--tenant", "bench-upload"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return result.stdout.strip().splitlines()[-1]


def boto3_upload(env: dict[str, str], path: Path) -> float:
    """Seconds boto3's ``upload_file`` takes (multipart, ``PART_SIZE`` parts, ``CONCURRENCY``)."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=env["FILEPIPE_S3_ENDPOINT_URL"],
        region_name=env["FILEPIPE_S3_REGION"],
        aws_access_key_id=env["FILEPIPE_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["FILEPIPE_S3_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    transfer = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=CONCURRENCY,
        use_threads=True,
    )
    key = f"bench-boto3/{uuid.uuid4()}"
    started = time.perf_counter()
    client.upload_file(str(path), env["FILEPIPE_S3_BUCKET"], key, Config=transfer)
    elapsed = time.perf_counter() - started
    client.delete_object(Bucket=env["FILEPIPE_S3_BUCKET"], Key=key)
    return elapsed


def cli_upload(key: str, path: Path, *, wait: bool) -> tuple[float, int, dict[str, object]]:
    """Seconds ``filepipe upload`` takes, its peak RSS in bytes and its JSON line."""
    command = [
        str(BIN / "filepipe"),
        "upload",
        str(path),
        "--concurrency",
        str(CONCURRENCY),
        "--part-size",
        str(PART_SIZE),
        "--json",
        *(["--wait"] if wait else []),
    ]
    env = {**os.environ, "FILEPIPE_URL": FRONT_URL, "FILEPIPE_API_KEY": key}
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # reaped here, so its rusage is its own
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"filepipe upload exited {child.returncode}: {output}")
    peak = usage.ru_maxrss * 1024  # Linux counts KiB
    return elapsed, peak, json.loads(output.strip().splitlines()[-1])


def compare(env: dict[str, str], key: str, directory: Path, size: int) -> None:
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".txt") as handle:
        path = Path(handle.name)
        write_text_file(path, size)
        boto3_seconds = boto3_upload(env, path)
        cli_seconds, peak, _ = cli_upload(key, path, wait=False)
    boto3_rate = size / MIB / boto3_seconds
    cli_rate = size / MIB / cli_seconds
    ratio = cli_rate / boto3_rate
    print(
        f"file                     {size / GIB:.1f} GiB, {PART_SIZE // MIB} MiB parts, "
        f"concurrency {CONCURRENCY}"
    )
    print(f"boto3 upload_file        {boto3_rate:8.1f} MiB/s")
    print(f"filepipe upload          {cli_rate:8.1f} MiB/s (with per-part and whole SHA-256)")
    print(
        f"ratio CLI / boto3        {ratio:8.2f}   (target >= {RATIO_TARGET})"
        f"  {'ok' if ratio >= RATIO_TARGET else 'BELOW TARGET'}"
    )
    print(
        f"CLI peak RSS             {peak / MIB:8.1f} MiB (target < {RSS_LIMIT_MIB})"
        f"  {'ok' if peak < RSS_LIMIT_MIB * MIB else 'ABOVE TARGET'}"
    )


def end_to_end(key: str, directory: Path, size: int) -> None:
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".txt") as handle:
        path = Path(handle.name)
        write_text_file(path, size)
        seconds, peak, result = cli_upload(key, path, wait=True)
    print(
        f"end to end               {size / GIB:.1f} GiB uploaded and {result.get('status')}"
        f" in {seconds:.1f} s ({size / MIB / seconds:.1f} MiB/s), CLI peak RSS"
        f" {peak / MIB:.1f} MiB"
    )
    if result.get("status") != "PROCESSED":
        sys.exit(f"the file ended {result.get('status')}: {result.get('error')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="size compared with boto3")
    parser.add_argument("--end-to-end-gib", type=float, default=6.0, help="0 skips it")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    env = local_env()
    key = create_key(env)
    compare(env, key, args.dir, int(args.gib * GIB))
    if args.end_to_end_gib:
        end_to_end(key, args.dir, int(args.end_to_end_gib * GIB))


if __name__ == "__main__":
    main()
