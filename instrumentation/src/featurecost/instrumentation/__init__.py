"""featurecost instrumentation: attribution context and LLM SDK instrumentors."""

from featurecost.instrumentation.attribution import Attribution, attribute, current_attribution
from featurecost.instrumentation.version import __version__

__all__ = ["Attribution", "__version__", "attribute", "current_attribution"]
