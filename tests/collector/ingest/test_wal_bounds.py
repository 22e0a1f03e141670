"""The write-ahead log's bounds beyond bytes: age of the oldest unstored data and free disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurecost.collector.ingest.seen_spans import SeenSpans
from featurecost.collector.ingest.wal import WalFullError, WriteAheadLog
from testsupport.harness import wait_until


def test_unstored_data_older_than_max_age_refuses_appends_until_stored(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, max_age_seconds=0.05)
    end = wal.append(b"first").result(10)
    wait_until(lambda: wal.oldest_unstored_age() > 0.05, 5, "the record to age")
    with pytest.raises(WalFullError, match="unstored for more than"):
        wal.append(b"second")
    wal.commit(end)
    assert wal.oldest_unstored_age() == 0
    wal.append(b"second").result(10)
    wal.close()


def test_too_little_free_disk_refuses_appends(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, min_free_disk_bytes=1 << 62)
    with pytest.raises(WalFullError, match="free on the write-ahead log's disk"):
        wal.append(b"x")
    wal.close()


def test_pending_bytes_survive_reopen_and_shrink_on_commit(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=64)
    ends = [wal.append(bytes([i]) * 40).result(10) for i in range(6)]
    assert wal.pending_bytes() == 6 * 48
    wal.close()
    reopened = WriteAheadLog(tmp_path, segment_bytes=64)
    assert reopened.pending_bytes() == 6 * 48
    assert reopened.oldest_unstored_age() >= 0
    reopened.commit(ends[2])
    assert reopened.pending_bytes() == 3 * 48
    reopened.close()


def test_seen_spans_survive_reopen_rotate_and_drop_a_torn_tail(tmp_path: Path) -> None:
    seen = SeenSpans(tmp_path, window=4)
    seen.add(["a", "b", "c"])
    seen.add(["d", "e"])  # rotates: a..e move to the previous generation
    seen.add(["f"])
    seen.close()
    with (tmp_path / "seen-spans.current").open("ab") as f:
        f.write(b"\x05\x00\x00\x00torn")  # a crash mid-append
    reopened = SeenSpans(tmp_path, window=4)
    assert all(key in reopened for key in "abcdef")
    assert "g" not in reopened
    reopened.add(["g", "h", "i"])  # rotates again: a..e are forgotten
    assert "a" not in reopened
    assert all(key in reopened for key in "fghi")
    reopened.close()
