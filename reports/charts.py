"""PNG charts of the campaign's standing, with Chinese text in a font we ship.

The font is Noto Sans SC (SIL Open Font License 1.1), installed from PyPI by the
``pylopdf-fonts-zh-cn`` package, a project dependency: a fresh machine gets it
with ``pip install``, no system fonts needed. The chart code loads that file
explicitly (``font_manager.addfont``) and never relies on font discovery, so a
machine without any CJK font renders the same picture, without tofu boxes.

Rendering uses the object-oriented API on the Agg canvas (no pyplot, no
display, no global figure registry), so it is safe to call from a worker thread.
A figure is a web of reference cycles (figure, canvas, axes, artists, the Agg
renderer's buffers): :func:`render_chart` collects it before returning, so a
chart leaves no garbage behind for the next full collection (~1.3 MB each).

``python -m reports.charts`` is a chart worker process (:func:`serve`), and
:class:`ChartProcess` its asynchronous client: a caller that must keep its event
loop responsive (the scheduler's dispatch) renders there, off its own GIL and
out of its own heap.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg", force=False)

from matplotlib import font_manager  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

if TYPE_CHECKING:  # the chart worker process stays free of the database layer
    from matplotlib.typing import RcKeyType

    from models.status import CampaignStatus

#: Environment variable naming another CJK font file (OTF/TTF) to use instead.
FONT_ENV = "QCBOT_CJK_FONT"

#: Debian's fonts-noto-cjk, only used when the PyPI package is missing.
_SYSTEM_FALLBACKS: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


class FontMissing(RuntimeError):
    """No CJK font file could be found; the message says how to install one."""


def cjk_font_path() -> Path:
    """The CJK font file the charts use (Noto Sans SC from ``pylopdf-fonts-zh-cn``)."""
    named = os.environ.get(FONT_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FontMissing(f"{FONT_ENV}={named}: no such font file")
        return path
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        pass
    else:
        path = Path(pylopdf_fonts_zh_cn.sans_path())
        if path.is_file():
            return path
    for candidate in _SYSTEM_FALLBACKS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise FontMissing(
        "no CJK font: install the project's dependencies (pip install -e .), "
        "which bring pylopdf-fonts-zh-cn (Noto Sans SC)"
    )


@lru_cache(maxsize=4)
def _register(path: str) -> str:
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def cjk_font_name() -> str:
    """Register the CJK font file with matplotlib (once) and return its family name."""
    return _register(str(cjk_font_path()))


def cjk_font(size: float | None = None) -> font_manager.FontProperties:
    """FontProperties bound to the CJK font file itself (no lookup by name)."""
    return font_manager.FontProperties(fname=str(cjk_font_path()), size=size)


def chart_rc() -> dict[RcKeyType, Any]:
    """rcParams under which every text of a chart resolves to the CJK font."""
    name = cjk_font_name()
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [name],
        "axes.unicode_minus": False,
        "svg.fonttype": "none",
    }


# --------------------------------------------------------------------- chart data


@dataclass(frozen=True, slots=True)
class CategoryBar:
    name: str
    verified: float
    claimed: float
    max_points: float


@dataclass(frozen=True, slots=True)
class UnitBar:
    """How one unit's assignments stand: counts per state."""

    name: str
    approved: int = 0
    submitted: int = 0
    in_progress: int = 0
    not_started: int = 0

    @property
    def total(self) -> int:
        return self.approved + self.submitted + self.in_progress + self.not_started


@dataclass(frozen=True, slots=True)
class ChartData:
    title: str
    categories: Sequence[CategoryBar] = field(default_factory=tuple)
    units: Sequence[UnitBar] = field(default_factory=tuple)
    as_of: date | None = None


_STATE_LABELS: tuple[tuple[str, str, str], ...] = (
    # attribute, label, colour
    ("approved", "已通过", "#2e7d32"),
    ("submitted", "已提交", "#1e88e5"),
    ("in_progress", "进行中", "#f9a825"),
    ("not_started", "未开始", "#bdbdbd"),
)


def chart_data_from_status(status: CampaignStatus) -> ChartData:
    """The chart of a campaign's status: its categories' points and its units' tasks by state.

    Reads the numbers as :func:`models.status.campaign_status` reports them; nothing is
    recomputed here. Units without tasks are left out; the units keep the status's order.
    """
    categories = [
        CategoryBar(name=c.name, verified=c.verified, claimed=c.claimed, max_points=c.max_points)
        for c in status.categories
    ]
    units = [
        UnitBar(name=u.name, **{key: getattr(u, key) for key, _, _ in _STATE_LABELS})
        for u in status.units
    ]
    return ChartData(title=status.campaign.name, categories=categories,
                     units=[u for u in units if u.total], as_of=status.today)


# ------------------------------------------------------------------------ drawing


def _fmt(x: float) -> str:
    return f"{x:g}"


def _draw_categories(ax: Any, cats: Sequence[CategoryBar]) -> None:
    ax.set_title("各类别得分（满分 / 自评 / 核定）")
    if not cats:
        ax.text(0.5, 0.5, "暂无评分数据", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ys = list(range(len(cats)))
    h = 0.26
    series = (
        ("满分", [c.max_points for c in cats], "#e0e0e0", -h),
        ("自评", [c.claimed for c in cats], "#90caf9", 0.0),
        ("核定", [c.verified for c in cats], "#1565c0", h),
    )
    for label, values, colour, dy in series:
        bars = ax.barh([y + dy for y in ys], values, height=h, color=colour, label=label)
        ax.bar_label(bars, labels=[_fmt(v) for v in values], padding=2, fontsize=8)
    ax.set_yticks(ys, [c.name for c in cats])
    ax.invert_yaxis()
    top = max(max(c.max_points, c.claimed, c.verified) for c in cats) or 1
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel("分")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def _draw_units(ax: Any, units: Sequence[UnitBar]) -> None:
    ax.set_title("各责任单位任务完成情况")
    if not units:
        ax.text(0.5, 0.5, "暂无任务数据", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ys = list(range(len(units)))
    left = [0] * len(units)
    for attr, label, colour in _STATE_LABELS:
        values = [getattr(u, attr) for u in units]
        ax.barh(ys, values, left=left, color=colour, label=label, height=0.6)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, u in zip(ys, units, strict=True):
        pct = round(100 * u.approved / u.total) if u.total else 0
        ax.text(u.total + 0.1, y, f"{u.approved}/{u.total}（{pct}%）", va="center", fontsize=8)
    ax.set_yticks(ys, [u.name for u in units])
    ax.invert_yaxis()
    ax.set_xlim(0, max(u.total for u in units) * 1.35 + 0.5)
    ax.set_xlabel("任务数")
    ax.legend(loc="lower right", fontsize=8, ncols=2)
    ax.grid(axis="x", alpha=0.3)


#: ``rc_context`` swaps matplotlib's process-wide rcParams: two charts drawn at once in
#: worker threads (two /status at the same time) would restore each other's defaults
#: mid-drawing and render the Chinese text in DejaVu Sans (tofu boxes). One at a time.
_RENDER_LOCK = threading.Lock()


def render_chart(data: ChartData, *, dpi: int = 110) -> bytes:
    """Draw the two panels (score by category, tasks by unit) as a PNG."""
    import matplotlib as mpl

    rows = max(len(data.categories), len(data.units), 4)
    height = 2.2 + 0.32 * rows
    with _RENDER_LOCK, mpl.rc_context(chart_rc()):
        fig = Figure(figsize=(13, height), dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        ax_cat, ax_unit = fig.subplots(1, 2, width_ratios=(1, 1.1))
        _draw_categories(ax_cat, data.categories)
        _draw_units(ax_unit, data.units)
        title = data.title or "质量强区创建进度"
        if data.as_of is not None:
            title = f"{title}　截至 {data.as_of:%Y年%m月%d日}".replace("年0", "年").replace("月0", "月")
        fig.suptitle(title, fontsize=13)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        del fig, ax_cat, ax_unit
    # Only a collection frees the figure's cycles; left to the collector's own schedule,
    # the garbage of several charts piles up (and the heap with it: 40 charts +49 MB of RSS,
    # +6 MB when collected here). Outside the lock: the next chart need not wait for it.
    gc.collect()
    return buf.getvalue()


def render_status_chart(status: CampaignStatus) -> bytes:
    """The /status picture (and the weekly digest's) as PNG bytes."""
    return render_chart(chart_data_from_status(status))


# ------------------------------------------------------------------ worker process


def chart_data_to_json(data: ChartData) -> dict[str, Any]:
    """ChartData as plain JSON (for the worker process)."""
    obj = asdict(data)
    obj["as_of"] = data.as_of.isoformat() if data.as_of is not None else None
    return obj


def chart_data_from_json(obj: dict[str, Any]) -> ChartData:
    as_of = obj.get("as_of")
    return ChartData(
        title=str(obj.get("title", "")),
        categories=tuple(CategoryBar(**c) for c in obj.get("categories", ())),
        units=tuple(UnitBar(**u) for u in obj.get("units", ())),
        as_of=date.fromisoformat(as_of) if as_of else None,
    )


def serve(stdin: Any = None, stdout: Any = None, *, directory: str | None = None) -> None:
    """The chart worker: one request per line, ``{"path": ..., "data": ...}``.

    Renders ``data`` (:func:`chart_data_to_json`) into the PNG file ``path`` and answers
    one line: ``ok``, or ``error <what went wrong>`` (the worker carries on). Ends when
    its input ends (the parent closed it, or died), removing ``directory`` (the parent's
    charts) if given: a parent killed before it could clean up leaves no files behind.
    """
    if stdout is None:
        stdout = sys.stdout.buffer
        sys.stdout = sys.stderr  # a library's print must not garble the answers
    stdin = stdin or sys.stdin.buffer
    if hasattr(os, "nice"):
        # Background work: the bot's own process (handlers, the dispatch's pacing) comes first.
        os.nice(CHART_WORKER_NICE)
    gc.collect()
    gc.freeze()  # matplotlib's import: the collection after each chart need not walk it
    try:
        for line in stdin:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                png = render_chart(chart_data_from_json(request["data"]))
                Path(request["path"]).write_bytes(png)
                answer = "ok"
            except Exception as exc:  # answered, not raised: one bad chart must not end the worker
                answer = "error " + f"{type(exc).__name__}: {exc}".replace("\n", " ")
            stdout.write(answer.encode() + b"\n")
            stdout.flush()
    finally:
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


#: Scheduling priority of the worker process (Unix ``nice``: 0 normal, 19 lowest).
CHART_WORKER_NICE = 10

#: The directory holding the ``models`` package, for the worker's import path.
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ChartWorkerError(RuntimeError):
    """The worker process failed to render a chart (or died, or took too long)."""


class ChartProcess:
    """A chart worker process (``python -m reports.charts``), started on first use.

    Renders one chart at a time (callers queue on a lock), in its own process: matplotlib's
    ~0.3 s of CPU per chart does not hold the caller's GIL, and its memory is the
    worker's, returned to the system by :meth:`close`. The PNG files are in a temporary
    directory until :meth:`close` (or the worker, when its parent died) removes it. A worker that dies or takes longer
    than ``timeout`` seconds is killed and the next chart starts a new one, ``max_failures``
    times at most: then every further chart fails at once (a broken worker must not hold
    up its caller for ``timeout`` per chart).
    """

    def __init__(self, *, timeout: float = 60.0, max_failures: int = 2) -> None:
        self.timeout = timeout
        self.max_failures = max_failures
        self._proc: asyncio.subprocess.Process | None = None
        self._killed: list[asyncio.subprocess.Process] = []
        self._lock = asyncio.Lock()
        self._dir: str | None = None
        self._charts = 0
        self.started = 0  # processes started (for tests and reports)

    @staticmethod
    def command(directory: str) -> list[str]:
        return [sys.executable, "-m", "reports.charts", directory]

    async def _start(self, directory: str) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SOURCE_ROOT, env.get("PYTHONPATH")) if p)
        proc = await asyncio.create_subprocess_exec(
            *self.command(directory), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
        )
        self.started += 1
        return proc

    async def render(self, data: ChartData) -> Path:
        """Render ``data`` into a new PNG file (kept until :meth:`close`); raises :class:`ChartWorkerError`."""
        async with self._lock:
            if len(self._killed) >= self.max_failures:
                raise ChartWorkerError(f"the chart worker failed {len(self._killed)} times; no more charts")
            if self._dir is None:
                self._dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="qcbot-charts-")
            self._charts += 1
            path = Path(self._dir) / f"chart-{self._charts}.png"
            request = json.dumps({"path": str(path), "data": chart_data_to_json(data)}, ensure_ascii=False)
            if self._proc is None or self._proc.returncode is not None:
                self._proc = await self._start(self._dir)
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(request.encode() + b"\n")
                await proc.stdin.drain()
                answer = await asyncio.wait_for(proc.stdout.readline(), self.timeout)
            except BaseException as exc:
                # Its answer (if one comes) would be taken for the next chart's: a new worker.
                self._kill()
                if isinstance(exc, OSError | TimeoutError):
                    raise ChartWorkerError(f"the chart worker failed: {type(exc).__name__}: {exc}") from exc
                raise
            if not answer:
                self._kill()
                raise ChartWorkerError("the chart worker ended without an answer")
        text = answer.decode(errors="replace").strip()
        if text != "ok":
            raise ChartWorkerError(f"the chart worker could not render: {text}")
        return path

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                proc.kill()
            self._killed.append(proc)

    async def close(self) -> None:
        """End the worker (its input closed; killed if it does not end within ``timeout``), remove the files."""
        async with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), self.timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for dead in self._killed:
            await dead.wait()
        if self._dir is not None:
            await asyncio.to_thread(shutil.rmtree, self._dir, ignore_errors=True)
            self._dir = None


if __name__ == "__main__":
    serve(directory=sys.argv[1] if len(sys.argv) > 1 else None)
