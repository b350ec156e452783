"""What a scenario's run comes to: one table row per scenario, and whether it passed.

Pure: it counts what the runner observed (the uploads, the files' final statuses, the event ids
clients received, the answers the uploading client saw) and formats the table and its JSON.

Columns (``COLUMNS``; the bad ones, which must all be 0, are ``BAD_COLUMNS``):

- ``uploaded``: files whose bytes storage accepted (the client's PUT succeeded);
- ``PROCESSED``, ``REJECTED``: final statuses of those files (a tenth are uploaded on purpose
  with a declared type their bytes are not, so REJECTED is expected for them);
- ``failed_good``: files uploaded with correct declarations that ended FAILED or MISSING;
- ``wrong``: a good file REJECTED, or a bad one PROCESSED;
- ``stuck``: uploaded files not settled by the deadline;
- ``duplicates``: an event id a WebSocket client received more than once (``ws_duplicates``),
  plus a ``webhook-id`` a receiver got again after answering it 2xx (``webhook_duplicates``);
- ``5xx``: answers of 500 or more the uploading client saw, except 503s with ``Retry-After``;
- ``503s``: those 503s with ``Retry-After`` (clean degradation: informative);
- ``late``: where a scenario promises promptness, what came late (``-`` elsewhere);
- ``recovery_s``: seconds from healing the fault until every uploaded file was settled.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from filepipe.files.model import Status

BAD_COLUMNS = ("failed_good", "wrong", "stuck", "duplicates", "errors_5xx", "late")
LOST = frozenset({Status.FAILED, Status.MISSING})
"""What a good file must never end as."""


@dataclass(frozen=True)
class Upload:
    """A file the client uploaded, and whether its declarations were correct."""

    file_id: str
    good: bool


@dataclass(frozen=True)
class Row:
    scenario: str
    uploaded: int
    processed: int
    rejected: int
    failed_good: int
    wrong: int
    stuck: int
    ws_duplicates: int
    webhook_duplicates: int
    errors_5xx: int
    answers_503: int
    late: int | None
    recovery_s: float | None
    """None when something never settled."""
    not_uploaded: int = 0
    """Files the client gave up uploading (informative: the client's retries ran out)."""
    error: str = ""
    """Why the scenario could not run to its end, if it could not."""

    @property
    def duplicates(self) -> int:
        return self.ws_duplicates + self.webhook_duplicates

    @property
    def bad(self) -> list[str]:
        """The bad columns that are not 0 (and ``error``, if the run broke)."""
        faults = [name for name in BAD_COLUMNS if getattr(self, name)]
        return [*faults, "error"] if self.error else faults


def tally(
    scenario: str,
    uploads: Sequence[Upload],
    statuses: Mapping[str, str],
    *,
    ws_duplicates: int,
    webhook_duplicates: int,
    answers: Iterable[int | str],
    late: int | None,
    recovery_s: float | None,
    not_uploaded: int = 0,
) -> Row:
    """The row of ``scenario``: ``statuses`` maps file id → final status; ``answers`` are the
    classes (``answer_class``) of every HTTP answer the uploading client saw."""
    counts = Counter(answers)
    final = {u.file_id: Status(statuses[u.file_id]) for u in uploads if u.file_id in statuses}
    good = [u for u in uploads if u.good]
    bad = [u for u in uploads if not u.good]
    return Row(
        scenario=scenario,
        uploaded=len(uploads),
        processed=sum(1 for s in final.values() if s is Status.PROCESSED),
        rejected=sum(1 for s in final.values() if s is Status.REJECTED),
        failed_good=sum(1 for u in good if final.get(u.file_id) in LOST),
        wrong=sum(1 for u in good if final.get(u.file_id) is Status.REJECTED)
        + sum(1 for u in bad if final.get(u.file_id) is Status.PROCESSED),
        stuck=sum(1 for u in uploads if u.file_id not in final or not final[u.file_id].settled),
        ws_duplicates=ws_duplicates,
        webhook_duplicates=webhook_duplicates,
        errors_5xx=counts["5xx"],
        answers_503=counts["503"],
        late=late,
        recovery_s=recovery_s,
        not_uploaded=not_uploaded,
    )


def answer_class(status: int, headers: Mapping[str, str]) -> str:
    """``"503"`` for a 503 with ``Retry-After`` (a clean refusal), ``"5xx"`` for any other
    answer of 500 or more, ``"ok"`` for the rest."""
    if status < 500:
        return "ok"
    if status == 503 and any(name.lower() == "retry-after" for name in headers):
        return "503"
    return "5xx"


def repeats(ids: Iterable[str]) -> int:
    """How many times an id came again after its first time."""
    return sum(count - 1 for count in Counter(ids).values() if count > 1)


COLUMNS = (
    ("scenario", "scenario"),
    ("uploaded", "uploaded"),
    ("processed", "PROCESSED"),
    ("rejected", "REJECTED"),
    ("failed_good", "FAILED-but-good"),
    ("wrong", "wrong"),
    ("stuck", "stuck"),
    ("duplicates", "duplicates"),
    ("errors_5xx", "5xx"),
    ("answers_503", "503s"),
    ("late", "late"),
    ("recovery_s", "recovery s"),
    ("verdict", "verdict"),
)


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned plain-text table (header first)."""
    cells = [[title for _, title in COLUMNS]]
    for row in rows:
        cells.append([_cell(row, name) for name, _ in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def _cell(row: Row, name: str) -> str:
    if name == "verdict":
        return "ok" if not row.bad else "BAD: " + ",".join(row.bad)
    value = getattr(row, name)
    if value is None:
        return "-" if name == "late" else "never"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def as_json(rows: Sequence[Row], settings: Mapping[str, Any]) -> str:
    """The run as JSON: its settings and every row (with its bad columns)."""
    return json.dumps(
        {
            "settings": dict(settings),
            "rows": [{**asdict(row), "duplicates": row.duplicates, "bad": row.bad} for row in rows],
            "passed": passed(rows),
        },
        indent=2,
    )


def passed(rows: Sequence[Row]) -> bool:
    return bool(rows) and not any(row.bad for row in rows)
