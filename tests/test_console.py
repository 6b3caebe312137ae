"""The console (``qcbot console``, and ``qcbot run`` without a token), end to end.

The real command runs in a subprocess, in a temporary working directory (its
``var/`` lands there), without any bot token: through a pseudo-terminal with
pexpect (prompt_toolkit, what a person sees) and through a pipe (scripts). Each
run builds the demo from scratch (``--fresh``: seed import, the coordinator's
bootstrap, /bindgroup, invites), so every test also exercises onboarding.

Synchronisation is by expecting output, never by sleeping; message numbers are
read from the screen (``#31 质量强区助手 ↩ 回复 #30``), since a scheduler nudge may
take a number in between.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.tables import Role
from qcbot.console.app import Console
from qcbot.console.render import Palette, keyboard_lines, pad, strip_ansi, styled_text, width
from qcbot.console.term import Terminal
from qcbot.console.world import Cast, Person, populate
from standin import BotApiStandin, RecordedCall

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parent.parent
QCBOT = Path(sys.executable).parent / "qcbot"
#: One expect may wait this long (a fresh demo is ready in ~3 s; slow CI machines are slower).
TIMEOUT = 60


def console_env() -> dict[str, str]:
    """The environment of a newcomer: no token, no configuration, no colours to match around."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCBOT_")}
    env.update(NO_COLOR="1", TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", PYTHONUNBUFFERED="1")
    env.pop("TEST_DATABASE_URL", None)
    return env


def spawn(args: list[str], cwd: Path, program: Path = QCBOT):  # noqa: ANN201 - pexpect.spawn
    child = pexpect.spawn(
        str(program), args, cwd=str(cwd), env=console_env(), encoding="utf-8",
        codec_errors="replace", dimensions=(60, 220), timeout=TIMEOUT,
    )
    return child


def pick(child, who: str = "1", where: str = "") -> None:  # noqa: ANN001
    child.expect("你是谁")
    child.expect("编号 ›")
    child.sendline(who)
    child.expect("在哪里发言")
    child.expect("编号 ›")
    child.sendline(where)
    child.expect("你现在是")


def say(child, name: str, text: str) -> str:  # noqa: ANN001
    """Type ``text``; returns the number of the message it became."""
    child.sendline(text)
    child.expect(rf"#(\d+) {re.escape(name)}（你）\s+{re.escape(text)}")
    return child.match.group(1)


def bot_reply_to(child, number: str) -> str:  # noqa: ANN001
    """Wait for the bot's reply to message ``number``; returns the reply's number."""
    child.expect(rf"#(\d+) 质量强区助手 ↩ 回复 #{number}\b")
    return child.match.group(1)


def quit_cleanly(child, prompt: str) -> None:  # noqa: ANN001
    """Ctrl-D at the prompt ends the console with status 0.

    prompt_toolkit puts the terminal back in cooked mode for the instant it prints a
    message above the prompt, and a Ctrl-D typed in that instant is swallowed by the
    terminal (a person presses it again): wait for the prompt, and fall back to :quit.
    """
    child.expect(re.escape(prompt))
    child.sendcontrol("d")
    if child.expect(["再见", pexpect.TIMEOUT], timeout=3) == 1:
        child.sendline(":quit")
        child.expect("再见")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


# ================================================================ rendering


def test_entities_become_terminal_styles_and_links_show_their_address() -> None:
    text = "任务7 已提交 查看 链接 王建国"
    entities = [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "code", "offset": 8, "length": 2},
        {"type": "text_link", "offset": 11, "length": 2, "url": "https://example.org/x"},
        {"type": "text_link", "offset": 14, "length": 3, "url": "tg://user?id=1"},
    ]
    styled = styled_text(text, entities, Palette(color=True))
    assert "\x1b[1m任务7\x1b[0m" in styled
    assert "\x1b[36m查看\x1b[0m" in styled
    assert "(https://example.org/x)" in styled
    assert "tg://" not in styled  # a mention shows the name only
    plain = styled_text(text, entities, Palette(color=False))
    assert plain == "任务7 已提交 查看 链接 (https://example.org/x) 王建国"
    assert strip_ansi(styled) == plain


def test_entity_offsets_are_utf16_units() -> None:
    text = "📎 材料"  # the emoji is two UTF-16 units
    styled = styled_text(text, [{"type": "bold", "offset": 3, "length": 2}], Palette(color=True))
    assert styled == "📎 \x1b[1m材料\x1b[0m"


def test_keyboards_are_numbered_across_rows_and_cjk_is_two_columns_wide() -> None:
    message = {"reply_markup": {"inline_keyboard": [
        [{"text": "✅ 通过", "callback_data": "a"}, {"text": "↩️ 退回", "callback_data": "b"}],
        [{"text": "任务7", "callback_data": "c"}],
    ]}}
    lines = [strip_ansi(x) for x in keyboard_lines(message, Palette(color=False))]
    assert lines == [" 1 ✅ 通过   2 ↩️ 退回 ", " 3 任务7 "]
    assert width("王建国") == 6
    assert pad("刘洋", 8) == "刘洋    "


# ================================================================ what the bot sends


class Screen(Terminal):
    def __init__(self) -> None:
        super().__init__(Palette(color=False))
        self.lines: list[str] = []

    def print(self, text: str = "") -> None:
        self.lines.extend(text.split("\n"))


def watching(tmp_path: Path) -> tuple[Console, BotApiStandin, Screen]:
    """A console playing 郑丽 (区财政局) in the work group, over an unstarted stand-in."""
    api = BotApiStandin("123:TEST")
    people = [Person(1, 1001, "王建国", Role.coordinator), Person(2, 1002, "郑丽", Role.liaison, unit="区财政局")]
    cast = Cast(campaign_id=1, campaign_name="演示", people=people, groups=[(-100123, "质量强区工作群")])
    populate(api, cast)
    screen = Screen()
    console = Console(api=api, app=None, engine=None, cast=cast, term=screen,  # type: ignore[arg-type]
                      downloads=tmp_path / "downloads")
    console.person, console.chat_id = people[1], -100123
    return console, api, screen


def bot_says(api: BotApiStandin, chat_id: int, text: str, **params: object) -> RecordedCall:
    """The bot sent ``text`` (recorded as the stand-in records a sendMessage)."""
    message = api.world.new_message(api.world.find_chat(chat_id), api.bot, {"text": text}, by_bot=True)
    call = RecordedCall("sendMessage", {"chat_id": chat_id, "text": text, **params}, 0.0, 200,
                        {"ok": True, "result": message}, 0.0)
    api.calls.append(call)
    return call


def test_nudges_and_notices_show_as_they_arrive(tmp_path: Path) -> None:
    console, api, screen = watching(tmp_path)
    console.cursor = len(api.calls)
    bot_says(api, -100123, "⏰ 任务7 还有 3 天截止")  # a nudge in the group
    bot_says(api, 1002, "✅ 区财政局 · 任务7 已审核通过。")  # in my private chat
    bot_says(api, 1001, "🔺 逾期督办")  # someone else's private chat
    console.drain()
    shown = "\n".join(screen.lines)
    assert "#1 质量强区助手\n  ⏰ 任务7 还有 3 天截止" in shown
    assert "[私聊] #1 质量强区助手\n  ✅ 区财政局 · 任务7 已审核通过。" in shown
    assert "王建国（协调员）的私聊收到一条新消息（:as 1 查看）" in shown
    assert "逾期督办" not in shown
    console.drain()  # nothing twice
    assert "\n".join(screen.lines) == shown


def test_a_force_reply_prompt_makes_the_next_message_a_reply(tmp_path: Path) -> None:
    console, api, screen = watching(tmp_path)
    call = bot_says(api, -100123, "📎 请回复本消息发送证明材料", reply_markup={"force_reply": True})
    console.drain()
    assert "  ↳ 请回复本消息：直接输入即可（:reply off 取消）" in screen.lines
    assert "↩#1" in strip_ansi(console.prompt())
    assert console.take_reply_target() == call.result["message_id"]
    assert console.take_reply_target() is None  # once


# ================================================================ the terminal


def quiet_config(cwd: Path) -> None:
    """No scheduler: a nudge (they depend on the time of day) cannot take a button number."""
    (cwd / "config.toml").write_text("[scheduler]\nenabled = false\n", encoding="utf-8")


def test_terminal_coordinator_help_liaison_reply_and_button(tmp_path: Path) -> None:
    quiet_config(tmp_path)
    child = spawn(["console", "--fresh"], tmp_path)
    try:
        child.expect("演示活动已就绪")
        pick(child, "1", "")  # the coordinator, in the work group
        child.expect("王建国（协调员），在群“质量强区工作群”")
        mine = say(child, "王建国", "/help")
        bot_reply_to(child, mine)
        child.expect("你的身份：协调员")
        child.expect("/review")

        # A liaison reports 60% by replying to a task message.
        child.sendline(":as 区财政局")
        child.expect("你现在是 郑丽（区财政局 联络员）")
        mine = say(child, "郑丽", "/task 7")
        task = bot_reply_to(child, mine)
        child.expect("联络员可直接回复本消息")
        child.sendline(f":reply {task} 60%")
        child.expect(rf"#(\d+) 郑丽（你） ↩ 回复 #{task}\s+60%")
        bot_reply_to(child, child.match.group(1))
        child.expect("区财政局 · 任务7 进度 40% → 60%")

        # The coordinator approves the waiting task 9 with a button, pressed by number.
        child.sendline(":as 1")
        child.expect("你现在是 王建国")
        child.sendline(":in private")
        child.expect("在与 质量强区助手 的私聊")
        mine = say(child, "王建国", "/review")
        bot_reply_to(child, mine)
        child.expect(r"#(\d+) 质量强区助手\s+📥 任务9 · 区市场监管局 报告完成")
        card = child.match.group(1)
        child.expect(r"1 ✅ 通过\s+2 ↩️ 退回")
        child.sendline(f":press {card} 1")
        child.expect(f"按下 #{card} 的“✅ 通过”")
        child.expect("💬 已通过")
        child.expect(rf"#{card} 质量强区助手 ✏️ 已修改")
        child.expect("✅ 已通过（王建国")
        child.expect("赵静（区市场监管局 联络员）的私聊收到一条新消息")
        quit_cleanly(child, "王建国@私聊 ›")
    finally:
        child.close(force=True)
    assert (tmp_path / "var" / "console.sqlite3").exists()
    assert not (tmp_path / "var" / "qcbot.sqlite3").exists()


def test_pipe_reads_lines_prints_plain_text_and_waits_for_answers(tmp_path: Path) -> None:
    report = tmp_path / "自查报告.pdf"
    report.write_bytes(b"%PDF-1.4\n% demo\n")
    picture = tmp_path / "现场 照片.png"
    picture.write_bytes(tiny_png())
    script = "\n".join([
        "/help",
        ":as 区财政局",
        "/evidence 7",
        f":file {shlex.quote(str(report))} 专项资金文件",  # answers the bot's ForceReply prompt
        "/evidence 5",
        f":photo {shlex.quote(str(picture))}",  # a PNG: re-encoded as JPEG, as Telegram does
        "/mytasks",
        ":press 1",
        ":nonsense",
        "",
    ])
    quiet_config(tmp_path)
    done = subprocess.run(
        [str(QCBOT), "console", "--fresh", "--as", "协调员", "--in", "group"],
        input=script, capture_output=True, text=True, cwd=tmp_path, env=console_env(),
        timeout=TIMEOUT, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert done.stderr == ""
    assert "\x1b[" not in out  # plain text in a pipe
    assert "你是谁" not in out  # --as/--in answered the questions
    assert "你的身份：协调员" in out
    assert "你现在是 郑丽（区财政局 联络员）" in out
    assert re.search(r"#\d+ 郑丽（你） ↩ 回复 #\d+\n  \[文件\] 自查报告.pdf", out), out
    assert "📎 已收到 区财政局 · 任务7 的证明材料《自查报告.pdf》" in out
    assert re.search(r"#\d+ 郑丽（你） ↩ 回复 #\d+\n  \[图片\] 2×2", out), out
    assert "📎 已收到 区财政局 · 任务5 的证明材料" in out
    assert "区财政局</b>" not in out and "<b>" not in out  # the HTML was rendered, not shown
    assert re.search(r"按下 #\d+ 的“任务\d+”", out), out
    assert "👉 回复本消息" in out  # the task card the button opened
    assert "没有控制台命令“:nonsense”" in out
    assert out.rstrip().endswith("重新开始）。")
    # the evidence is in the demo's own store, not in var/evidence
    assert any((tmp_path / "var" / "console-evidence").rglob("*"))
    assert not (tmp_path / "var" / "evidence").exists()


def tiny_png() -> bytes:
    """A 2×2 RGB PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xc0\x30\x30" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _make_run_command() -> list[str]:
    """What ``make run`` executes once installed (the last line of ``make -n run``)."""
    make = shutil.which("make")
    if make is not None:
        dry = subprocess.run([make, "-n", "--no-print-directory", "run"], cwd=REPO, capture_output=True,
                             text=True, check=False)
        lines = [x for x in dry.stdout.splitlines() if x.strip()]
        if dry.returncode == 0 and lines:
            command = shlex.split(lines[-1])
            assert command[-1] == "run" and command[0].endswith("qcbot"), lines
            return [str(REPO / command[0]), *command[1:]]
    return [str(REPO / ".venv" / "bin" / "qcbot"), "run"]


def test_make_run_without_token_opens_the_console(tmp_path: Path) -> None:
    program, *args = _make_run_command()
    if not Path(program).exists():
        pytest.skip(f"{program} is not installed (make install)")
    child = spawn(args, tmp_path, program=Path(program))
    try:
        child.expect("未配置机器人令牌")
        child.expect("演示活动已就绪")
        pick(child, "", "2")  # Enter: the coordinator; 2: the private chat
        child.expect("王建国（协调员），在与 质量强区助手 的私聊")
        mine = say(child, "王建国", "/help")
        bot_reply_to(child, mine)
        child.expect("你的身份：协调员")
        child.expect("/invite")
        quit_cleanly(child, "王建国@私聊 ›")
    finally:
        child.close(force=True)
    # The configured (production) database was not created, let alone touched.
    assert not (tmp_path / "var" / "qcbot.sqlite3").exists()
    assert (tmp_path / "var" / "console.sqlite3").exists()


def test_run_without_token_and_without_terminal_fails_instead_of_chatting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``qcbot run`` as a service (stdin /dev/null) with no token: a clear error, status 2."""
    import io

    from qcbot.cli import main

    for var in [v for v in os.environ if v.startswith("QCBOT_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "未配置机器人令牌" in err and "no bot token" in err
    assert not (tmp_path / "var").exists()  # neither database touched


def test_a_second_session_is_answered_not_taken_for_a_redelivery(tmp_path: Path) -> None:
    """Each session's stand-in numbers updates afresh; the bot remembers the numbers it handled
    (models.inbox). The console goes on after them, so a reopened console's messages are
    handled, not answered "这条消息在机器人重启前已经处理并记录"."""
    quiet_config(tmp_path)
    script = "/progress 7 30 第一次\n/progress 7 40 第二次\n"
    runs = [subprocess.run([str(QCBOT), "console", *fresh, "--as", "区财政局", "--in", "private"],
                           input=script, capture_output=True, text=True, cwd=tmp_path, env=console_env(),
                           timeout=TIMEOUT, check=False)
            for fresh in (["--fresh"], [])]
    for done in runs:
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert "重启前已经处理" not in done.stdout, done.stdout
    assert "进度" in runs[1].stdout and "40%" in runs[1].stdout
