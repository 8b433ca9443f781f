"""Server reflection that serves the protos with their comments, so `grpcurl describe` shows each
service's, RPC's and field's documentation.

grpcio-reflection answers from a descriptor pool, and the pool's files (built by the generated stubs)
carry no comments; even a file added with its comments loses them in `CopyToProto` under upb. So the
pool handed to the library answers the file lookups with the FileDescriptorProtos that
scripts/generate writes with source info (generated/foothills/descriptors.binpb), finds the file of
a method too, and answers every other question as the default pool does.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor


@cache
def documented_files() -> dict[str, bytes]:
    """File name -> its serialized FileDescriptorProto with comments, for every file the protos use."""
    raw = resources.files("foothills").joinpath("descriptors.binpb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(raw).file
    for file in files:
        _without_json_names(file.message_type)
    return {file.name: file.SerializeToString() for file in files}


def _without_json_names(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    """protoc writes every field's `json_name`; the stubs' descriptors carry none. grpcurl prints and
    reads JSON by the names it is given, so with them its answers would switch from `access_token` to
    `accessToken` under every script written against it: comments are added, nothing else changes."""
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _without_json_names(message.nested_type)


class _DocumentedFile:
    """A file descriptor whose copy keeps its comments (the rest of reflection reads only these three)."""

    def __init__(self, descriptor: FileDescriptor) -> None:
        self._descriptor = descriptor
        self.name = descriptor.name

    @property
    def dependencies(self) -> list[_DocumentedFile]:
        return [_DocumentedFile(dependency) for dependency in self._descriptor.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:  # the descriptor API spells it so
        if documented := documented_files().get(self.name):
            proto.MergeFromString(documented)
        else:
            self._descriptor.CopyToProto(proto)


class DocumentedPool:
    """The default descriptor pool, with files answered with their comments."""

    def __init__(self, pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._pool = pool or descriptor_pool.Default()

    def FindFileByName(self, name: str) -> _DocumentedFile:
        return _DocumentedFile(self._pool.FindFileByName(name))

    def FindFileContainingSymbol(self, symbol: str) -> _DocumentedFile:
        try:
            return _DocumentedFile(self._pool.FindFileContainingSymbol(symbol))
        except KeyError:
            # upb finds services but not their methods, which `grpcurl describe Service.Method` asks for.
            service, _, method = symbol.rpartition(".")
            if not service or self._pool.FindServiceByName(service).methods_by_name.get(method) is None:
                raise
            return _DocumentedFile(self._pool.FindFileContainingSymbol(service))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)
