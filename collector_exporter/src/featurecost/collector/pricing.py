"""Price: the cost of each call at the price of its day.

Prices come from the pinned ``genai-prices`` package (its bundled data snapshot; we
never ask it to fetch updates). A call we cannot price keeps ``cost_usd = None`` and
says why in ``unpriced_reason`` — an unknown model must never look free.
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from importlib.metadata import version

import genai_prices
from genai_prices import Usage

from featurecost.collector.records import CallRecord
from featurecost.instrumentation import attributes as attrs

GENAI_PRICES_SOURCE = "genai-prices"
DATA_VERSION = f"genai-prices=={version('genai-prices')}"

# gen_ai.provider.name values whose genai-prices provider id differs.
_PROVIDER_IDS = {
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
}


class Pricer:
    """Prices ``CallRecord``s in place."""

    def price(self, record: CallRecord) -> CallRecord:
        if record.usage_source != attrs.USAGE_REPORTED:
            if record.status == "error":
                # A failed request reports no usage and providers do not bill it.
                record.cost_usd = record.input_cost_usd = record.output_cost_usd = Decimal(0)
                record.price_source = "not-billed"
                record.price_entry = f"failed call ({record.error_type or 'error'})"
                return record
            return self._unpriced(record, "usage not reported")
        model = record.model
        if not model:
            return self._unpriced(record, "model not reported")
        provider_id = _PROVIDER_IDS.get(record.provider, record.provider) or None
        usage = Usage(
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cache_read_tokens=record.cache_read_tokens,
            cache_write_tokens=record.cache_write_tokens,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                calc = genai_prices.calc_price(
                    usage, model, provider_id=provider_id, genai_request_timestamp=record.start_time
                )
        except LookupError as exc:
            return self._unpriced(record, f"no price for {record.provider}/{model}: {exc}")
        except ValueError as exc:
            return self._unpriced(record, f"cannot price usage of {record.provider}/{model}: {exc}")
        record.cost_usd = calc.total_price
        record.input_cost_usd = calc.input_price
        record.output_cost_usd = calc.output_price
        record.price_source = GENAI_PRICES_SOURCE
        record.price_entry = f"{calc.provider.id}/{calc.model.id}"
        record.price_data_version = DATA_VERSION
        record.unpriced_reason = ""
        return record

    @staticmethod
    def _unpriced(record: CallRecord, reason: str) -> CallRecord:
        record.cost_usd = record.input_cost_usd = record.output_cost_usd = None
        record.price_source = ""
        record.price_entry = ""
        record.price_data_version = DATA_VERSION
        record.unpriced_reason = reason
        return record
