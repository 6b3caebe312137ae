"""``qcbot calendar show YEAR``: a year's working days and where each special day comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from qcbot.cli import main


def _config(tmp_path: Path, files: list[Path] | None = None) -> Path:
    config = tmp_path / "config.toml"
    listed = ", ".join(f'"{f}"' for f in files or [])
    config.write_text(f"[calendar]\nfiles = [{listed}]\n", encoding="utf-8")
    return config


def test_show_2027_without_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(_config(tmp_path)), "calendar", "show", "2027"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "2027年工作日日历 · 来源：holidays 包（无调休）"
    assert "2027年的法定节假日和调休安排尚未收录" in out and "data/calendar/2027.toml" in out
    assert "2027年2月" in lines and "一   二   三   四   五   六   日" in lines
    assert " 8休  9休 10休 11   12   13   14" in lines  # 春节 weekdays off, no 调休
    assert "  1月1日（周五） 休 元旦 · 来源：holidays 包（无调休）" in lines
    assert "  2月9日（周二） 休 春节（补假） · 来源：holidays 包（无调休）" in lines
    assert "班" not in out.split("图例")[1].split("\n", 1)[1]  # no weekend worked
    assert sum(1 for line in lines if line.startswith("工作日 ")) == 12
    assert lines[-1].startswith("2027年共 ") and lines[-1].endswith(" 个工作日。")


def test_show_2027_with_an_operator_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "calendar-2027.toml"
    f.write_text('year = 2027\nnotice = "国务院办公厅关于2027年部分节假日安排的通知"\n'
                 'holidays = ["2027-01-01", "2027-02-05", "2027-02-08"]\nworkdays = ["2027-02-07"]\n',
                 encoding="utf-8")
    assert main(["-c", str(_config(tmp_path, [f])), "calendar", "show", "2027"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"2027年工作日日历 · 来源：运营方文件 {f}"
    assert lines[1] == "依据：国务院办公厅关于2027年部分节假日安排的通知"
    assert " 1    2    3    4    5休  6    7班" in lines
    assert f"  2月7日（周日） 班 调休上班 · 来源：运营方文件 {f}" in lines
    assert not any("尚未收录" in line for line in lines)


def test_show_2026_names_chinesecalendar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(_config(tmp_path)), "calendar", "show", "2026"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2026年工作日日历 · 来源：chinesecalendar")
    assert any(line.startswith("  2月14日（周六） 班 调休上班 · 来源：chinesecalendar") for line in lines)
    assert any(line.startswith("  2月17日（周二） 休 春节 · 来源：chinesecalendar") for line in lines)


def test_a_bad_file_stops_the_command_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('year = 2027\nnotice = "x"\nholidays = ["2027-01-01"]\nworkdays = ["2027-02-09"]\n',
                 encoding="utf-8")
    assert main(["-c", str(_config(tmp_path, [f])), "calendar", "show", "2027"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"工作日日历文件 {f}：workdays：2027-02-09 是周二：调休上班日必须是周六或周日（周一至周五本来就上班）"]
