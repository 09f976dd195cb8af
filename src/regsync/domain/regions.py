"""Heilongjiang's administrative divisions (黑龙江省行政区划), for the data generator.

Sources:

* GB/T 2260 (中华人民共和国行政区划代码), as published by the Ministry of Civil Affairs for 2023: the 13
  prefecture-level divisions of province ``23`` and their current county-level divisions (市辖区, 县,
  县级市), with their real 6-digit codes and names. ``regionCode`` of orgs, activities and volunteers is
  always one of :data:`COUNTIES` (registry-api.md §4.1, §4.2).
* The 12-digit 统计用区划代码 below a county (National Bureau of Statistics) is *derived*, not real: county
  code + 3-digit township part (``001``–``099`` 街道, ``1xx`` 镇, ``2xx`` 乡) + 3-digit village part (``0xx``
  社区/居委会, ``2xx`` 村委会), as NBS numbers them.
* The code history of each county (which older code a person born there in a given year carries in the
  first 6 characters of the ID number, GB 11643-1999 §5.2: the area code is the *birth* place's, and it
  keeps codes later retired), as python-stdnum's ``cn/loc`` table records it, because
  ``stdnum.cn.ric.is_valid`` checks that the area code existed in the birth year: :data:`BIRTH_CODE_CHAINS`.
* Weights are the counties' resident populations of the 2020 census in units of 10 000, rounded, so that
  Harbin is the biggest city (its share ≈ 31 %).
"""

from __future__ import annotations

from dataclasses import dataclass

PROVINCE_CODE = "23"
PROVINCE_NAME = "黑龙江省"


@dataclass(frozen=True, slots=True)
class City:
    """A prefecture-level division (地级市 or 地区).

    Attributes:
        code: 4 digits, e.g. ``"2301"``; its GB/T 2260 code is ``code + "00"``.
        name: e.g. ``"哈尔滨市"``.
        phone_area: the long-distance area code of its landlines, e.g. ``"0451"``.
        landline_digits: digits of a local landline number (8 in Harbin, 7 elsewhere).
    """

    code: str
    name: str
    phone_area: str
    landline_digits: int


@dataclass(frozen=True, slots=True)
class County:
    """A county-level division (市辖区, 县, 县级市).

    Attributes:
        code: the 6-digit GB/T 2260 code, e.g. ``"230103"``.
        name: e.g. ``"南岗区"``.
        weight: resident population, in 10 000 people (2020 census, rounded).
    """

    code: str
    name: str
    weight: int

    @property
    def city_code(self) -> str:
        """The 4-digit code of the prefecture-level division it belongs to."""
        return self.code[:4]

    @property
    def kind(self) -> str:
        """``"district"`` (市辖区: streets), ``"county"`` (县: towns and townships) or ``"city"`` (县级市)."""
        if self.name.endswith("区"):
            return "district"
        if self.name.endswith("县"):
            return "county"
        return "city"


CITIES: tuple[City, ...] = (
    City("2301", "哈尔滨市", "0451", 8),
    City("2302", "齐齐哈尔市", "0452", 7),
    City("2303", "鸡西市", "0467", 7),
    City("2304", "鹤岗市", "0468", 7),
    City("2305", "双鸭山市", "0469", 7),
    City("2306", "大庆市", "0459", 7),
    City("2307", "伊春市", "0458", 7),
    City("2308", "佳木斯市", "0454", 7),
    City("2309", "七台河市", "0464", 7),
    City("2310", "牡丹江市", "0453", 7),
    City("2311", "黑河市", "0456", 7),
    City("2312", "绥化市", "0455", 7),
    City("2327", "大兴安岭地区", "0457", 7),
)

CITY_BY_CODE: dict[str, City] = {c.code: c for c in CITIES}

COUNTIES: tuple[County, ...] = (
    # 2301 哈尔滨市
    County("230102", "道里区", 97),
    County("230103", "南岗区", 128),
    County("230104", "道外区", 77),
    County("230108", "平房区", 25),
    County("230109", "松北区", 41),
    County("230110", "香坊区", 106),
    County("230111", "呼兰区", 62),
    County("230112", "阿城区", 50),
    County("230113", "双城区", 60),
    County("230123", "依兰县", 27),
    County("230124", "方正县", 17),
    County("230125", "宾县", 48),
    County("230126", "巴彦县", 46),
    County("230127", "木兰县", 20),
    County("230128", "通河县", 16),
    County("230129", "延寿县", 19),
    County("230183", "尚志市", 45),
    County("230184", "五常市", 71),
    # 2302 齐齐哈尔市
    County("230202", "龙沙区", 31),
    County("230203", "建华区", 27),
    County("230204", "铁锋区", 30),
    County("230205", "昂昂溪区", 6),
    County("230206", "富拉尔基区", 22),
    County("230207", "碾子山区", 6),
    County("230208", "梅里斯达斡尔族区", 14),
    County("230221", "龙江县", 43),
    County("230223", "依安县", 26),
    County("230224", "泰来县", 22),
    County("230225", "甘南县", 26),
    County("230227", "富裕县", 20),
    County("230229", "克山县", 30),
    County("230230", "克东县", 15),
    County("230231", "拜泉县", 34),
    County("230281", "讷河市", 45),
    # 2303 鸡西市
    County("230302", "鸡冠区", 31),
    County("230303", "恒山区", 12),
    County("230304", "滴道区", 7),
    County("230305", "梨树区", 5),
    County("230306", "城子河区", 10),
    County("230307", "麻山区", 2),
    County("230321", "鸡东县", 22),
    County("230381", "虎林市", 23),
    County("230382", "密山市", 36),
    # 2304 鹤岗市
    County("230402", "向阳区", 9),
    County("230403", "工农区", 11),
    County("230404", "南山区", 9),
    County("230405", "兴安区", 4),
    County("230406", "东山区", 12),
    County("230407", "兴山区", 2),
    County("230421", "萝北县", 17),
    County("230422", "绥滨县", 11),
    # 2305 双鸭山市
    County("230502", "尖山区", 22),
    County("230503", "岭东区", 4),
    County("230505", "四方台区", 6),
    County("230506", "宝山区", 12),
    County("230521", "集贤县", 20),
    County("230522", "友谊县", 8),
    County("230523", "宝清县", 28),
    County("230524", "饶河县", 11),
    # 2306 大庆市
    County("230602", "萨尔图区", 58),
    County("230603", "龙凤区", 40),
    County("230604", "让胡路区", 62),
    County("230605", "红岗区", 20),
    County("230606", "大同区", 19),
    County("230621", "肇州县", 26),
    County("230622", "肇源县", 27),
    County("230623", "林甸县", 18),
    County("230624", "杜尔伯特蒙古族自治县", 20),
    # 2307 伊春市
    County("230717", "伊美区", 15),
    County("230718", "乌翠区", 7),
    County("230719", "友好区", 6),
    County("230722", "嘉荫县", 5),
    County("230723", "汤旺县", 4),
    County("230724", "丰林县", 4),
    County("230725", "大箐山县", 3),
    County("230726", "南岔县", 6),
    County("230751", "金林区", 5),
    County("230781", "铁力市", 23),
    # 2308 佳木斯市
    County("230803", "向阳区", 26),
    County("230804", "前进区", 12),
    County("230805", "东风区", 11),
    County("230811", "郊区", 27),
    County("230822", "桦南县", 33),
    County("230826", "桦川县", 17),
    County("230828", "汤原县", 19),
    County("230881", "同江市", 14),
    County("230882", "富锦市", 38),
    County("230883", "抚远市", 8),
    # 2309 七台河市
    County("230902", "新兴区", 23),
    County("230903", "桃山区", 15),
    County("230904", "茄子河区", 9),
    County("230921", "勃利县", 22),
    # 2310 牡丹江市
    County("231002", "东安区", 18),
    County("231003", "阳明区", 22),
    County("231004", "爱民区", 27),
    County("231005", "西安区", 24),
    County("231025", "林口县", 27),
    County("231081", "绥芬河市", 19),
    County("231083", "海林市", 32),
    County("231084", "宁安市", 35),
    County("231085", "穆棱市", 22),
    County("231086", "东宁市", 19),
    # 2311 黑河市
    County("231102", "爱辉区", 25),
    County("231123", "逊克县", 7),
    County("231124", "孙吴县", 8),
    County("231181", "北安市", 36),
    County("231182", "五大连池市", 25),
    County("231183", "嫩江市", 41),
    # 2312 绥化市
    County("231202", "北林区", 74),
    County("231221", "望奎县", 33),
    County("231222", "兰西县", 35),
    County("231223", "青冈县", 34),
    County("231224", "庆安县", 30),
    County("231225", "明水县", 22),
    County("231226", "绥棱县", 21),
    County("231281", "安达市", 37),
    County("231282", "肇东市", 74),
    County("231283", "海伦市", 52),
    # 2327 大兴安岭地区 (加格达奇区 etc. have 统计用区划代码 only, not GB/T 2260 codes)
    County("232701", "漠河市", 6),
    County("232721", "呼玛县", 4),
    County("232722", "塔河县", 7),
)

COUNTY_BY_CODE: dict[str, County] = {c.code: c for c in COUNTIES}

#: Universities that run a 高校志愿服务大队 (a ``DISTRICT_BRIGADE`` under their city's corps, registry-api.md
#: §4.1), with the county they are in; in order of size, the first ones kept at small scales.
UNIVERSITIES: tuple[tuple[str, str], ...] = (
    ("哈尔滨工业大学", "230103"),
    ("黑龙江大学", "230103"),
    ("东北林业大学", "230110"),
    ("哈尔滨工程大学", "230103"),
    ("东北农业大学", "230110"),
    ("哈尔滨医科大学", "230103"),
    ("哈尔滨师范大学", "230111"),
    ("哈尔滨理工大学", "230103"),
    ("东北石油大学", "230604"),
    ("齐齐哈尔大学", "230203"),
    ("佳木斯大学", "230803"),
    ("哈尔滨商业大学", "230109"),
    ("黑龙江中医药大学", "230110"),
    ("黑龙江八一农垦大学", "230604"),
    ("牡丹江师范学院", "231004"),
    ("黑龙江科技大学", "230109"),
    ("牡丹江医学院", "231004"),
    ("绥化学院", "231202"),
    ("黑河学院", "231102"),
    ("哈尔滨学院", "230103"),
    ("哈尔滨体育学院", "230103"),
    ("哈尔滨音乐学院", "230109"),
    ("黑龙江工程学院", "230104"),
    ("哈尔滨金融学院", "230110"),
    ("黑龙江工业学院", "230302"),
    ("大庆师范学院", "230604"),
    ("齐齐哈尔医学院", "230202"),
    ("黑龙江财经学院", "230109"),
    ("黑龙江外国语学院", "230111"),
    ("黑龙江东方学院", "230110"),
    ("哈尔滨华德学院", "230111"),
)

#: For each current county, the codes a person born there carries, newest first, as ``(code, first year,
#: last year)`` with ``None`` for an open end: the code valid in the birth year is used (GB 11643-1999;
#: years as in python-stdnum's ``cn/loc`` table, which ``stdnum.cn.ric.is_valid`` checks).
BIRTH_CODE_CHAINS: dict[str, tuple[tuple[str, int | None, int | None], ...]] = {
    "230102": (("230102", 1983, None),),
    "230103": (("230103", 1983, None),),
    "230104": (("230104", 1983, None),),
    "230108": (("230108", 1983, None),),
    "230109": (("230109", 2004, None),),
    "230110": (
        ("230110", 2006, None),
        ("230106", 1983, 2006),
    ),
    "230111": (
        ("230111", 2004, None),
        ("230121", 1983, 2004),
        ("232123", None, 1983),
    ),
    "230112": (
        ("230112", 2006, None),
        ("230181", 1989, 2006),
        ("239002", 1987, 1989),
        ("230122", 1983, 1987),
        ("232121", None, 1983),
    ),
    "230113": (
        ("230113", 2014, None),
        ("230182", 1996, 2014),
        ("232101", 1988, 1996),
        ("232124", None, 1988),
    ),
    "230123": (
        ("230123", 1991, None),
        ("230823", 1984, 1991),
        ("232423", None, 1984),
    ),
    "230124": (
        ("230124", 1991, None),
        ("232130", None, 1991),
    ),
    "230125": (
        ("230125", 1991, None),
        ("232122", None, 1991),
    ),
    "230126": (
        ("230126", 1996, None),
        ("232126", None, 1996),
    ),
    "230127": (
        ("230127", 1996, None),
        ("232127", None, 1996),
    ),
    "230128": (
        ("230128", 1996, None),
        ("232128", None, 1996),
    ),
    "230129": (
        ("230129", 1996, None),
        ("232131", None, 1996),
    ),
    "230183": (
        ("230183", 1996, None),
        ("232102", 1988, 1996),
        ("232129", None, 1988),
    ),
    "230184": (
        ("230184", 1996, None),
        ("232103", 1993, 1996),
        ("232125", None, 1993),
    ),
    "230202": (("230202", 1983, None),),
    "230203": (("230203", 1983, None),),
    "230204": (("230204", 1983, None),),
    "230205": (("230205", 1983, None),),
    "230206": (("230206", 1983, None),),
    "230207": (("230207", 1983, None),),
    "230208": (("230208", 1988, None),),
    "230221": (
        ("230221", 1984, None),
        ("232221", None, 1984),
    ),
    "230223": (
        ("230223", 1984, None),
        ("232223", None, 1984),
    ),
    "230224": (
        ("230224", 1984, None),
        ("232224", None, 1984),
    ),
    "230225": (
        ("230225", 1984, None),
        ("232225", None, 1984),
    ),
    "230227": (
        ("230227", 1984, None),
        ("232227", None, 1984),
    ),
    "230229": (
        ("230229", 1984, None),
        ("232229", None, 1984),
    ),
    "230230": (
        ("230230", 1984, None),
        ("232230", None, 1984),
    ),
    "230231": (
        ("230231", 1984, None),
        ("232231", None, 1984),
    ),
    "230281": (
        ("230281", 1992, None),
        ("230222", 1984, 1992),
        ("232222", None, 1984),
    ),
    "230302": (("230302", 1983, None),),
    "230303": (("230303", 1983, None),),
    "230304": (("230304", 1983, None),),
    "230305": (("230305", 1983, None),),
    "230306": (("230306", 1983, None),),
    "230307": (("230307", 1983, None),),
    "230321": (
        ("230321", 1983, None),
        ("232526", None, 1983),
    ),
    "230381": (
        ("230381", 1996, None),
        ("230322", 1993, 1996),
        ("231027", 1983, 1993),
        ("232528", None, 1983),
    ),
    "230382": (
        ("230382", 1996, None),
        ("231082", 1989, 1996),
        ("239006", 1988, 1989),
        ("231026", 1983, 1988),
        ("232527", None, 1983),
    ),
    "230402": (("230402", 1983, None),),
    "230403": (("230403", 1983, None),),
    "230404": (("230404", 1983, None),),
    "230405": (("230405", 1983, None),),
    "230406": (("230406", 1983, None),),
    "230407": (("230407", 1983, None),),
    "230421": (
        ("230421", 1987, None),
        ("230830", 1984, 1987),
        ("232430", None, 1984),
    ),
    "230422": (
        ("230422", 1987, None),
        ("230829", 1984, 1987),
        ("232429", None, 1984),
    ),
    "230502": (("230502", 1983, None),),
    "230503": (("230503", 1983, None),),
    "230505": (("230505", 1983, None),),
    "230506": (("230506", 1983, None),),
    "230521": (
        ("230521", 1987, None),
        ("230825", 1984, 1987),
        ("232425", None, 1984),
    ),
    "230522": (
        ("230522", 1991, None),
        ("230824", 1984, 1991),
        ("232434", 1984, 1984),
    ),
    "230523": (
        ("230523", 1991, None),
        ("230827", 1984, 1991),
        ("232427", None, 1984),
    ),
    "230524": (
        ("230524", 1993, None),
        ("230832", 1984, 1993),
        ("232432", None, 1984),
    ),
    "230602": (("230602", 1983, None),),
    "230603": (("230603", 1983, None),),
    "230604": (("230604", 1983, None),),
    "230605": (("230605", 1983, None),),
    "230606": (("230606", 1983, None),),
    "230621": (
        ("230621", 1992, None),
        ("232329", None, 1992),
    ),
    "230622": (
        ("230622", 1992, None),
        ("232328", None, 1992),
    ),
    "230623": (
        ("230623", 1992, None),
        ("230228", 1984, 1992),
        ("232228", None, 1984),
    ),
    "230624": (
        ("230624", 1992, None),
        ("230226", 1984, 1992),
        ("232226", None, 1984),
    ),
    "230717": (
        ("230717", 2019, None),
        ("230702", 1983, 2019),
    ),
    "230718": (
        ("230718", 2019, None),
        ("230706", 1983, 2019),
        ("230711", 1983, 2019),
    ),
    "230719": (
        ("230719", 2019, None),
        ("230704", 1983, 2019),
    ),
    "230722": (("230722", None, None),),
    "230723": (
        ("230723", 2019, None),
        ("230712", 1983, 2019),
    ),
    "230724": (
        ("230724", 2019, None),
        ("230710", 1983, 2019),
    ),
    "230725": (
        ("230725", 2019, None),
        ("230713", 1983, 2019),
    ),
    "230726": (
        ("230726", 2019, None),
        ("230703", 1983, 2019),
    ),
    "230751": (
        ("230751", 2019, None),
        ("230705", 1983, 2019),
    ),
    "230781": (
        ("230781", 1989, None),
        ("239005", 1988, 1989),
        ("230721", None, 1988),
    ),
    "230803": (("230803", 1983, None),),
    "230804": (("230804", 1983, None),),
    "230805": (("230805", 1983, None),),
    "230811": (("230811", 1983, None),),
    "230822": (
        ("230822", 1984, None),
        ("232422", None, 1984),
    ),
    "230826": (
        ("230826", 1984, None),
        ("232426", None, 1984),
    ),
    "230828": (
        ("230828", 1984, None),
        ("232428", None, 1984),
    ),
    "230881": (
        ("230881", 1989, None),
        ("239003", 1987, 1989),
        ("230831", 1984, 1987),
        ("232431", None, 1984),
    ),
    "230882": (
        ("230882", 1989, None),
        ("239004", 1988, 1989),
        ("230821", 1984, 1988),
        ("232421", None, 1984),
    ),
    "230883": (
        ("230883", 2016, None),
        ("230833", 1984, 2016),
        ("232433", None, 1984),
    ),
    "230902": (("230902", 1984, None),),
    "230903": (("230903", 1984, None),),
    "230904": (("230904", 1984, None),),
    "230921": (
        ("230921", 1983, None),
        ("232424", None, 1983),
    ),
    "231002": (("231002", 1983, None),),
    "231003": (("231003", 1983, None),),
    "231004": (("231004", 1983, None),),
    "231005": (("231005", 1983, None),),
    "231025": (
        ("231025", 1983, None),
        ("232525", None, 1983),
    ),
    "231081": (
        ("231081", 1989, None),
        ("239001", 1986, 1989),
        ("231020", 1983, 1986),
        ("232502", None, 1983),
    ),
    "231083": (
        ("231083", 1992, None),
        ("231022", 1983, 1992),
        ("232522", None, 1983),
    ),
    "231084": (
        ("231084", 1993, None),
        ("231021", 1983, 1993),
        ("232521", None, 1983),
    ),
    "231085": (
        ("231085", 1995, None),
        ("231023", 1983, 1995),
        ("232523", None, 1983),
    ),
    "231086": (
        ("231086", 2015, None),
        ("231024", 1983, 2015),
        ("232524", None, 1983),
    ),
    "231102": (
        ("231102", 1993, None),
        ("232601", None, 1993),
    ),
    "231123": (
        ("231123", 1993, None),
        ("232625", None, 1993),
    ),
    "231124": (
        ("231124", 1993, None),
        ("232626", None, 1993),
    ),
    "231181": (
        ("231181", 1993, None),
        ("232602", 1982, 1993),
        ("232621", None, 1982),
    ),
    "231182": (
        ("231182", 1993, None),
        ("232603", 1983, 1993),
    ),
    "231183": (
        ("231183", 2019, None),
        ("231121", 1993, 2019),
        ("232622", None, 1993),
    ),
    "231202": (
        ("231202", 1999, None),
        ("232301", 1982, 1999),
        ("232323", None, 1982),
    ),
    "231221": (
        ("231221", 1999, None),
        ("232324", None, 1999),
    ),
    "231222": (
        ("231222", 1999, None),
        ("232325", None, 1999),
    ),
    "231223": (
        ("231223", 1999, None),
        ("232326", None, 1999),
    ),
    "231224": (
        ("231224", 1999, None),
        ("232330", None, 1999),
    ),
    "231225": (
        ("231225", 1999, None),
        ("232331", None, 1999),
    ),
    "231226": (
        ("231226", 1999, None),
        ("232332", None, 1999),
    ),
    "231281": (
        ("231281", 1999, None),
        ("232302", 1984, 1999),
        ("232327", None, 1984),
    ),
    "231282": (
        ("231282", 1999, None),
        ("232303", 1986, 1999),
        ("232322", None, 1986),
    ),
    "231283": (
        ("231283", 1999, None),
        ("232304", 1989, 1999),
        ("232321", None, 1989),
    ),
    "232701": (
        ("232701", 2018, None),
        ("232723", 1981, 2018),
    ),
    "232721": (("232721", None, None),),
    "232722": (("232722", 1981, None),),
}

#: Per city, codes of the city itself or of its predecessor prefecture (地区) for birth years that no
#: county code of :data:`BIRTH_CODE_CHAINS` covers (people born before the county got its code).
CITY_BIRTH_FALLBACK: dict[str, tuple[tuple[str, int | None, int | None], ...]] = {
    "2301": (("230100", None, None),),
    "2302": (("230200", None, None),),
    "2303": (("230300", None, None),),
    "2304": (("230400", None, None),),
    "2305": (("230500", None, None),),
    "2306": (("230600", None, None),),
    "2307": (("230700", None, None),),
    "2308": (("230800", 1983, None), ("232401", None, 1984)),
    "2309": (("230900", 1983, None), ("232402", None, 1984)),
    "2310": (("231000", 1983, None), ("232501", None, 1983)),
    "2311": (("231100", 1993, None), ("232601", None, 1993)),
    "2312": (("231200", 1999, None), ("232301", 1982, 1999), ("232323", None, 1982)),
    "2327": (("232700", None, None),),
}

#: A few birth places in other provinces (the rare volunteer born elsewhere who lives in the province):
#: ``(code, name, first year, last year)``.
OTHER_PROVINCE_BIRTH_AREAS: tuple[tuple[str, str, int | None, int | None], ...] = (
    ("110101", "北京市东城区", None, None),
    ("110105", "北京市朝阳区", None, None),
    ("310104", "上海市徐汇区", None, None),
    ("210102", "沈阳市和平区", 1983, None),
    ("220102", "长春市南关区", 1983, None),
    ("220104", "长春市朝阳区", 1983, None),
    ("152101", "呼伦贝尔盟海拉尔市", None, 2001),
    ("150102", "呼和浩特市新城区", 1983, None),
    ("370102", "济南市历下区", 1983, None),
    ("130102", "石家庄市长安区", 1983, None),
    ("410102", "郑州市中原区", 1983, None),
    ("320102", "南京市玄武区", 1983, None),
)


def _valid(first: int | None, last: int | None, year: int) -> bool:
    return (first is None or year >= first) and (last is None or year <= last)


def birth_codes(county_code: str, year: int) -> list[str]:
    """The area codes a person born in ``county_code``'s area in ``year`` may carry, best first.

    Args:
        county_code: a current county of :data:`COUNTIES`.
        year: the birth year.

    Returns:
        The codes of the county's chain valid in ``year``, then the city's fallback codes valid in
        ``year``; empty if none is (not the case for 1950–2026, checked by the tests).
    """
    chain = BIRTH_CODE_CHAINS.get(county_code, ())
    out = [code for code, first, last in chain if _valid(first, last, year)]
    out += [code for code, first, last in CITY_BIRTH_FALLBACK[county_code[:4]] if _valid(first, last, year)]
    return out


def other_province_codes(year: int) -> list[str]:
    """The codes of :data:`OTHER_PROVINCE_BIRTH_AREAS` valid in ``year``."""
    return [code for code, _name, first, last in OTHER_PROVINCE_BIRTH_AREAS if _valid(first, last, year)]


def street_code(county_code: str, township: int) -> str:
    """A 9-digit township-level prefix of the 统计用区划代码: county code + 3 digits.

    Args:
        county_code: 6 digits.
        township: ``1``–``99`` for a 街道, ``100``–``199`` for a 镇, ``200``–``299`` for a 乡 (NBS scheme).
    """
    return f"{county_code}{township:03d}"


def full_street_code(county_code: str, township: int) -> str:
    """The 12-digit 统计用区划代码 of a township (街道/镇/乡): its 9-digit prefix + ``000``."""
    return street_code(county_code, township) + "000"


def community_code(county_code: str, township: int, village: int) -> str:
    """The 12-digit 统计用区划代码 of a community (社区, ``001``–``199``) or village (村, ``200``–``399``)."""
    return f"{street_code(county_code, township)}{village:03d}"
