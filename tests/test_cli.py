"""The command line: every sub-command has --help, errors exit 2 with a message."""

import subprocess
import sys

import pytest

from isslide_cube.cli import build_parser, main

COMMANDS = ["synth", "validate", "build", "patches", "train", "evaluate", "predict", "paper", "demo"]


def test_every_command_is_registered():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_console_script_runs_without_heavy_imports():
    code = ("import sys; from isslide_cube.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'distributed', 'matplotlib') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_validate_reports_problems_and_exits_1(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing")]) == 1
    assert "folder does not exist" in capsys.readouterr().out
