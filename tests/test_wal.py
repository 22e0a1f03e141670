from __future__ import annotations

from pathlib import Path

import pytest

from featurecost.collector.wal import Position, WalFullError, WriteAheadLog


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
    _append_all(wal, payloads)
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
