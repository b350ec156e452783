"""The ``filepipe`` subcommands: each takes its arguments and a ``Client``, returns an exit code.

Results go to stdout (plain lines or JSON lines when it is not a terminal, tables and progress
bars when it is); errors to stderr, one line each.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from filepipe_client._client import Client
from filepipe_client._download import download, target_path
from filepipe_client._errors import FilepipeError
from filepipe_client._events import events
from filepipe_client._uploads import Uploader, UploadResult
from filepipe_client.cli import _exits
from filepipe_client.cli._output import file_details, files_table, json_line, size, summary
from filepipe_client.cli._progress import UploadBars, bars


def say_error(text: str) -> None:
    sys.stderr.write(f"filepipe: {text}\n")
    sys.stderr.flush()


def upload(args: argparse.Namespace, client: Client, console: Console) -> int:
    paths: list[Path] = args.paths
    drawn = console.is_terminal and not args.json
    progress = bars(console) if drawn else None
    upload_bars = UploadBars(progress, sum(p.stat().st_size for p in paths)) if progress else None
    uploader = Uploader(client, concurrency=args.concurrency, progress=upload_bars)
    code, done = _exits.OK, []
    with progress or nullcontext():
        out = progress.console if progress else console
        for path in paths:
            try:
                result = uploader.upload(
                    path,
                    content_type=args.content_type,
                    metadata=dict(args.metadata),
                    part_size=args.part_size,
                    restart=args.restart,
                )
            except FilepipeError as exc:
                say_error(f"{path}: {_exits.message(exc)}")
                code = code or _exits.exit_code(exc)
                if code in (_exits.AUTHENTICATION, _exits.UNREACHABLE):
                    break
                continue
            if result.already_uploaded and upload_bars is not None:
                upload_bars.skip(path.stat().st_size)
            done.append(result)
            if not args.json:
                out.print(_uploaded_line(result), markup=False, highlight=False)
    for result in done:
        file = client.wait(result.file.id) if args.wait else result.file
        if args.json:
            console.print(json_line({"path": str(result.path), **file.raw}), markup=False)
        elif args.wait:
            console.print(summary(str(file.status).lower(), file), markup=False)
        if args.wait and file.status.failed:
            say_error(f"{result.path}: {file.status}: {file.error or 'no reason given'}")
            code = code or _exits.FAILED
    return code


def _uploaded_line(result: UploadResult) -> str:
    if result.already_uploaded:
        return summary("already uploaded", result.file)
    line = summary("uploaded", result.file)
    if result.stored_parts:
        line += f" resumed={result.stored_parts}/{result.stored_parts + result.sent_parts} parts"
    return line


def ls(args: argparse.Namespace, client: Client, console: Console) -> int:
    filters = {"status": args.status, "content_type": args.content_type, "filename": args.filename}
    if args.all:
        files = list(client.iter_files(limit=args.limit, **filters))
        more = None
    else:
        page = client.list_files(limit=args.limit, **filters)
        files, more = page.items, page.next_cursor
    if args.json:
        for file in files:
            console.print(json_line(file.raw), markup=False)
    else:
        console.print(files_table(files))
    if more:
        say_error("more files than shown: add --all (or a larger --limit)")
    return _exits.OK


def status(args: argparse.Namespace, client: Client, console: Console) -> int:
    file = client.get_file(args.file_id)
    console.print(json_line(file.raw) if args.json else file_details(file), markup=False)
    return _exits.OK


def get(args: argparse.Namespace, client: Client, console: Console) -> int:
    file = client.get_file(args.file_id)
    target = target_path(file, args.output)
    if console.is_terminal:
        with bars(console) as progress:
            task = progress.add_task(target.name, total=file.size)
            saved = download(client, file, target, on_bytes=lambda n: progress.advance(task, n))
    else:
        saved = download(client, file, target)
    console.print(f"saved {saved} {size(file.size)} sha256={file.sha256}", markup=False)
    return _exits.OK


def rm(args: argparse.Namespace, client: Client, console: Console) -> int:
    client.delete_file(args.file_id)
    console.print(f"deleted {args.file_id}", markup=False)
    return _exits.OK


def watch(args: argparse.Namespace, client: Client, console: Console) -> int:
    what = f"file {args.file_id}" if args.file_id else "all files"
    try:
        for event in events(
            client.config,
            args.file_id,
            on_open=lambda: say_error(f"watching {what}; Ctrl-C to stop"),
        ):
            if args.json:
                line = json_line(event.raw)
            else:
                when = event.time.isoformat() if event.time else "-"
                line = f"{when} {event.type} {event.file_id} {event.status or '-'}"
            console.print(line, markup=False, highlight=False)
    except KeyboardInterrupt:
        return _exits.OK
    return _exits.OK


COMMANDS = {"upload": upload, "ls": ls, "status": status, "get": get, "rm": rm, "watch": watch}
