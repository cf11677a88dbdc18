"""Hypothesis strategies for any protobuf message, built from its descriptor.

Half the examples are hostile (NUL, very long strings, extreme integers, NaN and
infinity, out-of-range Timestamp/Duration parts, unknown enum numbers, deep
Structs); the other half use only ordinary values, so requests also get past the
edge into the services' own validation and logic."""

from __future__ import annotations

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor as F
from hypothesis import strategies as st

_INT_RANGES = {
    F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_SINT32: (-2**31, 2**31 - 1), F.TYPE_SFIXED32: (-2**31, 2**31 - 1),
    F.TYPE_INT64: (-2**63, 2**63 - 1), F.TYPE_SINT64: (-2**63, 2**63 - 1), F.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}
ORDINARY = ["", "vp.coder.primary", "vp.general.primary", "code", "task", "m-1", "result.md", "ops", "write a poem",
            "s-0123456789abcdef0123456789abcdef", "w-1"]
HOSTILE = ["../etc/passwd", "/", "a" * 300, "x\x00y", "file:///"]


def _ints(low: int, high: int, hostile: bool):
    if not hostile:
        return st.integers(max(low, 0), min(high, 1000))
    edges = [v for v in (low, high, 0, 1, -1, 2**31 - 1, 2**53) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _strings(hostile: bool):
    if not hostile:
        return st.one_of(st.sampled_from(ORDINARY), st.from_regex(r"[a-z][a-z0-9._-]{0,20}", fullmatch=True))
    return st.one_of(st.sampled_from(ORDINARY + HOSTILE), st.text(max_size=40),
                     st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=5000))


def _scalar(field, hostile: bool):
    kind = field.type
    if kind in _INT_RANGES:
        return _ints(*_INT_RANGES[kind], hostile)
    if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        width = 32 if kind == F.TYPE_FLOAT else 64
        if not hostile:
            return st.floats(0, 1e6, width=width)
        return st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e308]),
                         st.floats(width=width))
    if kind == F.TYPE_BOOL:
        return st.booleans()
    if kind == F.TYPE_STRING:
        return _strings(hostile)
    if kind == F.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), _ints(-2**31, 2**31 - 1, True)) if hostile \
            else st.sampled_from(numbers)
    raise AssertionError(f"unhandled field type {kind}")


def _struct_value(depth: int, hostile: bool):
    leaves = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=hostile, allow_infinity=hostile),
                       _strings(hostile))
    if depth <= 0:
        return leaves
    inner = _struct_value(depth - 1, hostile)
    return st.one_of(leaves, st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3))


def messages(descriptor, depth: int = 4, hostile: bool | None = None):
    """A strategy of instances of the message type described by descriptor (hostile=None: either kind)."""
    if hostile is None:
        return st.one_of(messages(descriptor, depth, True), messages(descriptor, depth, False))
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=8), _struct_value(3, hostile), max_size=4).map(_to_struct)
    if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        if hostile:
            return st.builds(lambda s, n: cls(seconds=s, nanos=n), _ints(-2**63, 2**63 - 1, True),
                             _ints(-2**31, 2**31 - 1, True))
        # In range: now .. a few years on for a Timestamp, 0 .. a day for a Duration.
        low, high = (1_800_000_000, 1_900_000_000) if "Timestamp" in descriptor.full_name else (0, 86_400)
        return st.builds(lambda s, n: cls(seconds=s, nanos=n), st.integers(low, high), st.integers(0, 999_999_999))
    fields = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = _scalar(field.message_type.fields_by_name["key"], hostile)
            value_field = field.message_type.fields_by_name["value"]
            value = (messages(value_field.message_type, depth - 1, hostile) if value_field.message_type is not None
                     else _scalar(value_field, hostile))
            fields[field.name] = st.dictionaries(key, value, max_size=3)
            continue
        if field.message_type is not None:
            if depth <= 0:
                continue
            one = messages(field.message_type, depth - 1, hostile)
        else:
            one = _scalar(field, hostile)
        fields[field.name] = st.lists(one, max_size=3) if field.is_repeated else one
    optional = {name: st.one_of(st.none(), strat) for name, strat in fields.items()}
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: _build(cls, descriptor, values))


def _to_struct(values):
    from google.protobuf.struct_pb2 import Struct

    struct = Struct()
    struct.update(values)
    return struct


def _build(cls, descriptor, values):
    message = cls()
    for name, value in values.items():
        if value is None:
            continue
        field = descriptor.fields_by_name[name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target = getattr(message, name)
            for key, item in value.items():
                if field.message_type.fields_by_name["value"].message_type is not None:
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            getattr(message, name).extend(value)
        elif field.message_type is not None:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message
