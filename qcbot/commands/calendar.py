"""``qcbot calendar show YEAR``: the working-day calendar of a year, and where each day comes from."""

from __future__ import annotations

import argparse
import calendar as stdlib_calendar

from models import calendar
from models.wording import WEEKDAYS, calendar_gap, month_day
from qcbot.context import AppContext
from qcbot.errors import CommandError

#: A weekday off / a weekend day worked, after the day's number.
OFF, WORKED = "休", "班"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("calendar", help="the working-day calendar (holidays, 调休) and its sources")
    inner = p.add_subparsers(dest="calendar_command", metavar="SUBCOMMAND", required=True)
    show = inner.add_parser("show", help="a year's working days, month by month, and where each holiday comes from")
    show.add_argument("year", type=int, metavar="YEAR")
    show.set_defaults(func=cmd_show)


def _month(year: int, month: int) -> tuple[list[str], list[calendar.DayInfo], int]:
    """The month's grid (lines), its special days and its number of working days."""
    lines = [f"{year}年{month}月", "".join(f"{w[1]}   " for w in WEEKDAYS).rstrip()]
    special: list[calendar.DayInfo] = []
    worked = 0
    for week in stdlib_calendar.Calendar().monthdatescalendar(year, month):
        cells = []
        for d in week:
            if d.month != month:
                cells.append("     ")
                continue
            info = calendar.day_info(d)
            worked += info.working
            mark = "  "
            if info.special:
                special.append(info)
                mark = WORKED if info.working else OFF
            cells.append(f"{d.day:>2}{mark} ")
        lines.append("".join(cells).rstrip())
    return lines, special, worked


def render_year(year: int) -> list[str]:
    """``qcbot calendar show``'s lines for ``year``."""
    src = calendar.year_source(year)
    out = [f"{year}年工作日日历 · 来源：{src.label}"]
    if src.file is not None:
        out.append(f"依据：{src.file.notice}")
    if not src.official:
        out.append(calendar_gap([year]) + "（也可在配置 [calendar] files 中列出服务器上的文件）")
    out.append(f"图例：数字后“{OFF}”= 周一至周五放假，“{WORKED}”= 周六日调休上班；其余周一至周五上班、周六日休息。")
    total = 0
    for month in range(1, 13):
        grid, special, worked = _month(year, month)
        total += worked
        out.append("")
        out.extend(grid)
        out.append(f"工作日 {worked} 天")
        for info in special:
            what = f"{WORKED} 调休上班" if info.working else f"{OFF} {info.name or '放假'}"
            out.append(f"  {month_day(info.day, weekday=True)} {what} · 来源：{info.source.label}")
    out += ["", f"{year}年共 {total} 个工作日。"]
    return out


def cmd_show(args: argparse.Namespace) -> int:
    AppContext.from_args(args)  # reads the configured operator files (and validates them)
    year = args.year
    if not 1950 <= year <= 2200:
        raise CommandError(f"年份 {year} 超出范围（1950–2200）。")
    print("\n".join(render_year(year)))
    return 0
