"""The case state of a room: entities with typed fields, per-field visibility, and logs.

Every change goes through `CaseState` and becomes a numbered op. Each op is projected
onto the three views when it is made (a field a view may not see reads as `HIDDEN`
there), so the publisher only encodes, and a client can tell a hidden field (present,
value `HIDDEN`) from an unchanged one (no op at all).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from netcode.views import ALL_VIEWS, View, sees

LOG_TAIL: Final = 50
"""Entries of each log channel kept in the live state (the replay keeps them all)."""


class _Hidden:
    """The value a view sees in place of a field it may not see."""

    _instance: _Hidden | None = None

    def __new__(cls) -> _Hidden:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "HIDDEN"

    def __reduce__(self) -> str:
        return "HIDDEN"


HIDDEN: Final = _Hidden()
_ABSENT: Final = object()

CanonicalOp = tuple[Any, ...]
"""("new", eid, kind, {field: [value, vis]}) | ("set", eid, field, value, vis)
| ("del", eid) | ("log", channel, entry, vis)"""

ViewOp = list[Any]


class StateError(ValueError):
    """A scenario or room asked for a change the state cannot hold."""


@dataclass(slots=True, frozen=True)
class Op:
    """One numbered change, as recorded and as each view receives it (None: not sent)."""

    seq: int
    canonical: CanonicalOp
    per_view: tuple[ViewOp | None, ViewOp | None, ViewOp | None]


@dataclass(slots=True)
class _Entity:
    kind: str
    values: dict[str, Any]
    vis: dict[str, View]
    default_vis: View = View.SPECTATOR
    """Visibility of a field first set later without one: the entity's most private level."""


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down: 1 -> True is a change clients must see."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return bool(a == b)


def _seen(value: Any, vis: View, view: View) -> Any:
    return value if sees(view, vis) else HIDDEN


class CaseState:
    """The world a room's scenario writes to; the single source of every case op."""

    def __init__(self, first_op_seq: int = 0) -> None:
        self._entities: dict[int, _Entity] = {}
        self._next_eid = 1
        self._op_seq = first_op_seq
        self._pending: list[Op] = []
        self._logs: tuple[dict[str, deque[Any]], ...] = tuple({} for _ in ALL_VIEWS)
        """Per view, per channel: the last LOG_TAIL entries that view may see."""

    # -- reading -------------------------------------------------------------
    @property
    def op_seq(self) -> int:
        """Sequence number of the last op made."""
        return self._op_seq

    def get(self, eid: int, field: str, default: Any = None) -> Any:
        entity = self._entities.get(eid)
        if entity is None:
            raise StateError(f"entity {eid} does not exist")
        return entity.values.get(field, default)

    def kind(self, eid: int) -> str:
        entity = self._entities.get(eid)
        if entity is None:
            raise StateError(f"entity {eid} does not exist")
        return entity.kind

    def exists(self, eid: int) -> bool:
        return eid in self._entities

    def find(self, kind: str) -> list[int]:
        """Ids of every entity of `kind`, in creation order."""
        return [eid for eid, e in self._entities.items() if e.kind == kind]

    def fields(self, eid: int) -> dict[str, Any]:
        return dict(self._entities[eid].values)

    def log_tail(self, channel: str, view: View = View.FACILITATOR) -> list[Any]:
        return list(self._logs[view].get(channel, ()))

    # -- writing -------------------------------------------------------------
    def create(
        self,
        kind: str,
        fields: Mapping[str, Any] | None = None,
        vis: Mapping[str, View] | View = View.SPECTATOR,
    ) -> int:
        """Create an entity; `vis` is one visibility for all fields or one per field."""
        eid = self._next_eid
        self._next_eid += 1
        values = dict(fields or {})
        field_vis = {
            name: (vis.get(name, View.SPECTATOR) if isinstance(vis, Mapping) else vis)
            for name in values
        }
        if isinstance(vis, Mapping):
            default_vis = max(vis.values(), default=View.SPECTATOR)
        else:
            default_vis = View(vis)
        self._entities[eid] = _Entity(kind, values, field_vis, View(default_vis))
        canonical = ("new", eid, kind, {k: [v, int(field_vis[k])] for k, v in values.items()})
        per_view = tuple(
            ["new", eid, kind, {k: _seen(v, field_vis[k], view) for k, v in values.items()}]
            for view in ALL_VIEWS
        )
        self._emit(canonical, per_view)
        return eid

    def set(self, eid: int, field: str, value: Any, vis: View | None = None) -> None:
        """Set a field; `vis=None` keeps its visibility (a new field takes the entity's default:
        the most private level it was created with, so nothing leaks by omission).

        Values are kept by reference and must not be changed after they are set: build a
        new value and set it again, so the change becomes an op.
        """
        entity = self._entities.get(eid)
        if entity is None:
            raise StateError(f"entity {eid} does not exist")
        old_value = entity.values.get(field, _ABSENT)
        old_vis = entity.vis.get(field, entity.default_vis)
        new_vis = old_vis if vis is None else View(vis)
        if old_value is not _ABSENT and _same(old_value, value) and old_vis == new_vis:
            return
        entity.values[field] = value
        entity.vis[field] = new_vis
        per_view: list[ViewOp | None] = []
        for view in ALL_VIEWS:
            after = _seen(value, new_vis, view)
            before = _ABSENT if old_value is _ABSENT else _seen(old_value, old_vis, view)
            changed = before is _ABSENT or not _same(before, after)
            per_view.append(["set", eid, field, after] if changed else None)
        self._emit(("set", eid, field, value, int(new_vis)), tuple(per_view))

    def update(self, eid: int, values: Mapping[str, Any]) -> None:
        for field, value in values.items():
            self.set(eid, field, value)

    def delete(self, eid: int) -> None:
        if self._entities.pop(eid, None) is None:
            raise StateError(f"entity {eid} does not exist")
        self._emit(("del", eid), (["del", eid], ["del", eid], ["del", eid]))

    def log(self, channel: str, entry: Any, vis: View = View.SPECTATOR) -> None:
        """Append to a log channel (chat, events, questions); the live state keeps a tail."""
        for view in ALL_VIEWS:
            if sees(view, vis):
                self._logs[view].setdefault(channel, deque(maxlen=LOG_TAIL)).append(entry)
        per_view = tuple(["log", channel, entry] if sees(view, vis) else None for view in ALL_VIEWS)
        self._emit(("log", channel, entry, int(vis)), per_view)

    def _emit(self, canonical: CanonicalOp, per_view: tuple[ViewOp | None, ...]) -> None:
        self._op_seq += 1
        self._pending.append(Op(self._op_seq, canonical, per_view))  # type: ignore[arg-type]

    def drain(self) -> list[Op]:
        """Ops made since the last drain, oldest first."""
        ops, self._pending = self._pending, []
        return ops

    # -- views and persistence -----------------------------------------------
    def view_state(self, view: View) -> dict[str, Any]:
        """The state as `view` sees it: {"e": {eid: [kind, fields]}, "l": {channel: entries}}."""
        entities = {
            eid: [e.kind, {k: _seen(v, e.vis[k], view) for k, v in e.values.items()}]
            for eid, e in self._entities.items()
        }
        logs = {channel: list(tail) for channel, tail in self._logs[view].items()}
        return {"e": entities, "l": logs}

    def export(self) -> dict[str, Any]:
        """Everything needed to rebuild this state exactly (replay keyframes)."""
        return {
            "next_eid": self._next_eid,
            "op_seq": self._op_seq,
            "entities": [
                [
                    eid,
                    e.kind,
                    {k: [v, int(e.vis[k])] for k, v in e.values.items()},
                    int(e.default_vis),
                ]
                for eid, e in self._entities.items()
            ],
            "logs": [{ch: list(tail) for ch, tail in logs.items()} for logs in self._logs],
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> CaseState:
        state = cls(first_op_seq=int(data["op_seq"]))
        state._next_eid = int(data["next_eid"])
        for eid, kind, fields, default_vis in data["entities"]:
            state._entities[int(eid)] = _Entity(
                kind,
                {k: v for k, (v, _) in fields.items()},
                {k: View(vis) for k, (_, vis) in fields.items()},
                View(default_vis),
            )
        for view, logs in zip(ALL_VIEWS, data["logs"], strict=True):
            for channel, entries in logs.items():
                state._logs[view][channel] = deque(entries, maxlen=LOG_TAIL)
        return state

    def entity_ids(self) -> Iterable[int]:
        return self._entities.keys()
