"""Record the Colyseus anchor's motion frames that tests/bench/test_motion.py compares
against (tests/bench/anchor_motion_frames.json), so the comparison runs everywhere.

    python3 tests/bench/record_anchor_motion.py ../shared/anchors/colyseus/motion.cjs

Needs node and the anchor; run it again when the anchor's motion.cjs changes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FRAMES = Path(__file__).with_name("anchor_motion_frames.json")
SHAPES = [(0, 8, True), (1, 8, True), (5, 8, False), (29, 30, False), (12, 30, False)]
"""(participant index, participants, active): both motions, first and last seats."""
STEPS = 300
"""Frames computed per shape (every one: the jitter is a stream)."""
KEEP_EVERY = 5
"""Frames kept per shape: one in five, which keeps the file small."""


def record(motion_cjs: Path) -> None:
    script = f"""
        const m = require({json.dumps(str(motion_cjs.resolve()))});
        const shapes = {json.dumps(SHAPES)};
        console.log(JSON.stringify(shapes.map(([i, n, a]) => {{
          const g = m.makeParticipant(i, n, a);
          return Array.from({{length: {STEPS}}}, (_, k) => Array.from(g.next(k)));
        }})));
    """
    result = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, check=True, timeout=60
    )
    frames = json.loads(result.stdout)
    kept = {
        "shapes": SHAPES,
        "steps": STEPS,
        "keep_every": KEEP_EVERY,
        "frames": [shape[::KEEP_EVERY] for shape in frames],
    }
    FRAMES.write_text(json.dumps(kept) + "\n")


if __name__ == "__main__":
    record(Path(sys.argv[1]))
