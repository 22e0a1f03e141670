"""Every collector process that shares a data directory prices with the same prices.

With ``--workers N`` only worker 0 serves the API, so ``featurecost prices reprice`` (a re-read
prices file) and ``featurecost prices update`` (newer genai-prices data) change worker 0's
pricer in place. Left there, workers 1..N-1 would go on pricing new calls with the old prices,
calls the reprice has just restated would be followed by calls priced the old way, and which
price a call got would depend on the connection it came in on.

So the process that changed its prices bumps a marker file in the data directory, and each
pipeline looks at the marker (one ``stat``) before pricing a batch: when it moved, the pipeline
reloads the prices file and the saved price data, exactly what a restart would load. A prices
file that no longer loads leaves the pricer as it was (logged): the API refused it already.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from featurecost.collector.durable import atomic_write
from featurecost.collector.pricing.overrides import PricesFileError
from featurecost.collector.pricing.price_update import saved_price_data
from featurecost.collector.pricing.pricer import Pricer

log = logging.getLogger(__name__)

MARKER_FILE = "prices-generation"


class PricesSync:
    """The marker of one data directory, for one process's ``pricer``."""

    def __init__(self, data_dir: Path, prices_file: Path | None, pricer: Pricer) -> None:
        self.marker = data_dir / MARKER_FILE
        self.prices_file = prices_file
        self.pricer = pricer
        self._lock = threading.Lock()
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.marker)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def changed(self) -> str | None:
        """This process has just changed its prices: the others reload theirs. None, or why they
        cannot be told (a full disk): the caller says so, and repeating the change retries."""
        with self._lock:
            try:
                self.marker.parent.mkdir(parents=True, exist_ok=True)
                # a new inode every time (written then renamed), so two bumps within the
                # file system's timestamp granularity still differ
                atomic_write(self.marker, f"{time.time_ns()} {os.getpid()}\n")
            except OSError as exc:
                log.error("cannot tell the other collector processes that prices changed: %s", exc)
                return (
                    f"prices changed in the process serving the API, but the other collector processes "
                    f"could not be told ({exc.strerror or exc}): they price new calls with the old prices "
                    f"until this is repeated successfully or the collector restarts"
                )
            self._seen = self._stamp()
            return None

    def refresh(self) -> bool:
        """Reload the prices if another process changed them since the last look; True if so."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        with self._lock:
            if stamp == self._seen:
                return False
            self._seen = stamp
            try:
                # what a restart would load: the server builds its pricer the same way
                fresh = Pricer.from_file(self.prices_file, saved_price_data(self.marker.parent))
            except (PricesFileError, OSError, ValueError) as exc:
                log.error("prices changed by another collector process, but reloading them failed: %s", exc)
                return False
            self.pricer.use_overrides(fresh.overrides)
            self.pricer.use_data(fresh.data)
            log.info("prices reloaded (changed by another collector process): data %s", fresh.data_version)
            return True
