"""The descriptor pool reflection answers from: our files with their comments, the rest as they are."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2

from foothills.booking.v1 import booking_pb2
from foothills_rpc.services.reflection import DocumentedPool, documented_files


def _copy(pool: DocumentedPool, name: str) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    pool.FindFileByName(name).CopyToProto(proto)
    return proto


def test_our_files_come_with_their_comments_and_others_as_the_stubs_built_them() -> None:
    pool = DocumentedPool()
    booking = _copy(pool, booking_pb2.DESCRIPTOR.name)
    comments = [location.leading_comments for location in booking.source_code_info.location]
    assert any("With `hold`, the booking takes the held seats" in comment for comment in comments)
    assert {dependency.name for dependency in pool.FindFileByName(booking.name).dependencies} == set(booking.dependency)
    health = _copy(pool, health_pb2.DESCRIPTOR.name)  # not ours: no source info to add
    assert health.name == health_pb2.DESCRIPTOR.name and not health.source_code_info.location
    # Comments added, nothing else: no json_name, or grpcurl would answer `accessToken` for `access_token`.
    assert not [f.name for m in booking.message_type for f in m.field if f.HasField("json_name")]
    assert set(documented_files()) >= {f"foothills/{area}/v1/{area}.proto" for area in ("auth", "admin", "booking",
                                                                                          "catalog")}


def test_a_method_is_found_in_its_services_file_and_unknown_symbols_are_not_found() -> None:
    pool = DocumentedPool()
    assert pool.FindFileContainingSymbol("foothills.booking.v1.BookingService.CreateBooking").name == (
        booking_pb2.DESCRIPTOR.name)
    for unknown in ("foothills.booking.v1.BookingService.NoSuchRpc", "foothills.booking.v1.NoSuch.Rpc", "Nothing"):
        with pytest.raises(KeyError):
            pool.FindFileContainingSymbol(unknown)
    assert pool.FindMessageTypeByName("foothills.booking.v1.Booking").name == "Booking"  # the rest: the pool's
