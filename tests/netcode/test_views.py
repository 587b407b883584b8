"""Views: a role never receives what is above it, HIDDEN differs from unchanged, reveals arrive."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.codec import checksum
from netcode.mirror import Mirror
from netcode.publisher import Publisher
from netcode.state import HIDDEN, CaseState
from netcode.views import ALL_VIEWS, VIEW_OF_ROLE, Role, View
from tests.netcode.room_helpers import make_room, replies_of
from tests.netcode.sync_helpers import SLOW_OK, assert_mirror_matches, decode, strings_in

SENTINEL = {View.PARTICIPANT: "SENTINEL-team-only", View.FACILITATOR: "SENTINEL-answer-key"}


def leaks(frame: dict[str, Any], view: View) -> list[str]:
    """Sentinels in `frame` that `view` may not see."""
    return [
        s
        for s in strings_in(frame)
        for level, word in SENTINEL.items()
        if level > view and word in s
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_OK)
@given(st.data())
def test_frames_never_carry_values_above_the_view(data: st.DataObject) -> None:
    world = CaseState()
    publisher = Publisher(world, checksum_every=2, history_ticks=3, op_ring=6)
    bases: dict[View, list[int | None]] = {view: [None] for view in ALL_VIEWS}
    hidden_fields: list[tuple[int, str, View]] = []
    for tick in range(data.draw(st.integers(2, 12))):
        for _ in range(data.draw(st.integers(0, 4))):
            level = data.draw(st.sampled_from(ALL_VIEWS))
            secret = f"{SENTINEL.get(level, 'public')}-{tick}"
            action = data.draw(st.sampled_from(["create", "set", "log", "set_hidden"]))
            eids = list(world.entity_ids())
            if action == "create" or not eids:
                eid = world.create(
                    "thing",
                    {"public": tick, "f": {"nested": [secret]}, "g": secret},
                    {"public": View.SPECTATOR, "f": level, "g": level},
                )
                hidden_fields += [(eid, "f", level), (eid, "g", level)]
            elif action == "set":
                world.set(data.draw(st.sampled_from(eids)), "public", f"open-{tick}")
            elif action == "set_hidden" and hidden_fields:
                eid, name, held = data.draw(st.sampled_from(hidden_fields))
                if world.exists(eid):  # keeps its visibility: never a reveal
                    world.set(eid, name, f"{SENTINEL.get(held, 'public')}-{tick}-new")
            else:
                world.log(
                    data.draw(st.sampled_from(["chat", "questions"])), {"text": secret}, level
                )
        publisher.publish(tick, world.drain(), {})
        for view in ALL_VIEWS:
            bases[view].append(tick)
            for base in bases[view]:
                for resume_op in (None, 0, publisher.op_head_at(base) if base else None):
                    frame = decode(publisher.frame(view, base, resume_op))
                    assert leaks(frame, view) == []
        for view in ALL_VIEWS:
            state = publisher.view_state(view)
            assert [
                s
                for level, word in SENTINEL.items()
                if level > view
                for s in strings_in(state)
                if word in s
            ] == []


def sync(publisher: Publisher, mirror: Mirror, view: View) -> dict[str, Any]:
    frame = decode(publisher.frame(view, mirror.tick))
    mirror.apply(frame)
    assert_mirror_matches(mirror, publisher, view)
    return frame


def test_hidden_field_reads_hidden_and_an_unchanged_field_gets_no_op() -> None:
    world = CaseState()
    publisher = Publisher(world, checksum_every=1)
    eid = world.create(
        "result",
        {"name": "lactate", "value": 4.1, "note": "x"},
        {"name": View.SPECTATOR, "value": View.FACILITATOR, "note": View.PARTICIPANT},
    )
    publisher.publish(0, world.drain(), {})
    mirrors = {view: Mirror() for view in ALL_VIEWS}
    for view, mirror in mirrors.items():
        sync(publisher, mirror, view)
    assert mirrors[View.SPECTATOR].entities[eid][1] == {
        "name": "lactate",
        "value": HIDDEN,
        "note": HIDDEN,
    }
    assert mirrors[View.PARTICIPANT].entities[eid][1] == {
        "name": "lactate",
        "value": HIDDEN,
        "note": "x",
    }
    assert mirrors[View.FACILITATOR].entities[eid][1]["value"] == 4.1

    world.set(eid, "value", 5.2)  # a hidden field changes: only the facilitator hears
    publisher.publish(1, world.drain(), {})
    frames = {view: sync(publisher, mirror, view) for view, mirror in mirrors.items()}
    assert "ops" not in frames[View.SPECTATOR]
    assert "ops" not in frames[View.PARTICIPANT]
    assert frames[View.FACILITATOR]["ops"] == [["set", eid, "value", 5.2]]
    assert frames[View.SPECTATOR]["o"] == frames[View.FACILITATOR]["o"] == publisher.op_head


def test_a_reveal_delivers_the_value_and_a_re_hide_delivers_hidden() -> None:
    world = CaseState()
    publisher = Publisher(world, checksum_every=1)
    eid = world.create("result", {"value": 4.1}, View.FACILITATOR)
    publisher.publish(0, world.drain(), {})
    mirrors = {view: Mirror() for view in ALL_VIEWS}
    for view, mirror in mirrors.items():
        sync(publisher, mirror, view)
    world.set(eid, "value", 4.1, View.SPECTATOR)  # same value, lower visibility
    publisher.publish(1, world.drain(), {})
    frames = {view: sync(publisher, mirror, view) for view, mirror in mirrors.items()}
    assert frames[View.SPECTATOR]["ops"] == [["set", eid, "value", 4.1]]
    assert frames[View.PARTICIPANT]["ops"] == [["set", eid, "value", 4.1]]
    assert "ops" not in frames[View.FACILITATOR]  # it already held the value
    for mirror in mirrors.values():
        assert mirror.field(eid, "value") == 4.1

    world.set(eid, "value", 4.1, View.PARTICIPANT)
    publisher.publish(2, world.drain(), {})
    frames = {view: sync(publisher, mirror, view) for view, mirror in mirrors.items()}
    assert frames[View.SPECTATOR]["ops"] == [["set", eid, "value", HIDDEN]]
    assert "ops" not in frames[View.PARTICIPANT]
    assert mirrors[View.SPECTATOR].field(eid, "value") is HIDDEN


def test_hidden_log_entries_are_not_sent_but_the_op_head_moves() -> None:
    world = CaseState()
    publisher = Publisher(world, checksum_every=1)
    publisher.publish(0, world.drain(), {})
    mirrors = {view: Mirror() for view in ALL_VIEWS}
    for view, mirror in mirrors.items():
        sync(publisher, mirror, view)
    world.log("questions", {"text": "is it sepsis?"}, View.FACILITATOR)
    world.log("chat", {"text": "hello"})
    publisher.publish(1, world.drain(), {})
    for view, mirror in mirrors.items():
        sync(publisher, mirror, view)
    assert mirrors[View.SPECTATOR].logs == {"chat": [{"text": "hello"}]}
    assert mirrors[View.FACILITATOR].logs["questions"] == [{"text": "is it sepsis?"}]
    assert {m.op for m in mirrors.values()} == {2}


@pytest.mark.parametrize(("old", "new"), [(1, True), (0, False), ([1], [True])])
def test_int_to_bool_with_visibility_change_reaches_mirrors(old: Any, new: Any) -> None:
    """1 -> True is a change clients must see (== once hid it; fixed in f42d980)."""
    world = CaseState()
    publisher = Publisher(world, checksum_every=1)
    eid = world.create("avatar", {"connected": old})
    publisher.publish(0, world.drain(), {})
    mirror = Mirror()
    mirror.apply(decode(publisher.frame(View.FACILITATOR, None)))
    world.set(eid, "connected", new, View.PARTICIPANT)
    publisher.publish(1, world.drain(), {})
    mirror.apply(decode(publisher.frame(View.FACILITATOR, 0)))  # no Desync
    assert checksum(mirror.view_state()) == checksum(publisher.view_state(View.FACILITATOR))


def test_room_frames_keep_the_answer_key_questions_and_team_note_to_their_roles() -> None:
    room = make_room()
    ids = {role: room.join(role, role.value).id for role in Role}
    room.tick()
    room.submit(ids[Role.PARTICIPANT], 1, "note", {"text": "SENTINEL-team-only note"})
    room.submit(ids[Role.SPECTATOR], 2, "ask", {"text": "SENTINEL-answer-key question"})
    room.submit(ids[Role.PARTICIPANT], 3, "chat", {"text": "public chat"})
    replies = replies_of(room.tick())
    assert len(replies) == 3 and all(reply.ok for reply in replies.values())
    seen: dict[View, list[str]] = {view: [] for view in ALL_VIEWS}
    for view in ALL_VIEWS:
        for base in (None, room.tick_no - 1):
            seen[view] += strings_in(decode(room.publisher.frame(view, base)))
    spectator, participant, facilitator = (
        seen[VIEW_OF_ROLE[r]] for r in (Role.SPECTATOR, Role.PARTICIPANT, Role.FACILITATOR)
    )
    for words in (spectator, participant):
        assert not any("Community-acquired pneumonia" in s for s in words)
        assert not any("SENTINEL-answer-key" in s for s in words)
    assert not any("SENTINEL-team-only" in s for s in spectator)
    assert "SENTINEL-team-only note" in participant
    assert "public chat" in spectator
    assert "Community-acquired pneumonia" in facilitator
    assert "SENTINEL-answer-key question" in facilitator
