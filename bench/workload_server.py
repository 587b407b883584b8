"""`grandrounds serve` with the minimal room holding N shared objects (GR-L: 200).

    python -m bench.workload_server --objects 200 serve --demo --demo-case demo ...

The server has no option for the object count: the `demo` case always makes 20, the
GR-S figure. Until it has one (asked for in issue 14's bench report), this bench-only
entry point builds the `demo` case with `--objects` objects and then runs the ordinary
command line; everything else is the shipped server.
"""

from __future__ import annotations

import argparse
import sys

import server.app
from rooms.demo import DemoScenario
from rooms.scenario import Scenario
from server.cli import main as serve
from server.scenarios import MINIMAL, make_scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, required=True)
    args, rest = parser.parse_known_args()

    def workload_scenario(case: str, seed: int) -> Scenario:
        if case == MINIMAL:
            return DemoScenario(seed, objects=args.objects)
        return make_scenario(case, seed)

    server.app.make_scenario = workload_scenario  # type: ignore[attr-defined]
    return serve(rest)


if __name__ == "__main__":
    sys.exit(main())
