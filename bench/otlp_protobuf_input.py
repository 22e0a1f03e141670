"""Reference: chDB's own Protobuf input decoding OTLP ``ExportTraceServiceRequest``s to columns.

Issue #15 names the engine's ``Protobuf`` input format as the strongest compiled-decode idea:
the requests as they arrive (length-delimited), the opentelemetry-proto schema as
``format_schema``, and one row per span out of ``ARRAY JOIN`` with the attribute keys and values
as parallel arrays. This module measures it next to what the collector does today (upb parse,
then the normalizer's per-span attribute loop in Python) on the same payloads; it is a bench
reference, not a product path.

opentelemetry-proto ships no ``.proto`` files in its Python wheel, so the schema is written from
the generated modules' descriptors, every message of the four files in one ``.proto`` (the engine
resolves imports against its own schema directory). ``AnyValue`` is recursive (arrays of
``AnyValue``), which the engine cannot infer a table from: the structure is given explicitly and
reads the scalar values (the array/kvlist kinds are flagged in ``kinds`` and would need a
one-level-deep column more).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}
PACKAGE = "otlp"
MESSAGE = "ExportTraceServiceRequest"


def _type_name(field: FieldDescriptor) -> str:
    if field.type in _SCALARS:
        return _SCALARS[field.type]
    named: Any = field.message_type or field.enum_type
    return f".{PACKAGE}.{named.full_name[len(named.file.package) + 1 :]}"


def _field(field: FieldDescriptor, in_oneof: bool = False) -> str:
    label = "repeated " if field.is_repeated and not in_oneof else ""
    return f"{label}{_type_name(field)} {field.name} = {field.number};"


def _message(message: Descriptor, indent: str) -> list[str]:
    lines = [f"{indent}message {message.name} {{"]
    for enum in message.enum_types:
        lines.append(f"{indent}  enum {enum.name} {{")
        lines += [f"{indent}    {value.name} = {value.number};" for value in enum.values]
        lines.append(f"{indent}  }}")
    for nested in message.nested_types:
        lines += _message(nested, indent + "  ")
    oneofs: dict[str, list[FieldDescriptor]] = {}
    for field in message.fields:
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):  # "_x": proto3 optional, not a oneof
            oneofs.setdefault(oneof.name, []).append(field)
        else:
            lines.append(f"{indent}  {_field(field)}")
    for name, members in oneofs.items():
        lines.append(f"{indent}  oneof {name} {{")
        lines += [f"{indent}    {_field(field, in_oneof=True)}" for field in members]
        lines.append(f"{indent}  }}")
    lines.append(f"{indent}}}")
    return lines


def _files(root: FileDescriptor) -> list[FileDescriptor]:
    ordered: list[FileDescriptor] = []

    def visit(file: FileDescriptor) -> None:
        for dependency in file.dependencies:
            visit(dependency)
        if file not in ordered:
            ordered.append(file)

    visit(root)
    return ordered


def write_schema(directory: Path) -> str:
    """Write the OTLP trace schema as one ``.proto``; returns the ``format_schema`` setting."""
    lines = ['syntax = "proto3";', f"package {PACKAGE};"]
    for file in _files(trace_service_pb2.DESCRIPTOR):
        for enum in file.enum_types_by_name.values():
            lines.append(f"enum {enum.name} {{")
            lines += [f"  {value.name} = {value.number};" for value in enum.values]
            lines.append("}")
        for message in file.message_types_by_name.values():
            lines += _message(message, "")
    path = directory / "otlp_trace.proto"
    path.write_text("\n".join(lines) + "\n")
    return f"{path}:{MESSAGE}"


_KINDS = ", ".join(
    f"'{name}' = {number}"
    for number, name in enumerate(
        ("", "string_value", "bool_value", "int_value", "double_value", "array_value", "kvlist_value", "bytes_value")
    )
)
_ANY = f"Tuple(value Enum8({_KINDS}), string_value String, bool_value Bool, int_value Int64, double_value Float64)"
_ATTRIBUTES = f"Array(Tuple(key String, value {_ANY}))"
_SPAN = (
    "Tuple(trace_id String, span_id String, start_time_unix_nano UInt64, end_time_unix_nano UInt64, "
    f"attributes {_ATTRIBUTES}, status Tuple(code Int32))"
)
STRUCTURE = (
    f"resource_spans Array(Tuple(resource Tuple(attributes {_ATTRIBUTES}), "
    f"scope_spans Array(Tuple(spans Array({_SPAN})))))"
)

# One row per span: ids, times, status, and the attributes as parallel arrays (key, which value
# is set, and each scalar kind) -- what the normalizer's Python loop reads per span today.
_SPAN_COLUMNS = (
    "hex(span.trace_id) AS trace_id, hex(span.span_id) AS span_id, "
    "span.start_time_unix_nano AS start_ns, span.end_time_unix_nano AS end_ns, span.status.code AS status, "
    "rs.resource.attributes.key AS resource_keys, rs.resource.attributes.value.string_value AS resource_strings, "
    "span.attributes.key AS keys, span.attributes.value.value AS kinds, "
    "span.attributes.value.string_value AS strings, span.attributes.value.int_value AS ints, "
    "span.attributes.value.double_value AS doubles, span.attributes.value.bool_value AS bools"
)


def length_delimited(payloads: list[bytes]) -> bytes:
    """The requests as the ``Protobuf`` input format reads them: each after its varint length."""
    return b"".join(_VarintBytes(len(payload)) + payload for payload in payloads)


@contextlib.contextmanager
def _memfd(data: bytes) -> Iterator[str]:
    fd = os.memfd_create("featurecost-bench-otlp", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


class ProtobufInput:
    """An embedded chDB session that decodes OTLP trace requests to one row per span."""

    def __init__(self) -> None:
        import chdb.session

        self._dir = tempfile.TemporaryDirectory(prefix="featurecost-otlp-proto-")
        self._schema = write_schema(Path(self._dir.name))
        self._session = chdb.session.Session(str(Path(self._dir.name) / "engine"))

    def spans(self, payloads: list[bytes]) -> Any:
        """The spans of ``payloads`` as a pyarrow table (one row per span), decoded by the engine."""
        structure = STRUCTURE.replace("'", "\\'")
        with _memfd(length_delimited(payloads)) as path:
            sql = (
                f"SELECT {_SPAN_COLUMNS} FROM file('{path}', 'Protobuf', '{structure}') "
                "ARRAY JOIN resource_spans AS rs ARRAY JOIN rs.scope_spans AS ss ARRAY JOIN ss.spans AS span "
                f"SETTINGS format_schema = '{self._schema}', input_format_protobuf_oneof_presence = 1, max_threads = 1"
            )
            return self._session.query(sql, "ArrowTable")

    def close(self) -> None:
        self._session.close()
        self._dir.cleanup()
