"""The PNG charts: valid images, drawn with the shipped CJK font, no missing glyphs."""

from __future__ import annotations

import io
import json
import struct
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import matplotlib as mpl
import pytest
from matplotlib import font_manager

from reports.charts import (
    CategoryBar,
    ChartData,
    UnitBar,
    chart_data_from_status,
    chart_rc,
    cjk_font,
    cjk_font_path,
    render_chart,
    render_status_chart,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def sample() -> ChartData:
    return ChartData(
        title="瑶海区争创安徽省质量强县（市、区）",
        categories=[
            CategoryBar("质量发展促进机制", verified=10, claimed=15, max_points=22),
            CategoryBar("质量工作成效", verified=0, claimed=2.5, max_points=18),
            CategoryBar("加分项", verified=1, claimed=2, max_points=10),
        ],
        units=[
            UnitBar("区市场监管局", approved=3, submitted=2, in_progress=4, not_started=5),
            UnitBar("区委办", approved=1, not_started=1),
            UnitBar("区农林水务局", in_progress=1),
        ],
        as_of=date(2021, 9, 1),
    )


def test_font_is_the_shipped_noto_sans_sc() -> None:
    path = cjk_font_path()
    assert path.name == "NotoSansSC-Regular.otf"
    assert "pylopdf_fonts_zh_cn" in path.parts
    prop = cjk_font()
    assert Path(prop.get_file()) == path
    assert Path(font_manager.findfont(prop)) == path
    # And the family the charts ask for by rcParams resolves to that very file.
    with mpl.rc_context(chart_rc()):
        resolved = font_manager.findfont(font_manager.FontProperties(family=["sans-serif"]))
    assert Path(resolved) == path


def test_font_covers_every_label() -> None:
    from matplotlib.ft2font import FT2Font

    font = FT2Font(str(cjk_font_path()))
    cmap = font.get_charmap()
    labels = "各类别得分（满分 / 自评 / 核定）各责任单位任务完成情况已通过已提交进行中未开始任务数暂无评分数据截至年月日"
    missing = [ch for ch in labels if ord(ch) not in cmap]
    assert missing == []


def test_render_is_a_png_with_chinese_and_no_missing_glyph() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = render_chart(sample())
    glyph_warnings = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert glyph_warnings == []
    assert data[:8] == PNG_MAGIC
    width, height = png_size(data)
    assert width == 13 * 110
    assert 300 <= height <= 2000
    # matplotlib reads it back as an image of the same size.
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.shape[:2] == (height, width)


def test_missing_glyph_would_be_noticed() -> None:
    """The check above is not vacuous: a font without Chinese does warn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with mpl.rc_context({"font.family": "DejaVu Sans"}):
            fig = Figure(figsize=(2, 1))
            FigureCanvasAgg(fig)
            fig.text(0.1, 0.5, "质量")
            fig.savefig(io.BytesIO(), format="png")
    assert any("missing from" in str(w.message) for w in caught)


def test_empty_data_still_renders() -> None:
    data = render_chart(ChartData(title=""))
    assert data[:8] == PNG_MAGIC


@pytest.mark.parametrize("n_units", [1, 40])
def test_height_grows_with_rows(n_units: int) -> None:
    units = [UnitBar(f"单位{i}", approved=1) for i in range(n_units)]
    _, height = png_size(render_chart(ChartData(title="t", units=units)))
    assert height < 800 if n_units == 1 else height > 1200


def test_chart_of_a_real_campaign_status(session) -> None:  # noqa: ANN001
    from models.audit import Actor
    from models.seed import import_seed, load_seed
    from models.status import campaign_status
    from tests.conftest import SEED_PATH

    now = datetime(2021, 9, 1, 2, 0, tzinfo=UTC)
    cid = import_seed(session=session, doc=load_seed(SEED_PATH), now=now, actor=Actor.cli()).campaign_id
    status = campaign_status(session=session, campaign_id=cid, today=date(2021, 9, 1),
                             yellow_working_days=5)
    data = chart_data_from_status(status)
    assert [c.name for c in data.categories][0] == "质量发展促进机制"
    assert sum(c.max_points for c in data.categories if c.name != "加分项") == 100
    assert len(data.units) == 17
    assert sum(u.total for u in data.units) == len(status.assignments)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_status_chart(status)
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert png_size(png)[0] == 13 * 110


def test_render_leaves_no_figure_behind() -> None:
    """A figure is a web of cycles; render_chart collects it instead of leaving it to the collector."""
    import gc

    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def alive() -> list[object]:
        return [o for o in gc.get_objects() if isinstance(o, Figure | FigureCanvasAgg | Axes)]

    gc.collect()
    before = len(alive())
    gc.disable()  # no collection but render_chart's own
    try:
        render_chart(sample())
        left = len(alive())
    finally:
        gc.enable()
    assert left == before
    import matplotlib._pylab_helpers as pylab_helpers

    assert pylab_helpers.Gcf.get_all_fig_managers() == []  # and nothing in pyplot's registry


def test_chart_data_survives_json() -> None:
    from reports.charts import chart_data_from_json, chart_data_to_json

    data = sample()
    back = chart_data_from_json(json.loads(json.dumps(chart_data_to_json(data))))
    assert (back.title, list(back.categories), list(back.units), back.as_of) == (
        data.title, list(data.categories), list(data.units), data.as_of)
    empty = chart_data_from_json(chart_data_to_json(ChartData(title="")))
    assert empty == ChartData(title="", categories=(), units=(), as_of=None)


def test_worker_protocol_answers_each_line(tmp_path: Path) -> None:
    from reports.charts import chart_data_to_json, serve

    good = tmp_path / "a.png"
    requests = [
        {"path": str(good), "data": chart_data_to_json(sample())},
        {"path": str(tmp_path / "b.png"), "data": {"title": "x", "units": [{"nom": 1}]}},
        {"path": str(tmp_path / "no-such-dir" / "c.png"), "data": chart_data_to_json(sample())},
    ]
    stdin = io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    stdout = io.BytesIO()
    serve(stdin, stdout)
    answers = stdout.getvalue().decode().splitlines()
    assert answers[0] == "ok" and png_size(good.read_bytes())[0] == 13 * 110
    assert answers[1].startswith("error TypeError") and answers[2].startswith("error FileNotFoundError")
    assert len(answers) == 3


async def test_chart_process_renders_in_its_own_process() -> None:
    from reports.charts import ChartProcess, ChartWorkerError

    worker = ChartProcess()
    try:
        first = await worker.render(sample())
        assert png_size(first.read_bytes())[0] == 13 * 110
        # A chart the worker cannot draw is its error, answered; the worker carries on.
        with pytest.raises(ChartWorkerError, match="could not render"):
            await worker.render(ChartData(title="坏", units=[{"nom": 1}]))  # type: ignore[list-item]
        # A worker that died is replaced by the next chart.
        assert worker._proc is not None
        worker._proc.kill()
        await worker._proc.wait()
        again = await worker.render(ChartData(title="又一张"))
        assert again.read_bytes()[:8] == PNG_MAGIC and again != first
        assert worker.started == 2
    finally:
        await worker.close()
    assert worker._proc is None
    assert not first.parent.exists()  # close() removed the files


async def test_the_worker_removes_the_files_when_its_parent_is_gone() -> None:
    from reports.charts import ChartProcess

    worker = ChartProcess()
    png = await worker.render(sample())
    proc = worker._proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # what the parent's death does to the worker's input
    assert await proc.wait() == 0
    assert not png.parent.exists()
    await worker.close()
