"""The chaos suite's table: what each column counts, which are bad, and the verdict."""

from __future__ import annotations

import json

from chaos.report import Row, Upload, answer_class, as_json, passed, repeats, table, tally

GOOD, BAD = Upload("good-1", good=True), Upload("bad-1", good=False)


def row(**overrides: object) -> Row:
    fields: dict[str, object] = {
        "scenario": "s",
        "uploaded": 1,
        "processed": 1,
        "rejected": 0,
        "failed_good": 0,
        "wrong": 0,
        "stuck": 0,
        "ws_duplicates": 0,
        "webhook_duplicates": 0,
        "errors_5xx": 0,
        "answers_503": 0,
        "late": None,
        "recovery_s": 1.0,
    }
    fields.update(overrides)
    return Row(**fields)  # type: ignore[arg-type]


def count(uploads: list[Upload], statuses: dict[str, str], **kwargs: object) -> Row:
    options: dict[str, object] = {
        "ws_duplicates": 0,
        "webhook_duplicates": 0,
        "answers": [],
        "late": None,
        "recovery_s": 0.0,
    }
    options.update(kwargs)
    return tally("s", uploads, statuses, **options)  # type: ignore[arg-type]


def test_a_good_file_that_ends_failed_or_missing_is_failed_but_good() -> None:
    uploads = [GOOD, Upload("good-2", True), Upload("good-3", True)]
    statuses = {"good-1": "FAILED", "good-2": "MISSING", "good-3": "PROCESSED"}
    counted = count(uploads, statuses)
    assert (counted.failed_good, counted.processed, counted.stuck) == (2, 1, 0)
    assert counted.bad == ["failed_good"]


def test_a_bad_file_rejected_is_expected_and_a_bad_file_failed_is_not_counted_as_good() -> None:
    counted = count([GOOD, BAD], {"good-1": "PROCESSED", "bad-1": "REJECTED"})
    assert (counted.processed, counted.rejected, counted.wrong) == (1, 1, 0)
    assert counted.bad == []
    failed = count([BAD], {"bad-1": "FAILED"})
    assert failed.failed_good == 0


def test_a_good_file_rejected_or_a_bad_one_processed_is_wrong() -> None:
    counted = count([GOOD, BAD], {"good-1": "REJECTED", "bad-1": "PROCESSED"})
    assert counted.wrong == 2
    assert "wrong" in counted.bad


def test_files_not_settled_or_not_found_are_stuck() -> None:
    counted = count([GOOD, BAD, Upload("gone", True)], {"good-1": "PROCESSING", "bad-1": "PENDING"})
    assert counted.stuck == 3
    assert counted.bad == ["stuck"]


def test_answers_count_5xx_apart_from_clean_503s() -> None:
    classes = [
        answer_class(201, {}),
        answer_class(503, {"Retry-After": "1"}),
        answer_class(503, {}),
        answer_class(500, {"retry-after": "1"}),
        answer_class(502, {}),
        answer_class(429, {"Retry-After": "1"}),
    ]
    assert classes == ["ok", "503", "5xx", "5xx", "5xx", "ok"]
    counted = count([GOOD], {"good-1": "PROCESSED"}, answers=classes)
    assert (counted.errors_5xx, counted.answers_503) == (3, 1)
    assert counted.bad == ["errors_5xx"]


def test_repeats_count_each_arrival_after_the_first() -> None:
    assert repeats(["a", "b", "a", "a", "c"]) == 2
    assert repeats([]) == 0


def test_late_counts_only_where_measured() -> None:
    assert row(late=None).bad == []
    assert row(late=0).bad == []
    assert row(late=3).bad == ["late"]


def test_a_scenario_that_broke_is_bad_and_the_run_fails() -> None:
    broken = row(error="RuntimeError('s3 exited')")
    assert broken.bad == ["error"]
    assert not passed([row(), broken])
    assert passed([row()])
    assert not passed([])


def test_table_has_a_header_and_a_verdict_per_row() -> None:
    text = table(
        [row(scenario="redis-down"), row(scenario="postgres-cut", stuck=2, recovery_s=None)]
    )
    header, first, second = text.splitlines()
    assert header.split()[:4] == ["scenario", "uploaded", "PROCESSED", "REJECTED"]
    assert "FAILED-but-good" in header
    assert first.startswith("redis-down") and first.endswith("ok")
    assert "never" in second and second.endswith("BAD: stuck")


def test_json_carries_the_settings_rows_bad_columns_and_verdict() -> None:
    document = json.loads(as_json([row(ws_duplicates=1, webhook_duplicates=2)], {"files": 200}))
    assert document["settings"] == {"files": 200}
    assert document["rows"][0]["duplicates"] == 3
    assert document["rows"][0]["ws_duplicates"] == 1
    assert document["rows"][0]["bad"] == ["duplicates"]
    assert document["passed"] is False
