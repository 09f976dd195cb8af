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

# -------------------------------------------------------------------------------------------------- v1.1 (issue 16)

#: Training titles (培训主题) by ``trainingType`` (registry-api.md §4.6: 通用培训, 岗位培训, 专业培训).
TRAINING_TITLES: dict[str, tuple[str, ...]] = {
    "GENERAL": ("志愿服务通用知识培训", "新注册志愿者通用培训", "志愿服务礼仪与沟通培训", "《志愿服务条例》学习培训",
                "志愿者权益保障与安全常识培训", "学雷锋志愿服务骨干培训"),
    "POST": ("文明交通引导岗位培训", "社区养老服务岗位培训", "赛会志愿服务岗位培训", "图书馆志愿服务岗位培训",
             "政务大厅导办岗位培训", "疫苗接种点志愿服务岗位培训", "景区讲解志愿服务岗位培训"),
    "PROFESSIONAL": ("心肺复苏与AED使用专业培训", "应急救护专业技能培训", "心理援助专业培训", "防汛抢险专业技能培训",
                     "森林防火专业技能培训", "法律援助专业培训", "手语服务专业培训"),
}

#: Where an in-person training is held (培训地点), after the street address.
TRAINING_PLACES: tuple[str, ...] = ("会议室", "党群服务中心", "新时代文明实践站", "社区活动室", "多功能厅", "培训教室")

#: An evaluation's comment (评价内容), when there is one.
EVALUATION_COMMENTS: tuple[str, ...] = (
    "服务热情周到，守时守信。", "工作认真负责，群众反映良好。", "积极主动，团队协作好。", "专业技能突出，值得表扬。",
    "按时到岗，完成服务任务。", "服务态度好，有耐心。", "迟到一次，其余表现良好。")

#: The province's annual commendation scheme (年度嘉许, registry-api.md §4.8 ``PROVINCIAL_ANNUAL``): a volunteer's
#: tiers by ACCEPTED service hours of the year, in hundredths of an hour, highest first, with the tier's name.
VOLUNTEER_TIERS: tuple[tuple[str, int, str], ...] = (
    ("GOLD_EXCELLENCE", 100_000, "卓越金奖"), ("GOLD", 50_000, "金奖"), ("SILVER", 20_000, "银奖"),
    ("BRONZE", 10_000, "铜奖"), ("CARE", 5_000, "爱心奖"))

#: An org's tiers by the count of ACCEPTED service records of the year whose org or station it is, highest first.
ORG_TIERS: tuple[tuple[str, int, str], ...] = (
    ("GOLD", 500, "金奖"), ("SILVER", 200, "银奖"), ("BRONZE", 100, "铜奖"), ("HONOR", 50, "光荣奖"))

#: The scheme's issuer and the short name in its document numbers (黑志协〔2026〕12号).
SCHEME_ISSUER = ("黑龙江省志愿服务联合会", "黑志协")

#: Other commendations of a volunteer (not of a scheme): ``(title, issuer, document number prefix)``; a ``{city}``
#: in an issuer is the city's name, and its prefix the city's first character.
VOLUNTEER_HONOURS: tuple[tuple[str, str, str], ...] = (
    ("优秀志愿者", "{city}精神文明建设委员会办公室", "{c}文明办"),
    ("最美志愿者", "中共黑龙江省委宣传部", "黑宣"),
    ("优秀青年志愿者", "共青团黑龙江省委员会", "黑团"),
    ("学雷锋志愿服务先进个人", "{city}志愿服务联合会", "{c}志协"),
)

#: Other commendations of an org: as :data:`VOLUNTEER_HONOURS`.
ORG_HONOURS: tuple[tuple[str, str, str], ...] = (
    ("优秀志愿服务组织", "{city}精神文明建设委员会办公室", "{c}文明办"),
    ("最佳志愿服务组织", "中共黑龙江省委宣传部", "黑宣"),
    ("学雷锋志愿服务示范站", "{city}志愿服务联合会", "{c}志协"),
)

#: Why a training record or an evaluation was revoked.
REVOKE_REASONS_V11: tuple[str, ...] = ("录入错误", "重复录入", "未实际参加")
