"""Who is the provider: the endpoint a call went to, not the SDK that made it.

An ``openai`` client pointed at ``https://api.deepseek.com`` is a DeepSeek call; at
``http://localhost:8000/v1`` it is a self-hosted vLLM or Ollama server. The span says which
endpoint (``server.address``, ``server.port``, or the whole base URL some instrumentations
record); this module places it:

1. the prices file's ``endpoints:`` entries first (a private gateway that forwards to a
   public provider, a self-hosted server on a public-looking name);
2. genai-prices' own provider URL patterns (``Provider.api_pattern``) — the same data that
   prices the call, so there is no second host table to keep up;
3. a loopback, private or local-only address is self-hosted: it is priced from the prices
   file only, never from a public price list;
4. any other public host cannot be placed: the call is unpriced with a reason naming it.

A span without an endpoint keeps the provider it names (``gen_ai.provider.name``...).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from genai_prices import data_snapshot

from featurecost.collector.pipeline import aliases

SELF_HOSTED: Final = "self-hosted"
# What the prices file's ``price_as`` can say besides a provider name.
PRICE_AS_SPAN: Final = "span"
# Host suffixes that never resolve on the public internet (RFC 6761/6762/8375, cloud-internal DNS).
_LOCAL_SUFFIXES: Final = (
    ".localhost",
    ".local",
    ".internal",
    ".lan",
    ".home.arpa",
    ".svc",
    ".cluster.local",
    ".intranet",
    ".corp",
)
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a call went: ``host`` (lower case), ``port`` (0 when not said), ``path`` (base path)."""

    host: str
    port: int = 0
    path: str = ""

    @property
    def address(self) -> str:
        """``host[:port][/path]`` as stored in ``calls.endpoint`` and named in unpriced reasons."""
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        port = f":{self.port}" if self.port else ""
        return f"{host}{port}{self.path}"

    @classmethod
    def parse(cls, address: str) -> Endpoint:
        """The stored form back (``host[:port][/path]``), or a full URL."""
        text = address.strip()
        if "://" not in text:
            text = f"//{text}"
        parts = urlsplit(text)
        try:
            port = parts.port or 0
        except ValueError:
            port = 0
        host = (parts.hostname or "").lower()
        scheme_port = _DEFAULT_PORTS.get(parts.scheme)
        if port == scheme_port:
            port = 0
        return cls(host, port, parts.path.rstrip("/"))


def _endpoint(host: str, port: int, url: str) -> Endpoint | None:
    """The endpoint a span names: its ``server.address``/``server.port``, else a recorded base URL."""
    if host:
        path = ""
        if "://" in url:
            parsed = Endpoint.parse(url)
            if parsed.host == host.lower().strip("[]"):
                path = parsed.path
        return Endpoint(host.lower().strip("[]"), port if port not in (0, 443) else 0, path)
    if url:
        parsed = Endpoint.parse(url)
        return parsed if parsed.host else None
    return None


def is_local(host: str) -> bool:
    """Loopback, private, link-local or a name that only resolves inside a network."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(_LOCAL_SUFFIXES)
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified


@functools.lru_cache(maxsize=1024)
def genai_prices_provider(host: str, path: str) -> str | None:
    """The genai-prices provider id whose API URL pattern matches ``https://host/path``, if any."""
    url = f"https://{host}{path}"
    for provider in data_snapshot._bundled_snapshot().providers:
        if re.match(provider.api_pattern, url):
            return provider.id
    return None


def provider_name(genai_prices_id: str, stated: str) -> str:
    """Our provider name (GenAI semconv spelling) for a genai-prices provider id.

    The span's own name wins when it means the same genai-prices provider (``gcp.vertex_ai``
    and ``gcp.gemini`` are both ``google``): it is the more specific of the two.
    """
    if aliases.GENAI_PRICES_PROVIDER_IDS.get(stated, stated) == genai_prices_id:
        return stated
    for name, gp_id in aliases.GENAI_PRICES_PROVIDER_IDS.items():
        if gp_id == genai_prices_id and aliases.PROVIDER_ALIASES.get(name) == name:
            return name
    return genai_prices_id


def span_endpoint(host: object, port: object, url: object, stated: str) -> tuple[str, str]:
    """For the normalizer: the stored endpoint address of a span and its provider as placed by
    genai-prices' URL patterns (``stated`` when they do not place it); ``("", stated)`` without one."""
    number = port if isinstance(port, int) and not isinstance(port, bool) else 0
    if isinstance(port, str) and port.isdigit():
        number = int(port)
    return _span_endpoint(
        host.strip() if isinstance(host, str) else "", number, url.strip() if isinstance(url, str) else "", stated
    )


@functools.lru_cache(maxsize=4096)
def _span_endpoint(host: str, port: int, url: str, stated: str) -> tuple[str, str]:
    # one cached lookup per span: an app's spans name the same few endpoints and providers
    endpoint = _endpoint(host, port, url)
    if endpoint is None:
        return "", stated
    return endpoint.address, public_provider(endpoint, stated)


def public_provider(endpoint: Endpoint, stated: str) -> str:
    """The provider genai-prices' URL patterns place ``endpoint`` at, else ``stated``.

    The normalizer applies this (a provider's usage semantics depend on it); the pricer does
    the rest of ``place`` (prices-file endpoints, self-hosted, unknown hosts).
    """
    gp_id = genai_prices_provider(endpoint.host, endpoint.path)
    return stated if gp_id is None else provider_name(gp_id, stated)


@dataclass(frozen=True, slots=True)
class Placement:
    """What the endpoint says about a call: the provider to price it as, or why it cannot be."""

    provider: str
    unplaced_reason: str = ""  # set: price nothing, say this
    self_hosted: bool = False  # priced from the prices file only


def _self_hosted(stated: str) -> Placement:
    """A self-hosted server: ``self-hosted``, unless the span already names a provider no public
    price list knows (``vllm``, ``ollama``): that name is kept, prices-file entries may use it."""
    public = aliases.GENAI_PRICES_PROVIDER_IDS.get(stated, stated)
    known = bool(stated) and data_snapshot.find_provider_by_id(data_snapshot._bundled_snapshot().providers, public)
    return Placement(SELF_HOSTED if known or not stated else stated, self_hosted=True)


def place(endpoint: Endpoint, stated: str, configured: str | None) -> Placement:
    """Place a call that went to ``endpoint`` and whose span names provider ``stated``.

    ``configured``: the prices file's ``price_as`` for this endpoint, if it lists it.
    """
    if configured == SELF_HOSTED:
        return _self_hosted(stated)
    if configured is not None:
        return Placement(stated if configured == PRICE_AS_SPAN else configured)
    gp_id = genai_prices_provider(endpoint.host, endpoint.path)
    if gp_id is not None:
        return Placement(provider_name(gp_id, stated))
    if is_local(endpoint.host):
        return _self_hosted(stated)
    return Placement(
        stated,
        f"unknown endpoint {endpoint.address}: not a provider in genai-prices' URL patterns; "
        "list it under the prices file's endpoints (price_as: a provider, span, or self-hosted)",
    )
