"""What the provider stand-ins share: deterministic token counts and completions.

Counts are a pure function of the request (about four characters a token), so a test can
compare span attributes with what a stand-in actually served, never with numbers it
wrote itself.
"""

from __future__ import annotations

import math

# The primitives are the demo stand-in's, so every stand-in counts tokens the same way.
from testsupport.stand_ins.openai_anthropic import completion_words, count_tokens, digest, sse, text_of

__all__ = ["chunks", "completion", "count_tokens", "digest", "sse", "text_of"]


def completion(seed: int, max_tokens: int | None) -> tuple[list[str], bool]:
    """The words of a completion (one token each, 20 to 79 of them) and whether max_tokens cut it short."""
    return completion_words(seed, max_tokens, base=20, spread=60)


def chunks(words: list[str], parts: int) -> list[list[str]]:
    """Split a completion into ``parts`` stream deltas (the last ones may be empty)."""
    size = max(1, math.ceil(len(words) / parts))
    return [words[i * size : (i + 1) * size] for i in range(parts)]
