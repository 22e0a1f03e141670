"""featurecost: which product feature, tenant and user is eating the LLM bill.

``featurecost`` is a namespace shared by two distributions: ``featurecost-instrumentation``
(this file, the attribution API and the SDK instrumentors) and ``featurecost-collector``
(``featurecost.collector``). ``extend_path`` lets both live in separate directories, as
they do in an editable install.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

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

__all__ = [
    "Attribution",
    "ContextThreadPoolExecutor",
    "UnattributedCallError",
    "attribute",
    "bind_context",
    "configure",
    "configure_prefix_fingerprint",
    "current_attribution",
]
