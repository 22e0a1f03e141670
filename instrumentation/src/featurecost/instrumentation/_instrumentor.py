"""The base of every featurecost instrumentor: ``instrument()`` and ``uninstrument()`` never raise.

Instrumenting runs at the app's start, often next to other observability tools (Logfire,
OpenLLMetry, OpenLIT ...) that install their own tracer providers and wrappers. Whatever
they did, our failure to instrument must not stop the app: the error is logged, what was
wrapped so far is unwrapped, and the SDK keeps working uninstrumented.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

log = logging.getLogger(__name__)


class SafeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    def instrument(self, **kwargs: Any) -> Any:
        try:
            return super().instrument(**kwargs)
        except Exception:
            log.exception("featurecost: %s could not instrument; the SDK runs uninstrumented", type(self).__name__)
            self._roll_back(**kwargs)
            return None

    def uninstrument(self, **kwargs: Any) -> Any:
        try:
            return super().uninstrument(**kwargs)
        except Exception:
            log.exception("featurecost: %s could not uninstrument cleanly", type(self).__name__)
            return None

    def _roll_back(self, **kwargs: Any) -> None:
        # ``_uninstrument`` unwraps only what is wrapped (``unwrap`` ignores the rest).
        try:
            self._uninstrument(**kwargs)
        except Exception:
            log.exception("featurecost: rolling back %s failed", type(self).__name__)
        self._is_instrumented_by_opentelemetry = False
