"""Working days in mainland China (工作日), for any year.

Three sources, one entry point (:func:`is_working_day`); each year takes its days from
the first of these that has it:

1. **An operator file** (运营方文件): the State Council's arrangement for one year
   (国务院办公厅关于某年部分节假日安排的通知), in TOML: ``data/calendar/<year>.toml`` shipped
   in the repository, or a file named in the configuration (``[calendar] files``), which
   replaces a shipped one of the same year. It overrides both packages::

       year = 2027
       notice = "国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕N号）"
       holidays = ["2027-01-01", …]   # days off (weekend days of a holiday may be listed)
       workdays = ["2027-02-07", …]   # weekend days worked in exchange (调休上班)

   Validated when loaded (:func:`load_file`): every date in that year, no date twice or in
   both lists, a workday is a Saturday or Sunday, 1 January is a holiday. An error is one
   Chinese line naming the file and the key (:class:`CalendarFileError`).
2. **chinesecalendar** (import name ``chinese_calendar``): the official arrangements of
   the years the State Council has announced (1.11.0: 2004–2026, :func:`covered_years`).
3. **The ``holidays`` package** (``holidays.China``) for any other year: the statutory
   holidays (and the days it adds for a holiday on a weekend), but **no 调休**: no
   weekend is ever a working day. A warning is logged once per year and process.

:func:`configure` (called once at start by ``qcbot``'s ``AppContext``) names the operator
files; without it the shipped directory alone is read, at first use. :func:`reset`
forgets them (tests). :func:`year_source` says where a year's days come from,
:func:`day_info` what a day is and why, :func:`years_without_arrangement` which years of
a span lack an official arrangement (neither an operator file nor chinesecalendar).

Conventions (all pure, all ``datetime.date``; a ``datetime`` is reduced to its date):

* :func:`is_working_day` — whether people work that day.
* :func:`add_working_days` ``(d, n)`` — the n-th working day after ``d`` (``n > 0``),
  before ``d`` (``n < 0``), or ``d`` itself (``n == 0``, even on a holiday). ``d``
  itself never counts as one of the n.
* :func:`working_days_between` ``(a, b)`` — the working days in ``(a, b]`` when
  ``b >= a``; minus the working days in ``(b, a]`` when ``b < a`` (antisymmetric).
  A deadline due today is 0 working days away, tomorrow's (a working day) 1, and
  ``working_days_between(deadline, today)`` is how many working days late it is.
  ``working_days_between(d, add_working_days(d, n)) == n`` for every ``n >= 0``,
  and for ``n < 0`` when ``d`` itself is a working day.
* :func:`next_working_day` ``(d)`` — the first working day strictly after ``d``.
* :func:`last_working_day_on_or_before` / :func:`first_working_day_on_or_after`
  ``(d)`` — ``d`` itself when it is a working day, else the nearest one before/after.
"""

from __future__ import annotations

import logging
import os
import threading
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import chinese_calendar
import holidays as holidays_pkg
from chinese_calendar import constants as _cc_constants

from infra.config import ConfigError

log = logging.getLogger(__name__)

_ONE_DAY = timedelta(days=1)
_warned_years: set[int] = set()
_warn_lock = threading.Lock()

#: The operator files shipped with qcbot: ``data/calendar/<year>.toml``.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "calendar"


def _years_with_data() -> range:
    days = list(_cc_constants.holidays) + list(_cc_constants.workdays)
    if not days:  # pragma: no cover - a broken package
        return range(0)
    return range(min(d.year for d in days), max(d.year for d in days) + 1)


_COVERED = _years_with_data()


def covered_years() -> range:
    """The years for which ``chinesecalendar`` knows holidays and adjusted working days."""
    return _COVERED


def _as_date(d: date) -> date:
    return d.date() if isinstance(d, datetime) else d


# ------------------------------------------------------------------ operator files


class CalendarFileError(ConfigError):
    """An operator calendar file cannot be used; one Chinese line naming the file and the key."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = str(path), key, problem
        where = f"{key}：" if key else ""
        super().__init__(f"工作日日历文件 {path}：{where}{problem}")


@dataclass(frozen=True, slots=True)
class OperatorYear:
    """One year's arrangement as an operator file gives it."""

    year: int
    path: Path
    notice: str
    holidays: frozenset[date]
    workdays: frozenset[date]


_FILE_KEYS = ("year", "notice", "holidays", "workdays")


def _dates(path: Path, key: str, value: object, year: int) -> frozenset[date]:
    if not isinstance(value, list):
        raise CalendarFileError(path, key, "应为日期列表，例如 [\"2027-01-01\", \"2027-02-08\"]")
    out: list[date] = []
    for i, raw in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(raw, datetime):
            raise CalendarFileError(path, where, f"{raw} 应为日期（YYYY-MM-DD），不带时刻")
        if isinstance(raw, date):
            d = raw
        elif isinstance(raw, str):
            try:
                d = date.fromisoformat(raw.strip())
            except ValueError:
                raise CalendarFileError(path, where, f"“{raw}”不是 YYYY-MM-DD 格式的日期") from None
        else:
            raise CalendarFileError(path, where, f"{raw!r} 不是日期（应写作 \"{year}-01-01\"）")
        if d.year != year:
            raise CalendarFileError(path, where, f"{d.isoformat()} 不在 year = {year} 这一年")
        if d in out:
            raise CalendarFileError(path, where, f"{d.isoformat()} 重复出现")
        out.append(d)
    return frozenset(out)


def load_file(path: str | os.PathLike[str]) -> OperatorYear:
    """Read and validate one operator file (see the module's docstring for the format)."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalendarFileError(file, "", "文件不存在") from None
    except OSError as exc:
        raise CalendarFileError(file, "", f"无法读取（{exc.strerror or exc}）") from None
    except UnicodeDecodeError:
        raise CalendarFileError(file, "", "不是 UTF-8 编码的文本") from None
    except tomllib.TOMLDecodeError as exc:
        raise CalendarFileError(file, "", f"不是有效的 TOML（{exc}）") from None
    for key in data:
        if key not in _FILE_KEYS:
            raise CalendarFileError(file, key, "未知的键（只允许 year、notice、holidays、workdays）")
    year = data.get("year")
    if isinstance(year, bool) or not isinstance(year, int):
        raise CalendarFileError(file, "year", "缺少年份或不是整数（例如 year = 2027）")
    if not 1950 <= year <= 2200:
        raise CalendarFileError(file, "year", f"年份 {year} 超出范围（1950–2200）")
    if file.stem.isdigit() and len(file.stem) == 4 and int(file.stem) != year:
        raise CalendarFileError(file, "year", f"文件名是 {file.stem} 年，内容却是 {year} 年")
    notice = data.get("notice")
    if not isinstance(notice, str) or not notice.strip():
        raise CalendarFileError(file, "notice", "缺少依据（国务院办公厅通知的标题和文号）")
    if "holidays" not in data:
        raise CalendarFileError(file, "holidays", "缺少放假日期列表")
    days_off = _dates(file, "holidays", data["holidays"], year)
    worked = _dates(file, "workdays", data.get("workdays", []), year)
    if date(year, 1, 1) not in days_off:
        raise CalendarFileError(file, "holidays", f"没有 {year}-01-01（元旦每年都放假：列表不完整？）")
    both = sorted(days_off & worked)
    if both:
        raise CalendarFileError(file, "workdays", f"{both[0].isoformat()} 同时列在 holidays 中")
    for d in sorted(worked):
        if d.weekday() < 5:
            raise CalendarFileError(
                file, "workdays",
                f"{d.isoformat()} 是周{'一二三四五'[d.weekday()]}："
                "调休上班日必须是周六或周日（周一至周五本来就上班）")
    return OperatorYear(year=year, path=file, notice=notice.strip(), holidays=days_off, workdays=worked)


def _load_all(files: Iterable[str | os.PathLike[str]], shipped_dir: Path | None) -> dict[int, OperatorYear]:
    by_year: dict[int, OperatorYear] = {}
    if shipped_dir is not None and shipped_dir.is_dir():
        for path in sorted(shipped_dir.glob("*.toml")):
            oy = load_file(path)
            if oy.year in by_year:
                raise CalendarFileError(path, "year", f"{oy.year} 年已由 {by_year[oy.year].path} 给出")
            by_year[oy.year] = oy
    configured: dict[int, OperatorYear] = {}
    for f in files:
        oy = load_file(f)
        if oy.year in configured:
            raise CalendarFileError(
                oy.path, "year", f"{oy.year} 年已由 {configured[oy.year].path} 给出（calendar.files 每年只能一个文件）")
        configured[oy.year] = oy  # a local file replaces the shipped one of its year
    by_year.update(configured)
    return by_year


_operator: dict[int, OperatorYear] | None = None
_config_lock = threading.Lock()


def configure(
    files: Iterable[str | os.PathLike[str]] = (), *, shipped_dir: Path | None = SHIPPED_DIR
) -> dict[int, OperatorYear]:
    """Read the operator files (the shipped directory's, then ``files``) and use them from now on.

    Validates every file first: on an error (:class:`CalendarFileError`) nothing changes.
    Returns the years they give. Called once at start (``qcbot``'s ``AppContext``).
    """
    global _operator
    loaded = _load_all(files, shipped_dir)
    with _config_lock:
        _operator = loaded
        _clear_caches()
    for oy in loaded.values():
        log.info("working-day calendar %d: operator file %s (%s)", oy.year, oy.path, oy.notice)
    return dict(loaded)


def reset() -> None:
    """Forget the operator files (the shipped directory is read again at next use); for tests."""
    global _operator
    with _config_lock:
        _operator = None
        _clear_caches()
    with _warn_lock:
        _warned_years.clear()


def _clear_caches() -> None:
    _is_working_day.cache_clear()
    _count.cache_clear()
    _year_source.cache_clear()


def operator_years() -> dict[int, OperatorYear]:
    """The operator files in use, by year (reading the shipped directory if not configured)."""
    global _operator
    if _operator is None:
        with _config_lock:
            if _operator is None:
                _operator = _load_all((), SHIPPED_DIR)
    return _operator


# ------------------------------------------------------------------ sources


class SourceKind(StrEnum):
    operator = "operator"
    chinesecalendar = "chinesecalendar"
    holidays = "holidays"


@dataclass(frozen=True, slots=True)
class YearSource:
    """Where a year's working days come from."""

    year: int
    kind: SourceKind
    file: OperatorYear | None = None

    @property
    def official(self) -> bool:
        """Whether the State Council's arrangement (with its 调休) is known for the year."""
        return self.kind != SourceKind.holidays

    @property
    def label(self) -> str:
        """The source as people read it (Chinese)."""
        if self.kind == SourceKind.operator:
            assert self.file is not None
            return f"运营方文件 {self.file.path}"
        if self.kind == SourceKind.chinesecalendar:
            return f"chinesecalendar {getattr(chinese_calendar, '__version__', '')}".rstrip()
        return "holidays 包（无调休）"


@lru_cache(maxsize=512)
def _year_source(year: int) -> YearSource:
    oy = operator_years().get(year)
    if oy is not None:
        return YearSource(year, SourceKind.operator, oy)
    if year in _COVERED:
        return YearSource(year, SourceKind.chinesecalendar)
    return YearSource(year, SourceKind.holidays)


def year_source(year: int) -> YearSource:
    """Where ``year``'s working days come from: operator file, chinesecalendar or holidays."""
    return _year_source(year)


@lru_cache(maxsize=64)
def _statutory(year: int) -> dict[date, str]:
    """The ``holidays`` package's days off in ``year`` (Chinese names)."""
    return dict(holidays_pkg.China(years=year, language="zh_CN").items())


def _warn_fallback(year: int) -> None:
    with _warn_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    log.warning(
        "No official holiday arrangement for %d: chinesecalendar %s covers %d–%d and no operator "
        "calendar file gives %d; using the statutory holidays of the `holidays` package %s for that "
        "year (no adjusted working days). Add data/calendar/%d.toml (or [calendar] files) or upgrade "
        "chinesecalendar once the State Council publishes the year's arrangement.",
        year, getattr(chinese_calendar, "__version__", "?"), _COVERED.start, _COVERED.stop - 1, year,
        getattr(holidays_pkg, "__version__", "?"), year,
    )


@lru_cache(maxsize=8192)
def _is_working_day(d: date) -> bool:
    src = _year_source(d.year)
    if src.kind == SourceKind.operator:
        assert src.file is not None
        if d in src.file.holidays:
            return False
        if d in src.file.workdays:
            return True
        return d.weekday() < 5
    if src.kind == SourceKind.chinesecalendar:
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:  # pragma: no cover - coverage computed above
            pass
    _warn_fallback(d.year)
    return d.weekday() < 5 and d not in _statutory(d.year)


def is_working_day(d: date) -> bool:
    """Whether ``d`` is a working day (holidays off, adjusted weekends on)."""
    return _is_working_day(_as_date(d))


@dataclass(frozen=True, slots=True)
class DayInfo:
    """What a day is and why: for ``qcbot calendar show``."""

    day: date
    working: bool
    #: A weekday off (a holiday) or a weekend day worked (调休): not a plain day.
    special: bool
    name: str
    source: YearSource


def day_info(d: date) -> DayInfo:
    """Whether ``d`` is worked, whether that differs from Monday–Friday, the holiday's name, the source."""
    d = _as_date(d)
    working = is_working_day(d)
    src = year_source(d.year)
    special = working != (d.weekday() < 5)
    name = ""
    if special:
        if working:
            name = "调休上班"
        elif src.kind == SourceKind.chinesecalendar:
            _, english = chinese_calendar.get_holiday_detail(d)
            name = _CC_NAMES.get(english or "", english or "")
        else:
            name = _statutory(d.year).get(d, "")
    return DayInfo(day=d, working=working, special=special, name=name, source=src)


_CC_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


def years_without_arrangement(dates: Iterable[date], today: date) -> tuple[int, ...]:
    """The years from ``today`` to the latest of ``dates`` lacking an official arrangement.

    Official: an operator file or chinesecalendar gives the year; the others count by the
    ``holidays`` package, without 调休. Empty when every date is before ``today``.
    """
    last = max((_as_date(d) for d in dates if d is not None), default=None)
    today = _as_date(today)
    if last is None or last < today:
        return ()
    return tuple(y for y in range(today.year, last.year + 1) if not year_source(y).official)


def next_working_day(d: date) -> date:
    """The first working day strictly after ``d``."""
    day = _as_date(d) + _ONE_DAY
    while not _is_working_day(day):
        day += _ONE_DAY
    return day


def previous_working_day(d: date) -> date:
    """The last working day strictly before ``d``."""
    day = _as_date(d) - _ONE_DAY
    while not _is_working_day(day):
        day -= _ONE_DAY
    return day


def last_working_day_on_or_before(d: date) -> date:
    """``d`` when it is a working day, else the last working day before it."""
    return d if is_working_day(d) else previous_working_day(d)


def first_working_day_on_or_after(d: date) -> date:
    """``d`` when it is a working day, else the first working day after it."""
    return d if is_working_day(d) else next_working_day(d)


def add_working_days(d: date, n: int) -> date:
    """The n-th working day after ``d`` (before it when n < 0); ``d`` itself when n == 0."""
    day = _as_date(d)
    step = next_working_day if n > 0 else previous_working_day
    for _ in range(abs(n)):
        day = step(day)
    return day


@lru_cache(maxsize=16384)
def _count(a: date, b: date) -> int:
    """Working days in (a, b], a < b."""
    span = (b - a).days
    if span > 64:
        mid = a + timedelta(days=span // 2)
        return _count(a, mid) + _count(mid, b)
    n = 0
    day = a + _ONE_DAY
    while day <= b:
        if _is_working_day(day):
            n += 1
        day += _ONE_DAY
    return n


def working_days_between(a: date, b: date) -> int:
    """Working days in ``(a, b]``; negative (those in ``(b, a]``) when ``b`` is before ``a``."""
    a, b = _as_date(a), _as_date(b)
    if a == b:
        return 0
    if a < b:
        return _count(a, b)
    return -_count(b, a)
