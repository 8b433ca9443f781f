"""UpdateProfile with a field mask, and its validation."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from foothills.auth.v1 import auth_pb2, user_pb2
from tests.conftest import Running
from tests.support import violations


def _update(user: user_pb2.User, *paths: str) -> auth_pb2.UpdateProfileRequest:
    return auth_pb2.UpdateProfileRequest(user=user, update_mask=field_mask_pb2.FieldMask(paths=list(paths)))


async def test_update_profile_changes_only_the_masked_fields(running: Running) -> None:
    caller = await running.signed_in("prof@example.com")
    before = (await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)).user
    running.clock.advance(timedelta(minutes=5))
    changed = (await running.auth.UpdateProfile(_update(
        user_pb2.User(display_name="New Name", phone="+442071838750", time_zone="Europe/London",
                      email="evil@example.com", role=user_pb2.ROLE_ADMIN),
        "phone", "time_zone"), metadata=caller.metadata)).user
    assert changed.phone == "+442071838750"
    assert changed.time_zone == "Europe/London"
    assert changed.display_name == before.display_name  # not in the mask
    assert changed.email == "prof@example.com"
    assert changed.role == user_pb2.ROLE_CUSTOMER
    assert changed.update_time.ToDatetime() > before.update_time.ToDatetime()
    again = (await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)).user
    assert again == changed
    cleared = (await running.auth.UpdateProfile(_update(user_pb2.User(display_name="Renamed"), "display_name",
                                                        "phone"), metadata=caller.metadata)).user
    assert (cleared.display_name, cleared.phone) == ("Renamed", "")


async def test_locale_and_notification_preferences_are_set_in_the_profile(running: Running) -> None:
    caller = await running.signed_in("prefs@example.com")
    fresh = (await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)).user
    assert (fresh.locale, fresh.reminders_enabled, fresh.notices_enabled) == ("en", True, True)
    changed = (await running.auth.UpdateProfile(_update(
        user_pb2.User(locale="de-CH", reminders_enabled=False, notices_enabled=False),
        "locale", "reminders_enabled", "notices_enabled"), metadata=caller.metadata)).user
    assert (changed.locale, changed.reminders_enabled, changed.notices_enabled) == ("de-CH", False, False)
    back = (await running.auth.UpdateProfile(_update(user_pb2.User(locale="", reminders_enabled=True),
                                                     "locale", "reminders_enabled"), metadata=caller.metadata)).user
    assert (back.locale, back.reminders_enabled, back.notices_enabled) == ("en", True, False)


@pytest.mark.parametrize(
    ("user", "paths", "expected"),
    [
        pytest.param(user_pb2.User(), [], {"update_mask"}, id="empty-mask"),
        pytest.param(user_pb2.User(), ["email"], {"update_mask"}, id="email-not-editable"),
        pytest.param(user_pb2.User(), ["role"], {"update_mask"}, id="role-not-editable"),
        pytest.param(user_pb2.User(), ["nonsense"], {"update_mask"}, id="unknown-path"),
        pytest.param(user_pb2.User(display_name=""), ["display_name"], {"user.display_name"}, id="empty-name"),
        pytest.param(user_pb2.User(display_name="x" * 101), ["display_name"], {"user.display_name"}, id="long-name"),
        pytest.param(user_pb2.User(display_name="a\x00b"), ["display_name"], {"user.display_name"}, id="control"),
        pytest.param(user_pb2.User(phone="0207 183 8750"), ["phone"], {"user.phone"}, id="not-e164"),
        pytest.param(user_pb2.User(time_zone="Mars/Olympus"), ["time_zone"], {"user.time_zone"}, id="bad-zone"),
        pytest.param(user_pb2.User(locale="xx-Klingon"), ["locale"], {"user.locale"}, id="unknown-locale"),
        pytest.param(user_pb2.User(locale="en_GB;rm -rf"), ["locale"], {"user.locale"}, id="not-bcp47"),
        pytest.param(user_pb2.User(locale="en-" + "a" * 40), ["locale"], {"user.locale"}, id="long-locale"),
        pytest.param(user_pb2.User(phone="12", time_zone="Nowhere", locale="zz"), ["phone", "time_zone", "locale"],
                     {"user.phone", "user.time_zone", "user.locale"}, id="all-bad-fields-at-once"),
    ],
)
async def test_update_profile_rejects_bad_input(running: Running, user: user_pb2.User, paths: list[str],
                                                expected: set[str]) -> None:
    caller = await running.signed_in("bad@example.com")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.UpdateProfile(_update(user, *paths), metadata=caller.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == expected
    unchanged = (await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)).user
    assert (unchanged.display_name, unchanged.phone, unchanged.time_zone) == ("Test User", "", "")


async def test_update_profile_needs_a_token(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.UpdateProfile(_update(user_pb2.User(phone="+442071838750"), "phone"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
