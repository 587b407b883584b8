"""`grandrounds case validate` and `case ls` as an educator uses them."""

from __future__ import annotations

import argparse
import json
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


def test_run_plays_a_calibration_and_prints_trajectory_score_and_promises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "trauma_haemorrhage", "--team", "good", "--show", "sbp,blood_loss"]) == 0
    out = capsys.readouterr().out
    assert "simulated minutes per second" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("time"))
    assert header.split() == ["time", "sbp", "blood_loss"]
    assert "Score: " in out and "passed" in out
    assert 'Calibration "good"' in out and "BROKEN" not in out
    assert "Outcome: good" in out


def test_run_with_a_team_script_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "team.yaml"
    script.write_text(
        "- {at: 30, do: give, drug: epinephrine, dose: 0.5, route: im}\n"
        "- {at: '1:00', do: oxygen, device: nonrebreather}\n"
        "- {at: 90, do: give, drug: epinephrine, dose: 50, route: im}\n"
    )
    code = main(["run", "anaphylaxis", "--team", str(script), "--until", "5", "--json"])
    assert code == 0
    run = json.loads(capsys.readouterr().out)
    assert run["columns"][:2] == ["t", "map"] and len(run["rows"]) == 6
    assert [(r["do"], r["code"]) for r in run["refusals"]] == [("give", "bad_dose")]
    assert run["debrief"]["time_to_intervention"]["adrenaline_im"] == 30


def test_a_broken_team_script_is_refused_with_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "team.yaml"
    script.write_text("- {at: 30, do: give, drug: epinephrine, dose: lots, route: im}\n"
                      "- {at: 60, do: fly}\n"
                      "- {at: 90, do: inject, event: biphasic}\n")  # fmt: skip
    assert main(["run", "anaphylaxis", "--team", str(script)]) == 1
    err = capsys.readouterr().err
    assert f"{script}:1: team[0].dose: Input should be a valid number" in err
    assert f"{script}:2: team[1].do: unknown action 'fly'" in err
    assert f"{script}:3: team[2].by: inject is for the facilitator" in err


def test_check_runs_every_calibration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "lap_chole_cvs"]) == 0
    out = capsys.readouterr().out
    assert out.count("Calibration ") == 3 and "lap_chole_cvs: 3 of 3 calibrations hold" in out


def test_check_fails_when_a_promise_is_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path("rooms/cases/anaphylaxis.yaml").read_text()
    broken = tmp_path / "anaphylaxis.yaml"
    broken.write_text(
        text.replace(
            'holds: "map < 45", note: "Peri-arrest', 'holds: "map > 45", note: "Peri-arrest'
        )
    )
    assert main(["check", str(broken)]) == 1
    assert "BROKEN  Peri-arrest by 10 minutes" in capsys.readouterr().out


def test_ls_includes_a_folder_of_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = Path("rooms/cases/anaphylaxis.yaml").read_text()
    (tmp_path / "mine.yaml").write_text(text.replace("id: anaphylaxis", "id: my_anaphylaxis"))
    (tmp_path / "broken.yaml").write_text("id: [")
    assert main(["ls", "--cases-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "my_anaphylaxis" in captured.out and "(mine.yaml)" in captured.out
    assert "broken.yaml" in captured.err


def test_serve_takes_a_cases_folder_from_the_flag_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import build_parser
    from server.config import Settings

    args = build_parser().parse_args(["serve", "--cases-dir", str(tmp_path / "mine")])
    assert args.cases_dir == tmp_path / "mine"
    assert Settings(data_dir=tmp_path).cases_folder == tmp_path / "cases"
    monkeypatch.setenv("GRANDROUNDS_CASES_DIR", str(tmp_path / "env"))
    assert Settings(data_dir=tmp_path).cases_folder == tmp_path / "env"
