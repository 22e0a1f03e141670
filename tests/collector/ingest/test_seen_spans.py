"""Seen spans: the span identities already stored, kept across restarts."""

from __future__ import annotations

from pathlib import Path

from featurecost.collector.ingest.seen_spans import SeenSpans


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
