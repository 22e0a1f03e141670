"""The OpenTelemetry Collector filter that forwards only the spans featurecost can bill.

An OTel Collector in front of featurecost drops every other span to save the network hop.
A hand-written list of keys drifts from the collector's own: the shipped filter once kept
only ``gen_ai.*`` spans and so silently dropped every OpenInference call. The condition is
therefore generated from ``aliases.LLM_SPAN_MARKERS`` — the keys the normalizer itself looks
for — and written into ``deploy/otel-collector/config.yaml`` by ``make generated``
(``python -m featurecost.collector.pipeline.otel_filter --write FILE``); a test compares the two.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from featurecost.collector.pipeline import aliases

# The filter processor drops a span when a condition is true: drop it when it has none of the keys.
_CONDITION_LINE = re.compile(r'^(?P<indent>\s*)- attributes\["[^"]+"\] == nil(?: and attributes\["[^"]+"\] == nil)*$')


def drop_condition(markers: tuple[str, ...] = aliases.LLM_SPAN_MARKERS) -> str:
    """The OTTL condition that is true for a span featurecost can never bill."""
    return " and ".join(f'attributes["{key}"] == nil' for key in markers)


def rewrite(config_text: str) -> str:
    """``config_text`` with the ``filter/llm-only`` condition line replaced by the generated one."""
    lines = config_text.splitlines(keepends=True)
    found = 0
    for i, line in enumerate(lines):
        match = _CONDITION_LINE.match(line.rstrip("\n"))
        if match:
            lines[i] = f"{match['indent']}- {drop_condition()}\n"
            found += 1
    if found != 1:
        raise ValueError(f"expected one filter condition line, found {found}")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="rewrite the condition in this OTel Collector config file")
    args = parser.parse_args(argv)
    if args.write is None:
        print(drop_condition())
        return 0
    args.write.write_text(rewrite(args.write.read_text()))
    print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
