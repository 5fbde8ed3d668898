"""A demo county (温县) with its townships, villages, one user per role and ~200 elders, made deterministically."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import registry
from .clock import today
from .elders import record_assessment, register_elder
from .models.elders import Assessment, Elder, LivingArrangement
from .models.registry import Area, AreaLevel, Role, User
from .organisations import create_organisation
from .rules.assessment import ITEMS, AssessmentReason, score_assessment
from .rules.care import SIX_HELPS
from .rules.idnumber import compute_check_char
from .users import create_user

COUNTY = ("410825", "温县")
# (code, name, [(village code, village name, is_community)])
TOWNSHIPS = (
    (
        "410825001",
        "温泉街道",
        [
            ("410825001001", "子夏社区", True),
            ("410825001002", "慈胜社区", True),
            ("410825001201", "上苑村", False),
        ],
    ),
    (
        "410825100",
        "祥云镇",
        [
            ("410825100201", "祥云村", False),
            ("410825100202", "大玉兰村", False),
            ("410825100203", "安乐寨村", False),
        ],
    ),
    ("410825101", "番田镇", [("410825101201", "番田村", False), ("410825101202", "古贤村", False)]),
)

# username -> (role, display name, area code)
USERS = {
    "caseworker": (Role.CASEWORKER, "王建华（祥云镇经办人）", "410825100"),
    "caseworker2": (Role.CASEWORKER, "赵丽娟（番田镇经办人）", "410825101"),
    "village_assistant": (Role.VILLAGE_ASSISTANT, "李秀梅（祥云村协理员）", "410825100201"),
    "approver": (Role.APPROVER, "张志强（县民政局）", "410825"),
    "provider": (Role.PROVIDER, "温县康乐居家养老服务中心", "410825"),
    "assessor": (Role.ASSESSOR, "刘敏（评估员）", "410825"),
    "facility_admin": (Role.FACILITY_ADMIN, "陈国庆（县社会福利中心）", "410825"),
    "auditor": (Role.AUDITOR, "孙立新（县纪检监督）", "410825"),
    "process_owner": (Role.PROCESS_OWNER, "周文博（流程管理员）", "410825"),
    "admin": (Role.ADMIN, "系统管理员", "410825"),
}

ELDER_COUNT = 200
SEED = 410825


def _pairs(text: str) -> tuple[str, ...]:
    """Split a run of two-character given names."""
    return tuple(text[i : i + 2] for i in range(0, len(text), 2))


_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛闫段雷侯史陶贺顾毛郝龚邵万钱严武戴孔"
)
_MALE_NAMES = _pairs(
    "建国国强保国德胜广才长顺富贵金山振华有福志刚明德树林玉成守信"
    "福林春生满仓东升文华家旺永安庆丰学军铁柱天佑宝山子明万里继光"
)
_FEMALE_NAMES = _pairs(
    "秀英桂兰玉兰凤英桂芳秀兰淑珍翠花素芬玉梅金凤春梅秀珍兰英桂英"
    "玉珍凤兰淑贞月娥巧云爱莲素琴秀芝银花冬梅彩霞荣华菊香改花小娥"
)
_STREETS = ("人民路", "黄河路", "子夏大街", "太极路", "慈胜路", "文化路", "建设路", "东大街", "西大街")
# relation -> (shares the elder's surname, is male)
_RELATIONS = {
    "儿子": (True, True),
    "女儿": (True, False),
    "孙子": (True, True),
    "侄子": (True, True),
    "儿媳": (False, False),
    "女婿": (False, True),
    "外甥女": (False, False),
}


@dataclass
class _Profile:
    """What the generator decided about one elder before it becomes registration data."""

    flags: set[str] = field(default_factory=set)
    arrangement: LivingArrangement = LivingArrangement.WITH_SPOUSE
    grade: int | None = None
    disability: str | None = None  # a target level for a pre-recorded assessment


def load_demo_registry(session: Session, password: str) -> dict:
    """Create the demo county, its users and elders, unless the county is already there."""
    created = session.get(Area, COUNTY[0]) is None
    if created:
        create_areas(session)
        for username, (role, display_name, area_code) in USERS.items():
            create_user(
                session,
                username=username,
                display_name=display_name,
                role=role,
                area_code=area_code,
                password=password,
            )
        admin = session.scalar(select(User).where(User.username == "admin"))
        assessor = session.scalar(select(User).where(User.username == "assessor"))
        _create_organisations(session, admin)
        _create_elders(session, admin, assessor)
        session.flush()
    return {
        "created": created,
        "county": COUNTY[0],
        "logins": {
            username: {"role": role.value, "display_name": display_name, "area_code": area_code}
            for username, (role, display_name, area_code) in USERS.items()
        },
        "counts": {
            "areas": _count(session, Area, Area.code.startswith(COUNTY[0])),
            "users": _count(session, User, User.username.in_(USERS)),
            "elders": _count(session, Elder, Elder.residence_area_code.startswith(COUNTY[0])),
            "assessments": _count(
                session,
                Assessment,
                Assessment.elder_id.in_(
                    select(Elder.id).where(Elder.residence_area_code.startswith(COUNTY[0]))
                ),
            ),
        },
    }


def _count(session: Session, model, condition) -> int:
    return session.scalar(select(func.count()).select_from(model).where(condition)) or 0


# The demo's contracted provider and public nursing home, with the demo accounts that work for them.
PROVIDER_ORGANISATION = {
    "kind": "provider",
    "name": "温县康乐居家养老服务中心",
    "area_code": COUNTY[0],
    "address": "温县子夏大街66号",
    "phone": "0391-6166123",
    "contact": "马红梅",
    "services": list(SIX_HELPS),
    "service_areas": [COUNTY[0]],
}
FACILITY_ORGANISATION = {
    "kind": "facility",
    "name": "温县社会福利中心",
    "area_code": COUNTY[0],
    "address": "温县黄河路18号",
    "phone": "0391-6188001",
    "contact": "陈国庆",
    "beds": {"self_care": 40, "nursing": 60, "dementia": 20},
}
STAFF = {"provider": PROVIDER_ORGANISATION["name"], "facility_admin": FACILITY_ORGANISATION["name"]}


def _create_organisations(session: Session, admin: User) -> None:
    day = today()
    # A purchase contract running from last January to the end of next year, whenever the demo is loaded.
    contract = {"contract_start": date(day.year - 1, 1, 1), "contract_end": date(day.year + 1, 12, 31)}
    made = {
        data["name"]: create_organisation(
            session, admin, {**data, **contract} if data["kind"] == "provider" else data
        )
        for data in (PROVIDER_ORGANISATION, FACILITY_ORGANISATION)
    }
    for username, name in STAFF.items():
        user = session.scalar(select(User).where(User.username == username))
        user.organisation_id = made[name].id
    session.flush()


def create_areas(session: Session) -> None:
    """Create the demo county, its townships and villages (also used by tests that need no people)."""
    session.add(Area(code=COUNTY[0], name=COUNTY[1], level=AreaLevel.COUNTY, parent_code=None))
    session.flush()
    for code, name, _villages in TOWNSHIPS:
        session.add(Area(code=code, name=name, level=AreaLevel.TOWNSHIP, parent_code=COUNTY[0]))
    session.flush()
    for code, _name, villages in TOWNSHIPS:
        for village_code, village_name, _community in villages:
            session.add(Area(code=village_code, name=village_name, level=AreaLevel.VILLAGE, parent_code=code))
    session.flush()


def _create_elders(session: Session, actor: User, assessor: User) -> None:
    rng = random.Random(SEED)
    day = today()
    # Everyone must be 60 or over on the day the demo is loaded; 1925-1965 as the demo promises.
    latest_birth = date(day.year - 60, day.month, min(day.day, 28)) - timedelta(days=1)
    villages = [(code, community) for _code, _name, vs in TOWNSHIPS for code, _n, community in vs]
    used: set[str] = set()
    for index in range(ELDER_COUNT):
        village, community = villages[index % len(villages)]
        birth = _birth_date(rng, index, latest_birth)
        sex_male = rng.random() < 0.47
        number = _id_number(rng, birth, sex_male, used)
        name = rng.choice(_SURNAMES) + rng.choice(_MALE_NAMES if sex_male else _FEMALE_NAMES)
        profile = _profile(rng, day.year - birth.year, community)
        data = {
            "name": name,
            "id_number": number,
            "phone": _phone(rng),
            "hukou_type": "urban" if community and rng.random() < 0.8 else "rural",
            "hukou_area_code": village,
            "residence_area_code": village,
            "address": _address(rng, village, community),
            "living_arrangement": profile.arrangement.value,
            "severe_handicap_grade": profile.grade,
            "contacts": _contacts(rng, name[0]),
            **{flag: True for flag in profile.flags},
        }
        elder = register_elder(session, actor, data)
        if profile.disability is not None:
            result, items = _assessment_result(rng, profile.disability)
            assessed_on = day - timedelta(days=rng.randint(20, 300))
            record_assessment(
                session,
                assessor,
                elder.id,
                result,
                assessed_on,
                AssessmentReason.INITIAL,
                items=items,
            )


def _birth_date(rng: random.Random, index: int, latest: date) -> date:
    # About one in ten is 90 or older; the rest spread over 1936-1965, most in their 60s and 70s. The draw
    # never depends on today, so the demo is the same whenever it is loaded; only a birthday that would
    # make someone younger than 60 on the loading day is moved back.
    if index % 10 == 3:
        start, end = date(1925, 1, 1), date(1935, 12, 31)
    else:
        start, end = date(1936, 1, 1), date(1965, 12, 31)
    return min(start + timedelta(days=rng.randint(0, (end - start).days)), latest)


def _id_number(rng: random.Random, birth: date, male: bool, used: set[str]) -> str:
    while True:
        sequence = rng.randrange(1, 500) * 2 + (1 if male else 0)
        sequence = min(sequence, 999 if male else 998)
        first17 = f"{COUNTY[0]}{birth:%Y%m%d}{sequence:03d}"
        number = first17 + compute_check_char(first17)
        if number not in used:
            used.add(number)
            return number


def _phone(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.2:
        return f"0391-{rng.randint(6000000, 6999999)}"  # 焦作 landline
    return _mobile(rng)


def _mobile(rng: random.Random) -> str:
    return "1" + rng.choice("3589") + "".join(str(rng.randint(0, 9)) for _ in range(9))


def _address(rng: random.Random, village: str, community: bool) -> str:
    if community:
        return f"{rng.choice(_STREETS)}{rng.randint(1, 300)}号{rng.randint(1, 6)}单元{rng.randint(1, 6)}0{rng.randint(1, 4)}"
    return f"{rng.randint(1, 12)}组{rng.randint(1, 80)}号"


def _contacts(rng: random.Random, surname: str) -> list[dict]:
    if rng.random() < 0.15:
        return []
    contacts = []
    for _ in range(1 if rng.random() < 0.7 else 2):
        relation = rng.choice(sorted(_RELATIONS))
        same_surname, male = _RELATIONS[relation]
        family = surname if same_surname else rng.choice(_SURNAMES)
        given = rng.choice(_MALE_NAMES if male else _FEMALE_NAMES)
        contacts.append({"name": family + given, "relation": relation, "phone": _mobile(rng)})
    return contacts


def _profile(rng: random.Random, age: int, community: bool) -> _Profile:
    """Draw support flags in roughly the proportions a county roster shows."""
    p = _Profile()
    roll = rng.random()
    if roll < 0.07:
        p.flags |= {"tekun", "institutional_support" if rng.random() < 0.25 else "home_support"}
    elif roll < 0.19:
        p.flags.add("dibao")
    elif roll < 0.25:
        p.flags.add("near_dibao")

    if "institutional_support" in p.flags:
        p.arrangement = LivingArrangement.INSTITUTION
    else:
        living = rng.random()
        if living < 0.18 or ("home_support" in p.flags and living < 0.6):
            p.arrangement = LivingArrangement.LIVING_ALONE
            p.flags.add("living_alone")
        elif living < 0.55:
            p.arrangement = LivingArrangement.WITH_SPOUSE
            if rng.random() < 0.6:
                p.flags.add("empty_nest")
        elif living < 0.95:
            p.arrangement = LivingArrangement.WITH_CHILDREN
        else:
            p.arrangement = LivingArrangement.OTHER
        if p.arrangement == LivingArrangement.LIVING_ALONE and rng.random() < 0.5:
            p.flags.add("empty_nest")
        if not community and p.arrangement != LivingArrangement.WITH_CHILDREN and rng.random() < 0.25:
            p.flags.add("left_behind")

    if rng.random() < 0.05:
        p.flags.add("severe_handicap")
        p.grade = rng.choice((1, 2))
    if rng.random() < 0.02:
        p.flags.add("family_planning_special")
    if rng.random() < 0.03:
        p.flags.add("entitled_veteran_family")
    if not community and (p.flags & {"dibao", "near_dibao"}) and rng.random() < 0.3:
        p.flags.add("three_category_household")

    # Low-income elders are the ones assessed for purchased home care; the very old and handicapped too.
    if "dibao" in p.flags and rng.random() < 0.6:
        p.disability = rng.choice(("moderate", "moderate", "severe", "mild"))
    elif "home_support" in p.flags and rng.random() < 0.5:
        p.disability = rng.choice(("mild", "moderate"))
    elif "severe_handicap" in p.flags:
        p.disability = rng.choice(("severe", "complete"))
    elif age >= 90 and rng.random() < 0.4:
        p.disability = rng.choice(("mild", "moderate", "severe"))
    return p


_BANDS = {"intact": (90, 90), "mild": (66, 89), "moderate": (46, 65), "severe": (30, 45), "complete": (0, 29)}


def _assessment_result(rng: random.Random, level: str):
    """Return item scores whose total falls in the band of `level`, scored by the GB/T 42195 rules."""
    low, high = _BANDS[level]
    target = rng.randint(low, high)
    items = {item.key: item.max_score for item in ITEMS}
    keys = [item.key for item in ITEMS]
    deficit = sum(items.values()) - target
    while deficit > 0:
        key = rng.choice(keys)
        if items[key] > 0:
            items[key] -= 1
            deficit -= 1
    return score_assessment(items), items


def load_demo(session: Session, password: str) -> dict:
    """Load the demo registry, then demo cases in several states (only when the registry is new)."""
    summary = load_demo_registry(session, password)
    area_names = {a.code: a.name for a in session.scalars(select(Area))}
    summary["logins"] = [
        {
            "username": name,
            "role": info["role"],
            "display_name": info["display_name"],
            "area": area_names.get(info["area_code"], info["area_code"]),
        }
        for name, info in summary["logins"].items()
    ]
    if summary["created"]:
        users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(USERS)))}
        elders = list(
            session.scalars(
                select(Elder).where(Elder.residence_area_code.startswith(COUNTY[0])).order_by(Elder.id)
            )
        )
        for process in registry.current():
            if process.demo is None:
                continue
            for key, value in process.demo(session, users, elders).items():
                summary["counts"][key] = summary["counts"].get(key, 0) + value
    return summary
