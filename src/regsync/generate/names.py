"""Word lists for generated people and places.

Surnames, given-name characters, minority and foreign names, rare characters, place-name stems. Every name
made from them is invented; none is a real person's.

Sources of the shapes (not of any list entry): registry-api.md §4.2 (names may hold CJK ideographs, rare
ones outside the BMP included, Latin letters, and ``·`` U+00B7 between the parts of minority and foreign
names); the common surnames of the northeast (王 李 张 刘 于 孙 …); 统计用区划代码 place kinds (街道, 镇, 乡,
社区, 村).
"""

from __future__ import annotations

import random

#: Common surnames with relative weights (the northeast's usual order, roughly).
SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 95),
    ("李", 90),
    ("张", 88),
    ("刘", 80),
    ("于", 30),
    ("孙", 30),
    ("赵", 28),
    ("陈", 25),
    ("杨", 25),
    ("高", 18),
    ("马", 17),
    ("徐", 14),
    ("郭", 13),
    ("周", 13),
    ("吴", 12),
    ("朱", 11),
    ("孟", 10),
    ("姜", 10),
    ("韩", 10),
    ("曲", 6),
    ("崔", 8),
    ("宋", 9),
    ("董", 8),
    ("田", 8),
    ("林", 8),
    ("黄", 8),
    ("胡", 8),
    ("何", 6),
    ("郑", 7),
    ("谢", 5),
    ("曹", 6),
    ("唐", 5),
    ("许", 6),
    ("吕", 5),
    ("邓", 4),
    ("冯", 6),
    ("程", 5),
    ("魏", 6),
    ("沈", 4),
    ("蔡", 4),
    ("贾", 5),
    ("丁", 5),
    ("薛", 4),
    ("潘", 4),
    ("杜", 5),
    ("任", 5),
    ("范", 4),
    ("方", 3),
    ("石", 5),
    ("姚", 4),
    ("谭", 3),
    ("邹", 3),
    ("付", 6),
    ("金", 5),
    ("陆", 3),
    ("郝", 5),
    ("孔", 4),
    ("白", 5),
    ("康", 4),
    ("毛", 3),
    ("秦", 4),
    ("史", 4),
    ("侯", 5),
    ("邵", 3),
    ("常", 4),
    ("武", 4),
    ("乔", 4),
    ("贺", 3),
    ("尹", 3),
    ("安", 3),
    ("庞", 2),
    ("关", 4),
    ("佟", 3),
    ("那", 2),
    ("鲍", 2),
    ("隋", 2),
    ("栾", 2),
    ("迟", 2),
    ("修", 1),
    ("欧阳", 1),
    ("司马", 1),
    ("上官", 1),
    ("诸葛", 1),
    ("东方", 1),
)

#: Given-name characters, by gender (``M``, ``F``) and shared.
GIVEN_M = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林洋博文彬晨阳峰建国志成海东亮德东"
GIVEN_F = "芳娜敏静丽艳娟霞秀玲桂英丹萍红玉兰婷雪琳晶颖倩慧莉梅琴云莹洁佳欣怡悦璐瑶月凤华春"
GIVEN_ANY = "子一天思雨家嘉诗梓晓文明宏新永金春晨心安可书佳乐俊"

#: Parts of minority names written with ``·`` (维吾尔族, 哈萨克族, 回族…) and of the names of the province's
#: 俄罗斯族 and foreign residents, transliterated: given parts by gender, and family/father's parts.
DOT_GIVEN_M = (
    "买买提",
    "艾力",
    "阿不都",
    "热合曼",
    "吐尔逊",
    "艾山",
    "玉苏甫",
    "阿迪力",
    "努尔兰",
    "伊万",
    "谢尔盖",
    "弗拉基米尔",
    "安德烈",
    "阿列克谢",
    "巴特尔",
    "苏和",
)
DOT_GIVEN_F = (
    "古丽",
    "阿依古丽",
    "热依拉",
    "帕提古丽",
    "迪丽努尔",
    "米娜",
    "娜塔莎",
    "安娜",
    "伊琳娜",
    "玛丽娜",
    "叶莲娜",
    "其其格",
    "萨仁",
)
DOT_FAMILY = (
    "艾力",
    "阿不都拉",
    "吐尔逊",
    "买买提",
    "依明",
    "托合提",
    "卡德尔",
    "彼得罗夫",
    "伊万诺夫",
    "斯米尔诺夫",
    "库兹涅佐夫",
    "巴图",
    "阿木尔",
    "努尔",
)

#: The look-alike dots people type instead of ``·`` U+00B7 (registry-api.md §4.2; normalize.py):
#: ``•`` U+2022, ``．`` U+FF0E, ``・`` U+30FB.
LOOKALIKE_DOTS = ("\u2022", "\uff0e", "\u30fb")

#: Rare name characters outside the BMP (CJK Extensions B–G), as some people's names have them.
NON_BMP_CHARS = ("𠀋", "𡈽", "𪚥", "𠮷", "𬱖", "𫖮", "𬌗", "𬍛", "𫟹", "𪸩", "𬀩", "𫓶", "𰻝")

#: Latin-letter names of foreign volunteers (passport holders), ``given family``.
FOREIGN_GIVEN = ("Ivan", "Anna", "Sergei", "Olga", "Minjun", "Jiwoo", "Yuki", "Daniel", "Maria", "Aleksei")
FOREIGN_FAMILY = ("Petrov", "Ivanova", "Kim", "Park", "Sato", "Smith", "Novikov", "Lee", "Popova", "Brown")

#: Stems of place names (街道, 镇, 乡, 社区, 村): two characters each.
PLACE_STEMS = (
    "和兴",
    "花园",
    "大成",
    "奋斗",
    "曲线",
    "通达",
    "新华",
    "建设",
    "友谊",
    "胜利",
    "光明",
    "红旗",
    "东风",
    "文化",
    "长江",
    "黄河",
    "松江",
    "民主",
    "振兴",
    "幸福",
    "团结",
    "繁荣",
    "兴华",
    "新兴",
    "铁路",
    "站前",
    "北山",
    "南山",
    "西城",
    "东城",
    "前进",
    "红星",
    "永安",
    "长安",
    "太平",
    "安和",
    "民安",
    "保安",
    "先锋",
    "和平",
    "新春",
    "朝阳",
    "向阳",
    "星光",
    "富强",
    "永丰",
    "丰收",
    "万宝",
    "庆丰",
    "双井",
    "三合",
    "四方",
    "五星",
    "六合",
    "七星",
    "八里",
    "九龙",
    "十里",
    "金河",
    "银河",
    "柳树",
    "榆林",
    "杨树",
    "松林",
    "桦林",
    "青山",
    "绿水",
    "清河",
    "白杨",
    "红光",
    "新民",
    "新立",
    "新发",
    "新建",
    "新城",
    "新村",
    "中心",
    "中华",
    "中兴",
    "安静",
    "安庆",
    "吉祥",
    "福安",
    "福兴",
    "兴旺",
    "兴隆",
    "隆盛",
    "荣华",
    "宏伟",
    "宏图",
    "跃进",
    "建华",
    "建国",
    "建业",
    "工农",
    "工业",
    "农丰",
    "林海",
    "雪乡",
    "冰城",
    "江畔",
    "江北",
    "江南",
    "湖滨",
    "河西",
    "河东",
    "山河",
    "草原",
    "龙泉",
    "龙江",
    "凤凰",
    "鹤鸣",
    "天恒",
    "文昌",
    "学府",
    "和谐",
    "阳光",
    "春华",
    "秋实",
    "明珠",
    "嘉园",
    "锦绣",
    "百合",
    "丁香",
    "紫丁",
    "海城",
)


def weighted_choice(rng: random.Random, items: tuple[tuple[str, int], ...], total: int) -> str:
    """Pick one item of ``(value, weight)`` pairs, ``total`` being the sum of the weights."""
    r = rng.random() * total
    for value, weight in items:
        r -= weight
        if r < 0:
            return value
    return items[-1][0]


SURNAME_TOTAL = sum(w for _, w in SURNAMES)


def han_name(rng: random.Random, gender: str) -> str:
    """A Han-style name: a surname and one or two given-name characters matching ``gender`` (``M``/``F``)."""
    surname = weighted_choice(rng, SURNAMES, SURNAME_TOTAL)
    pool = GIVEN_M if gender == "M" else GIVEN_F
    if rng.random() < 0.3:
        return surname + rng.choice(pool)
    first = rng.choice(GIVEN_ANY) if rng.random() < 0.4 else rng.choice(pool)
    return surname + first + rng.choice(pool)


def dot_name(rng: random.Random, gender: str) -> str:
    """A minority or transliterated foreign name with ``·`` U+00B7 between its parts, e.g. ``买买提·艾力``."""
    given = rng.choice(DOT_GIVEN_M if gender == "M" else DOT_GIVEN_F)
    family = rng.choice(DOT_FAMILY)
    if family == given:
        family = DOT_FAMILY[(DOT_FAMILY.index(family) + 1) % len(DOT_FAMILY)]
    return f"{given}\u00b7{family}"


def foreign_name(rng: random.Random) -> str:
    """A Latin-letter foreign name, ``given family`` (registry-api.md §4.2: Latin letters, spaces)."""
    return f"{rng.choice(FOREIGN_GIVEN)} {rng.choice(FOREIGN_FAMILY)}"


def with_non_bmp(rng: random.Random, name: str) -> str:
    """``name`` with its last character replaced by a rare character outside the BMP."""
    return name[:-1] + rng.choice(NON_BMP_CHARS)
