"""Realistic-looking district names (and pinyin slugs) for the synthetic province.

Made-up two-character district names (清河区, 永丰区 ...) under the real prefecture
cities of Anhui: they look like the real thing without naming a real district's
campaign. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PROVINCE = "安徽省"

CITIES = (
    "合肥", "芜湖", "蚌埠", "淮南", "马鞍山", "淮北", "铜陵", "安庆",
    "黄山", "滁州", "阜阳", "宿州", "六安", "亳州", "池州", "宣城",
)

FIRST = (
    ("清", "qing"), ("永", "yong"), ("长", "chang"), ("安", "an"), ("新", "xin"),
    ("东", "dong"), ("西", "xi"), ("南", "nan"), ("北", "bei"), ("兴", "xing"),
    ("平", "ping"), ("宁", "ning"), ("华", "hua"), ("丰", "feng"), ("嘉", "jia"),
    ("建", "jian"), ("金", "jin"), ("明", "ming"), ("庆", "qing"), ("瑞", "rui"),
    ("顺", "shun"), ("泰", "tai"), ("文", "wen"), ("云", "yun"), ("凤", "feng"),
    ("龙", "long"), ("和", "he"), ("广", "guang"),
)
SECOND = (
    ("山", "shan"), ("湖", "hu"), ("河", "he"), ("城", "cheng"), ("江", "jiang"),
    ("阳", "yang"), ("源", "yuan"), ("溪", "xi"), ("泉", "quan"), ("林", "lin"),
    ("宁", "ning"), ("安", "an"), ("丰", "feng"), ("平", "ping"), ("州", "zhou"),
    ("台", "tai"), ("桥", "qiao"), ("亭", "ting"),
)


@dataclass(frozen=True, slots=True)
class District:
    city: str  # 合肥
    name: str  # 清河区
    slug: str  # qinghe-2021

    @property
    def full(self) -> str:
        """合肥市清河区"""
        return f"{self.city}市{self.name}"


def districts(count: int, *, seed: int = 42, year: int = 2021) -> list[District]:
    """``count`` distinct districts, spread over the cities; slugs unique."""
    rng = random.Random(f"districts-{seed}")
    combos = [(a, b) for a in FIRST for b in SECOND if a[0] != b[0]]
    rng.shuffle(combos)
    if count > len(combos):
        raise ValueError(f"at most {len(combos)} districts")
    out: list[District] = []
    slugs: set[str] = set()
    for i, ((c1, p1), (c2, p2)) in enumerate(combos[:count]):
        slug = f"{p1}{p2}-{year}"
        n = 2
        while slug in slugs:
            slug = f"{p1}{p2}{n}-{year}"
            n += 1
        slugs.add(slug)
        out.append(District(city=CITIES[i % len(CITIES)], name=f"{c1}{c2}区", slug=slug))
    return out


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力海鹏宇浩凯云峰亮林斌波宁欣婷雪琳晨阳佳颖志刚晓东"


def person(rng: random.Random) -> str:
    """A plausible Chinese name."""
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given
