"""featurecost instrumentation: attribution context and LLM SDK instrumentors."""

from featurecost.instrumentation._prefix import configure_prefix_fingerprint
from featurecost.instrumentation.attribution import (
    Attribution,
    ContextThreadPoolExecutor,
    UnattributedCallError,
    attribute,
    bind_context,
    configure,
    current_attribution,
)
from featurecost.instrumentation.version import __version__

__all__ = [
    "Attribution",
    "ContextThreadPoolExecutor",
    "UnattributedCallError",
    "__version__",
    "attribute",
    "bind_context",
    "configure",
    "configure_prefix_fingerprint",
    "current_attribution",
]
