from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from featurecost.collector.ingest.wal import Position, WalFullError, WriteAheadLog
from testsupport.harness import wait_until


def _append_all(wal: WriteAheadLog, payloads: list[bytes]) -> list[Position]:
    futures = [wal.append(p) for p in payloads]
    return [f.result(timeout=10) for f in futures]


def test_appended_records_are_read_back_in_order(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    payloads = [f"request-{i}".encode() * (i + 1) for i in range(50)]
    positions = _append_all(wal, payloads)
    records = wal.read(wal.checkpoint, 1000, 1 << 30)
    assert [r.payload for r in records] == payloads
    assert [r.end for r in records] == positions
    wal.close()


def test_segments_roll_and_reads_cross_them(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    payloads = [bytes([i]) * 40 for i in range(20)]
    for payload in payloads:  # one group each: a group is never split across segments
        wal.append(payload).result(10)
    assert len(list(tmp_path.glob("*.wal"))) > 5
    assert [r.payload for r in wal.iter_from(wal.checkpoint)] == payloads
    wal.close()


def test_commit_survives_reopen_and_drops_consumed_segments(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    payloads = [bytes([i]) * 40 for i in range(10)]
    _append_all(wal, payloads)
    records = wal.read(wal.checkpoint, 6, 1 << 30)
    wal.commit(records[-1].end)
    segments_before = len(list(tmp_path.glob("*.wal")))
    wal.close()

    reopened = WriteAheadLog(tmp_path, segment_bytes=100)
    assert reopened.checkpoint == records[-1].end
    assert [r.payload for r in reopened.iter_from(reopened.checkpoint)] == payloads[6:]
    assert len(list(tmp_path.glob("*.wal"))) <= segments_before
    reopened.close()


def test_a_torn_tail_is_truncated_on_open(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    _append_all(wal, [b"one", b"two"])
    wal.close()
    (segment,) = tmp_path.glob("*.wal")
    with segment.open("ab") as f:  # a crash in the middle of writing a third record
        f.write(b"\x10\x00\x00\x00\xde\xad")
    reopened = WriteAheadLog(tmp_path)
    assert [r.payload for r in reopened.iter_from(reopened.checkpoint)] == [b"one", b"two"]
    _append_all(reopened, [b"three"])
    assert [r.payload for r in reopened.iter_from(reopened.checkpoint)] == [b"one", b"two", b"three"]
    reopened.close()


def test_full_log_refuses_appends(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, max_bytes=100)
    _append_all(wal, [b"x" * 60])
    with pytest.raises(WalFullError):
        wal.append(b"y" * 60)
    records = wal.read(wal.checkpoint, 10, 1 << 30)
    wal.commit(records[-1].end)
    _append_all(wal, [b"y" * 60])  # room again once stored downstream
    wal.close()


def test_a_write_that_fills_the_disk_leaves_no_partial_record_and_loses_nothing_acked(tmp_path: Path) -> None:
    # A real full disk: a 1 MB tmpfs in a private mount namespace (tests/collector/ingest/wal_disk_full.py)
    argv = ["unshare", "--mount", "--map-root-user", sys.executable, "-m", "tests.collector.ingest.wal_disk_full"]
    done = subprocess.run([*argv, str(tmp_path / "disk")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["failed"]["errno"] == errno.ENOSPC
    failed = report["failed"]["n"]
    # the failed record was cut back off the segment at once: only whole records remain
    assert report["failed"]["segment_bytes_after_failure"] == failed * report["record_bytes"]
    # every acknowledged record, including those appended after the failure, survives a reopen
    assert report["acked"][-3:] == [failed + 1, failed + 2, failed + 3]
    assert report["read"] == report["acked"]


def test_a_bad_record_followed_by_data_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    _append_all(wal, [b"a" * 100, b"b" * 100, b"c" * 100])
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[8 + 100 + 8 + 5] ^= 0xFF  # inside the second record's payload
    segment.write_bytes(bytes(data))
    wal = WriteAheadLog(tmp_path)
    # acknowledged records after the bad one are kept for an operator, not truncated away
    assert segment.read_bytes() == bytes(data)
    with pytest.raises(OSError, match="corrupt write-ahead log record"):
        wal.read(wal.checkpoint, 10, 1 << 20)
    wal.close()


def test_a_decoded_payload_rides_along_until_committed_and_only_within_its_bound(tmp_path: Path) -> None:
    # parse once: what an appender decoded is handed to the reader, bounded, and only a cache
    wal = WriteAheadLog(tmp_path, segment_bytes=100, max_decoded_bytes=100)
    payloads = [bytes([i]) * 40 for i in range(4)]
    decoded = [{"request": i} for i in range(4)]
    for payload, obj in zip(payloads, decoded, strict=True):
        wal.append(payload, obj).result(10)
    wal.append(b"no decoded form").result(10)
    records = list(wal.iter_from(wal.checkpoint))
    assert [r.payload for r in records] == [*payloads, b"no decoded form"]
    # 40 + 40 bytes fit the 100-byte bound, the third would not: read from disk by the reader
    assert [r.decoded for r in records] == [decoded[0], decoded[1], None, None, None]
    wal.commit(records[1].end)
    assert wal._decoded_bytes == 0  # released with the commit, so later records can use the room
    wal.append(b"x" * 40, {"request": "later"}).result(10)
    assert list(wal.iter_from(records[1].end))[-1].decoded == {"request": "later"}
    wal.close()
    reopened = WriteAheadLog(tmp_path)  # after a restart the bytes on disk are all there is
    assert [r.decoded for r in reopened.iter_from(reopened.checkpoint)] == [None, None, None, None]
    reopened.close()


def test_reads_see_segments_rolled_after_open_without_listing_the_directory(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=50)
    first = [bytes([i]) * 30 for i in range(3)]
    for payload in first:
        wal.append(payload).result(10)
    assert [r.payload for r in wal.iter_from(wal.checkpoint)] == first
    later = [bytes([i]) * 30 for i in range(3, 6)]
    for payload in later:
        wal.append(payload).result(10)
    records = list(wal.iter_from(wal.checkpoint))
    assert [r.payload for r in records] == first + later
    wal.commit(records[4].end)
    on_disk = sorted(int(p.stem) for p in tmp_path.glob("*.wal"))
    assert on_disk[0] == records[4].end.segment > 1  # consumed segments are gone from disk...
    assert [r.payload for r in wal.iter_from(wal.checkpoint)] == later[2:]  # ...and from the reader
    wal.close()


# --- bounds beyond bytes: age of the oldest unstored data and free disk ---
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
