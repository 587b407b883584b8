"""`grandrounds case validate` and `case ls` as an educator uses them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from server.case_cli import main, register


def test_validate_accepts_a_shipped_case(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("rooms/cases/anaphylaxis.yaml")
    assert main(["validate", str(path)]) == 0
    assert "ok (anaphylaxis" in capsys.readouterr().out


def test_validate_reports_problems_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path("rooms/cases/anaphylaxis.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("weight_kg: 80", "weight_kg: heavy"))
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "patient.weight_kg" in err and "1 problem;" in err


def test_ls_lists_every_shipped_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for case_id in ("septic_shock_ed", "anaphylaxis", "paediatric_asthma", "lap_chole_cvs"):
        assert case_id in out


def test_register_plugs_into_a_parent_parser() -> None:
    parser = argparse.ArgumentParser(prog="grandrounds")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["case", "validate", "x.yaml"])
    assert args.file == "x.yaml" and callable(args.func)


def test_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.case_cli", "validate", "no/such/file.yaml"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "cannot read file" in done.stderr
