"""The console's demo campaign: the plan, moved to today, and the people in it.

The plan of ``data/seed.json`` (瑶办发〔2021〕25号) starts on 2021-07-01. The demo
imports it shifted so that *today* is the plan's 2021-09-01 (:data:`PLAN_TODAY`):

* phase 2 “全面创建，实现总体达标” (2021-07-10 → 2021-12-31) is under way;
* task 2 (区市场监管局, due 2021-08-30) is two days overdue, at 80 %;
* phase 1 (due 2021-07-10) is done: tasks 1 and 4 were reported done and score items
  2 and 4 claimed, and the coordinator approved them all;
* the other 16 tasks and 25 score items are due on the plan's 2021-12-31, four
  months ahead; a few units have started (task 3, 7, 8);
* 区市场监管局 reported task 9 done: it waits for the coordinator's /review.

Everybody joins the way real people do, through the stand-in and the real bot:
the coordinator sends ``/start`` with the bootstrap code, adds the bot to
“质量强区工作群” and sends ``/bindgroup`` there, then ``/invite``\\ s the leader
and one liaison per unit, who each open their deep link (``/start TOKEN``).
The phase-1 work is reported with ``/done`` and approved with the 通过 buttons
of ``/review``. So a fresh demo is itself an end-to-end run of onboarding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from infra.db import read_only, transaction
from infra.migrate import upgrade
from infra.types import utcnow
from models.audit import Actor
from models.seed import import_seed, load_seed, plan_start
from models.tables import Campaign, Member
from qcbot.boot import DEFAULT_SEED
from standin import BotApiStandin, SimChat, SimUser, buttons

JsonDict = dict[str, Any]

#: The day of the original plan that the demo makes "today".
PLAN_TODAY = date(2021, 9, 1)
GROUP_TITLE = "质量强区工作群"
#: Fixed ids, so that a kept demo database finds the same people next time.
GROUP_ID = -1001700000001
COORDINATOR_ID = 7100000001
LEADER_ID = 7100000002
LIAISON_ID_BASE = 7100000100
BOT_USERNAME = "qcbot_demo_bot"
#: How long the demo setup waits for one answer of the bot.
STEP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class CastMember:
    user_id: int
    name: str
    username: str
    #: Shown next to the name when picking who you are.
    title: str = ""


COORDINATOR = CastMember(COORDINATOR_ID, "王建国", "wang_jianguo", "区市场监管局 · 领导小组办公室")
LEADER = CastMember(LEADER_ID, "陈志强", "chen_zhiqiang", "副区长，分管质量工作")
#: One liaison per responsible unit of the seed (unit name → name, username).
LIAISONS: dict[str, tuple[str, str]] = {
    "区委办": ("刘洋", "liu_yang"),
    "区政府办": ("张敏", "zhang_min"),
    "区发改委": ("李强", "li_qiang"),
    "区市场监管局": ("赵静", "zhao_jing"),
    "区委组织部": ("孙磊", "sun_lei"),
    "区委宣传部": ("周婷", "zhou_ting"),
    "区委党校": ("吴刚", "wu_gang"),
    "区财政局": ("郑丽", "zheng_li"),
    "区经信局": ("冯涛", "feng_tao"),
    "区教体局": ("何芳", "he_fang"),
    "区科技局": ("许斌", "xu_bin"),
    "区住建局": ("马超", "ma_chao"),
    "区商务局": ("胡霞", "hu_xia"),
    "区数据资源局": ("郭鹏", "guo_peng"),
    "区文旅局": ("林娜", "lin_na"),
    "区卫健委": ("高峰", "gao_feng"),
    "区农林水务局": ("罗军", "luo_jun"),
}


def liaison_cast() -> list[tuple[str, CastMember]]:
    return [
        (unit, CastMember(LIAISON_ID_BASE + i, name, username))
        for i, (unit, (name, username)) in enumerate(LIAISONS.items(), 1)
    ]


def cast_titles() -> dict[int, str]:
    """Extra words for the people of the demo, by Telegram id."""
    return {COORDINATOR.user_id: COORDINATOR.title, LEADER.user_id: LEADER.title}


def demo_shift_to(today: date) -> date:
    """The ``shift_to`` (new first day of the plan) that makes ``today`` the plan's PLAN_TODAY."""
    doc = load_seed(DEFAULT_SEED)
    return today - (PLAN_TODAY - plan_start(doc))


def prepare_database(engine: Engine, *, today: date) -> bool:
    """Migrate; import the seed shifted to ``today`` when no campaign exists. True if imported."""
    upgrade(engine)
    with read_only(engine) as session:
        if session.exec(select(Campaign.id).limit(1)).first() is not None:
            return False
    doc = load_seed(DEFAULT_SEED)
    shift_to = today - (PLAN_TODAY - plan_start(doc))
    with transaction(engine) as session:
        import_seed(session=session, doc=doc, now=utcnow(), actor=Actor.cli(), shift_to=shift_to)
    return True


def has_members(engine: Engine) -> bool:
    with read_only(engine) as session:
        return session.exec(select(Member.id).limit(1)).first() is not None


class StoryError(RuntimeError):
    """The bot did not answer the demo setup as expected (a bug: see var/console.log)."""


class Story:
    """Plays the demo's onboarding and phase-1 work through the stand-in."""

    def __init__(self, api: BotApiStandin, app: Any) -> None:
        self.api = api
        self.app = app
        self.users: dict[int, SimUser] = {}

    def user(self, who: CastMember) -> SimUser:
        if who.user_id not in self.users:
            self.users[who.user_id] = self.api.make_user(
                who.name, who.username, user_id=who.user_id
            )
        return self.users[who.user_id]

    async def say(self, who: SimUser, chat: SimChat | SimUser, text: str) -> JsonDict:
        """``who`` writes ``text``; returns the bot's answer to it (a reply to that message).

        Matching the reply, rather than taking the next message of the chat, keeps the
        story right when the scheduler posts a nudge in the same chat meanwhile.
        """
        target = self.api.private_chat(who) if isinstance(chat, SimUser) else chat
        sent = await self.api.send_text(who, target, text)
        mine = sent["message_id"]

        def answer() -> JsonDict | None:
            for message in self.api.sent_messages(target):
                if (message.get("reply_to_message") or {}).get("message_id") == mine:
                    return message
            return None

        try:
            await self.api.wait_until(lambda: answer() is not None, timeout=STEP_TIMEOUT,
                                      what=f"answer to {text!r}")
        except AssertionError as exc:
            raise StoryError(f"演示准备失败：{who.full_name} 发送“{text}”后机器人没有回答（{exc}）") from None
        found = answer()
        assert found is not None
        return found

    async def expect(self, who: SimUser, chat: SimChat | SimUser, text: str, needle: str) -> JsonDict:
        answer = await self.say(who, chat, text)
        if needle not in (answer.get("text") or ""):
            raise StoryError(
                f"演示准备失败：{who.full_name} 发送“{text}”后机器人回答“{answer.get('text')}”"
            )
        return answer

    async def invite_token(self, coordinator: SimUser, target: str) -> str:
        answer = await self.expect(coordinator, coordinator, f"/invite {target}", "https://t.me/")
        text = answer["text"]
        link = text[text.index("https://t.me/"):].split()[0]
        return link.split("start=", 1)[1]

    def review_cards(self, coord: SimUser, head: JsonDict) -> list[JsonDict]:
        """The messages with 通过/退回 buttons that /review sent after its first line."""
        return [
            m for m in self.api.sent_messages(coord)
            if m["message_id"] > head["message_id"]
            and any("通过" in b.get("text", "") for b in buttons(m))
        ]

    async def press(self, who: SimUser, message: JsonDict, label: str) -> None:
        for button in message.get("reply_markup", {}).get("inline_keyboard", [[]])[0]:
            if label in button.get("text", ""):
                query = await self.api.press_button(who, message, button["callback_data"])
                await self.api.wait_until(
                    lambda q=query: q in self.api.callback_answers, timeout=STEP_TIMEOUT,
                    what=f"answer to {label}",
                )
                return
        raise StoryError(f"演示准备失败：消息里没有“{label}”按钮：{message.get('text')}")

    async def play(self) -> None:
        api = self.api
        codes = self.app.bot_data.get("bootstrap_codes") or []
        if not codes:
            raise StoryError("演示准备失败：机器人启动时没有给出初始化代码（数据库里已有协调员？）")
        coord = self.user(COORDINATOR)
        await self.expect(coord, coord, f"/start {codes[-1]}", "欢迎")

        group = api.make_group(GROUP_TITLE, chat_id=GROUP_ID, creator=coord, bot_status="left")
        await api.add_bot_to_group(coord, group)
        await api.wait_for_bot_messages(group, timeout=STEP_TIMEOUT)  # "本群尚未绑定……"
        await self.expect(coord, group, "/bindgroup", "已绑定")

        leader = self.user(LEADER)
        token = await self.invite_token(coord, "leader")
        await self.expect(leader, leader, f"/start {token}", "欢迎")
        liaisons: dict[str, SimUser] = {}
        for unit, who in liaison_cast():
            token = await self.invite_token(coord, unit)
            person = self.user(who)
            await self.expect(person, person, f"/start {token}", "欢迎")
            liaisons[unit] = person
        for person in [leader, *liaisons.values()]:
            api.set_member_status(group, person, "member")

        # Phase 1 (due on the plan's 2021-07-10): done and approved.
        for unit in ("区委办", "区政府办", "区发改委", "区市场监管局"):
            await self.expect(liaisons[unit], group, "/done 1", "已提交完成")
        await self.expect(liaisons["区市场监管局"], group, "/done 4", "已提交完成")
        await self.expect(liaisons["区市场监管局"], group, "/claim 2.1 已印发贯彻落实意见", "已申报达标")
        await self.expect(liaisons["区市场监管局"], group, "/claim 4.1 创建方案已印发", "已申报达标")
        head = await self.expect(coord, coord, "/review", "待审核")
        await self.api.wait_until(lambda: len(self.review_cards(coord, head)) >= 7, timeout=STEP_TIMEOUT,
                                  what="the /review cards")
        for message in self.review_cards(coord, head):
            await self.press(coord, message, "通过")
        # Phase 2 under way.
        await self.expect(liaisons["区市场监管局"], group, "/progress 2 80 会议方案已拟定，待区主要领导确定时间", "80%")
        await self.expect(liaisons["区委组织部"], group, "/progress 3 30 已列入中心组学习计划", "30%")
        await self.expect(liaisons["区财政局"], group, "/progress 7 40 专项资金管理办法已起草", "40%")
        await self.expect(liaisons["区经信局"], group, "/progress 8 20", "20%")
        await self.expect(liaisons["区市场监管局"], group, "/done 9", "已提交完成")
        await api.wait_idle(timeout=STEP_TIMEOUT)


async def onboard(api: BotApiStandin, app: Any) -> None:
    """Run :class:`Story` (a fresh demo database only)."""
    await Story(api, app).play()


__all__ = [
    "COORDINATOR",
    "GROUP_ID",
    "GROUP_TITLE",
    "LEADER",
    "PLAN_TODAY",
    "Story",
    "StoryError",
    "cast_titles",
    "demo_shift_to",
    "has_members",
    "liaison_cast",
    "onboard",
    "prepare_database",
]
