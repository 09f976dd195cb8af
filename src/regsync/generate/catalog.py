"""What the organizations and activities are about.

Service categories, the provincial departments of the specialized line, activity titles, volunteer skills.

Sources: registry-api.md §6 (the category codes), §4.1 (the levels of both lines); the departments are
the kind of 省直部门 that run a 专项志愿服务总队 (共青团, 卫健, 教育, 民政, 应急, 文旅 …).
"""

from __future__ import annotations

from dataclasses import dataclass

#: registry-api.md §6, in its order.
CATEGORIES: tuple[str, ...] = (
    "COMMUNITY",
    "POVERTY_RELIEF",
    "ELDERLY_DISABLED",
    "CHILDREN",
    "EDUCATION",
    "HEALTH",
    "EMERGENCY",
    "CULTURE",
    "ENVIRONMENT",
    "LEGAL",
    "CIVILITY",
    "BLOOD_DONATION",
    "ANTI_DRUG",
    "EVENTS",
    "OTHER",
)


@dataclass(frozen=True, slots=True)
class Department:
    """A provincial department that leads a specialized line (省直部门专项志愿服务总队).

    Attributes:
        province_name: its short name at province level, e.g. ``"黑龙江省卫健委"``.
        city_tpl: its city-level counterpart, ``{}`` = the city's name, e.g. ``"{}卫健委"``.
        county_tpl: its county-level counterpart, ``{}`` = the county's name, e.g. ``"{}卫健局"``.
        categories: its service categories (registry-api.md §6), the first being its main one.
        theme: the word in its grassroots teams' names, e.g. ``"健康义诊"``.
        weight: relative number of teams.
    """

    province_name: str
    city_tpl: str
    county_tpl: str
    categories: tuple[str, ...]
    theme: str
    weight: int


#: In order of size: the first ones are kept at small scales.
DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "共青团黑龙江省委",
        "共青团{}委",
        "共青团{}委",
        ("COMMUNITY", "CHILDREN", "EVENTS", "CIVILITY"),
        "青年",
        30,
    ),
    Department("黑龙江省卫健委", "{}卫健委", "{}卫健局", ("HEALTH", "BLOOD_DONATION"), "健康义诊", 14),
    Department("黑龙江省教育厅", "{}教育局", "{}教育局", ("EDUCATION", "CHILDREN"), "爱心支教", 14),
    Department(
        "黑龙江省民政厅",
        "{}民政局",
        "{}民政局",
        ("ELDERLY_DISABLED", "POVERTY_RELIEF", "COMMUNITY"),
        "邻里守望",
        12,
    ),
    Department("黑龙江省应急管理厅", "{}应急管理局", "{}应急管理局", ("EMERGENCY",), "应急救援", 6),
    Department("黑龙江省文化和旅游厅", "{}文旅局", "{}文旅局", ("CULTURE", "EVENTS"), "文化惠民", 6),
    Department("黑龙江省生态环境厅", "{}生态环境局", "{}生态环境分局", ("ENVIRONMENT",), "绿色环保", 5),
    Department("黑龙江省司法厅", "{}司法局", "{}司法局", ("LEGAL",), "法律援助", 5),
    Department("黑龙江省妇联", "{}妇联", "{}妇联", ("CHILDREN", "COMMUNITY", "ELDERLY_DISABLED"), "巾帼", 6),
    Department("黑龙江省残联", "{}残联", "{}残联", ("ELDERLY_DISABLED",), "助残", 4),
    Department(
        "黑龙江省红十字会",
        "{}红十字会",
        "{}红十字会",
        ("HEALTH", "EMERGENCY", "BLOOD_DONATION"),
        "红十字救护",
        4,
    ),
    Department("黑龙江省公安厅", "{}公安局", "{}公安分局", ("CIVILITY", "ANTI_DRUG"), "平安守护", 4),
    Department("黑龙江省科协", "{}科协", "{}科协", ("EDUCATION",), "科普", 3),
    Department("黑龙江省总工会", "{}总工会", "{}总工会", ("COMMUNITY", "OTHER"), "职工", 3),
    Department("黑龙江省农业农村厅", "{}农业农村局", "{}农业农村局", ("POVERTY_RELIEF",), "助农兴农", 3),
    Department(
        "黑龙江省退役军人事务厅",
        "{}退役军人事务局",
        "{}退役军人事务局",
        ("COMMUNITY", "EMERGENCY"),
        "老兵",
        3,
    ),
    Department("黑龙江省体育局", "{}体育局", "{}体育局", ("EVENTS", "CULTURE"), "全民健身", 2),
    Department("黑龙江省禁毒办", "{}禁毒办", "{}禁毒办", ("ANTI_DRUG",), "禁毒宣传", 2),
    Department("黑龙江省交通运输厅", "{}交通运输局", "{}交通运输局", ("CIVILITY",), "文明交通", 2),
    Department("黑龙江省市场监管局", "{}市场监管局", "{}市场监管局", ("LEGAL", "COMMUNITY"), "消费维权", 2),
    Department("黑龙江省住建厅", "{}住建局", "{}住建局", ("COMMUNITY", "ENVIRONMENT"), "美好家园", 2),
    Department(
        "黑龙江省林草局", "{}林业和草原局", "{}林业和草原局", ("ENVIRONMENT", "EMERGENCY"), "护林防火", 2
    ),
    Department("黑龙江省文联", "{}文联", "{}文联", ("CULTURE",), "文艺", 2),
    Department("黑龙江省关工委", "{}关工委", "{}关工委", ("CHILDREN", "EDUCATION"), "关心下一代", 2),
    Department("黑龙江省水利厅", "{}水利局", "{}水利局", ("ENVIRONMENT",), "河湖守护", 1),
    Department("黑龙江省气象局", "{}气象局", "{}气象局", ("EMERGENCY", "EDUCATION"), "气象科普", 1),
    Department("黑龙江省税务局", "{}税务局", "{}税务局", ("LEGAL", "OTHER"), "税收宣传", 1),
    Department("黑龙江省科技厅", "{}科技局", "{}科技局", ("EDUCATION",), "科技服务", 1),
    Department("黑龙江省中医药管理局", "{}中医药管理局", "{}中医药管理局", ("HEALTH",), "中医义诊", 1),
    Department("黑龙江省商务厅", "{}商务局", "{}商务局", ("OTHER", "POVERTY_RELIEF"), "电商助农", 1),
    Department("黑龙江省自然资源厅", "{}自然资源局", "{}自然资源局", ("ENVIRONMENT",), "国土绿化", 1),
    Department("黑龙江省邮政管理局", "{}邮政管理局", "{}邮政管理局", ("OTHER", "COMMUNITY"), "邮政", 1),
)

#: Activity title stems by category (registry-api.md §4.4: a title has 2–100 characters).
ACTIVITY_TITLES: dict[str, tuple[str, ...]] = {
    "COMMUNITY": ("社区环境整治", "邻里互助服务", "楼道清理", "社区便民服务", "垃圾分类宣传"),
    "POVERTY_RELIEF": ("乡村振兴帮扶", "爱心助农直播", "结对帮扶走访"),
    "ELDERLY_DISABLED": ("关爱空巢老人走访", "助残服务日", "敬老院陪伴", "老年人智能手机教学"),
    "CHILDREN": ("关爱留守儿童", "假期课业辅导", "儿童安全教育"),
    "EDUCATION": ("爱心支教", "科普进校园", "读书分享会"),
    "HEALTH": ("义诊进社区", "健康知识讲座", "急救技能培训", "家庭医生签约宣传"),
    "EMERGENCY": ("防汛抗洪值守", "森林防火宣传", "应急救护演练", "冬季除雪保畅通"),
    "CULTURE": ("文化惠民演出", "冰雪文化节服务", "非遗展示"),
    "ENVIRONMENT": ("松花江畔净滩", "植树造林", "湿地保护宣传", "护河巡河"),
    "LEGAL": ("法律咨询进社区", "普法宣传", "反诈宣传"),
    "CIVILITY": ("文明交通引导", "文明城市创建", "学雷锋志愿服务"),
    "BLOOD_DONATION": ("无偿献血宣传", "献血屋服务"),
    "ANTI_DRUG": ("禁毒知识宣传", "6·26国际禁毒日宣传"),
    "EVENTS": ("哈尔滨国际冰雪节服务", "马拉松赛事服务", "亚冬会城市志愿服务"),
    "OTHER": ("便民服务", "志愿服务站值守"),
}

#: Skills volunteers list (registry-api.md §4.2: ≤ 10 items, each ≤ 20 characters).
SKILLS: tuple[str, ...] = (
    "急救",
    "心理咨询",
    "外语翻译",
    "俄语翻译",
    "驾驶",
    "摄影摄像",
    "计算机",
    "法律咨询",
    "医疗护理",
    "教育辅导",
    "文艺表演",
    "手语",
    "厨艺",
    "家电维修",
    "体育指导",
    "书法绘画",
    "应急救援",
    "冰雪运动",
    "理发",
    "新媒体运营",
)

#: Reasons a service record was revoked (``REVOKED``, registry-api.md §4.5).
REVOKE_REASONS: tuple[str, ...] = ("录入错误", "重复录入", "未实际参加活动", "时长核减")
