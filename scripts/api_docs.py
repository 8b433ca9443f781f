"""Renders docs/api.md, the API reference, from the protos' descriptor set with source info
(generated/foothills/descriptors.binpb, written by scripts/generate): every service and RPC with its
documented errors and reasons, every message with its fields, every enum with its values.

    uv run python scripts/api_docs.py           # rewrite docs/api.md
    uv run python scripts/api_docs.py --check   # fail when docs/api.md is stale (the test command does)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTORS = ROOT / "generated" / "foothills" / "descriptors.binpb"
OUT = ROOT / "docs" / "api.md"

# Paths into FileDescriptorProto (descriptor.proto's field numbers), as source info names things.
MESSAGE, ENUM, SERVICE = 4, 5, 6
FIELD, NESTED, NESTED_ENUM, VALUE, METHOD = 2, 3, 4, 2, 2

_SCALARS = {getattr(descriptor_pb2.FieldDescriptorProto, name): name.removeprefix("TYPE_").lower()
            for name in descriptor_pb2.FieldDescriptorProto.Type.keys()}  # noqa: SIM118 (an enum wrapper, not a dict)

Comments = dict[tuple[int, ...], str]


def _comments(file: descriptor_pb2.FileDescriptorProto) -> Comments:
    return {tuple(location.path): location.leading_comments.strip() for location in file.source_code_info.location
            if location.leading_comments.strip()}


def _prose(text: str) -> str:
    """A comment as markdown paragraphs: its lines joined, blank lines kept as paragraph breaks."""
    return "\n\n".join(" ".join(line.strip() for line in paragraph.splitlines())
                       for paragraph in text.split("\n\n") if paragraph.strip())


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(full_name: str) -> str:
    return full_name.lower().replace(".", "")


def _type(field: descriptor_pb2.FieldDescriptorProto, maps: dict[str, descriptor_pb2.DescriptorProto]) -> str:
    if field.type_name:
        name = field.type_name.lstrip(".")
        if name in maps:
            key, value = maps[name].field
            return f"map<{_type(key, maps)}, {_type(value, maps)}>"
        shown = f"[`{name}`](#{_anchor(name)})" if name.startswith("foothills.") else f"`{name}`"
    else:
        shown = f"`{_SCALARS[field.type]}`"
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {shown}"
    return f"optional {shown}" if field.proto3_optional else shown


def _message(out: list[str], message: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...],
             comments: Comments, maps: dict[str, descriptor_pb2.DescriptorProto]) -> None:
    if message.options.map_entry:
        return
    full_name = f"{scope}.{message.name}"
    out.append(f"### `{full_name}`\n")
    if text := comments.get(path):
        out.append(f"{_prose(text)}\n")
    if message.field:
        out.append("| Field | Type | Description |\n|---|---|---|")
        for i, field in enumerate(message.field):
            out.append(f"| `{field.name}` | {_type(field, maps)} | {_cell(comments.get((*path, FIELD, i), ''))} |")
        out.append("")
    for i, enum in enumerate(message.enum_type):
        _enum(out, enum, full_name, (*path, NESTED_ENUM, i), comments)
    for i, nested in enumerate(message.nested_type):
        _message(out, nested, full_name, (*path, NESTED, i), comments, maps)


def _enum(out: list[str], enum: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple[int, ...],
          comments: Comments) -> None:
    out.append(f"### `{scope}.{enum.name}`\n")
    if text := comments.get(path):
        out.append(f"{_prose(text)}\n")
    out.append("| Value | Number | Description |\n|---|---|---|")
    for i, value in enumerate(enum.value):
        out.append(f"| `{value.name}` | {value.number} | {_cell(comments.get((*path, VALUE, i), ''))} |")
    out.append("")


def _maps(files: list[descriptor_pb2.FileDescriptorProto]) -> dict[str, descriptor_pb2.DescriptorProto]:
    found: dict[str, descriptor_pb2.DescriptorProto] = {}

    def visit(message: descriptor_pb2.DescriptorProto, scope: str) -> None:
        name = f"{scope}.{message.name}"
        if message.options.map_entry:
            found[name] = message
        for nested in message.nested_type:
            visit(nested, name)

    for file in files:
        for message in file.message_type:
            visit(message, file.package)
    return found


def render() -> str:
    files = [f for f in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes()).file
             if f.package.startswith("foothills.")]
    files.sort(key=lambda f: (not f.service, f.name))  # the services first, then the shared types
    maps = _maps(files)
    out = ["# Foothills API reference\n",
           "Rendered from the protos by `scripts/api_docs.py` (do not edit; the test command fails when it is "
           "stale). Every RPC lists the errors it answers with their `ErrorInfo.reason`; the error model itself "
           "is in the README.\n",
           "## Services\n"]
    for file in files:
        for service in file.service:
            name = f"{file.package}.{service.name}"
            out.append(f"- [`{name}`](#{_anchor(name)}): {len(service.method)} RPCs (`{file.name}`)")
    out.append("")
    for file in files:
        comments = _comments(file)
        out.append(f"## `{file.name}`\n")
        for s, service in enumerate(file.service):
            out.append(f"### `{file.package}.{service.name}`\n")
            if text := comments.get((SERVICE, s)):
                out.append(f"{_prose(text)}\n")
            for m, method in enumerate(service.method):
                streaming = "stream " if method.server_streaming else ""
                request, response = method.input_type.lstrip("."), method.output_type.lstrip(".")
                out.append(f"#### `{method.name}`\n")
                out.append(f"[`{request.rsplit('.', 1)[1]}`](#{_anchor(request)}) → {streaming}"
                           f"[`{response.rsplit('.', 1)[1]}`](#{_anchor(response)})\n")
                if text := comments.get((SERVICE, s, METHOD, m)):
                    out.append(f"{_prose(text)}\n")
        for i, message in enumerate(file.message_type):
            _message(out, message, file.package, (MESSAGE, i), comments, maps)
        for i, enum in enumerate(file.enum_type):
            _enum(out, enum, file.package, (ENUM, i), comments)
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when docs/api.md differs from the protos")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print("docs/api.md is stale: run `uv run python scripts/api_docs.py` and commit it", file=sys.stderr)
            return 1
        print("docs/api.md matches the protos")
        return 0
    OUT.write_text(text)
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
