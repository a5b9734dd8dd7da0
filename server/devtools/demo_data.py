"""Generated registers for the demo, the simulator and the benchmarks.

Deterministic for a seed.  A generated register has what real ones have:
several buildings, owners holding several units, co-owned units (one
representative), developer-held unsold units (one developer id), commercial
units, parking spaces, and names/phones/ID numbers (fake) for sign-in.
On request (``joint_share``, ``milli_share``; off by default, so the registers
of existing callers stay as they were) it also has joint owners holding several
units in different buildings (one owner set, one voting subject, always the
same representative) and areas with a third decimal (``71.125``).
"""
from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志强春梅海燕"

HEADER = ["unit_id", "building", "kind", "area", "area_source", "holder", "owner_id", "representative",
          "owner_name", "phone", "id_number"]
DEVELOPER_ID = "DEV"


@dataclass
class _JointOwners:
    """Owners who hold units together: the first of them represents every unit of the set."""

    people: list[tuple[str, dict]]
    units_wanted: int
    buildings: set[str] = field(default_factory=set)


def _area_text(milli: int) -> str:
    """m² with two decimals, or three when the area has a third (``71125`` → ``71.125``)."""
    if milli % 10:
        return f"{milli // 1000}.{milli % 1000:03d}"
    return f"{milli // 1000}.{milli % 1000 // 10:02d}"


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))


def _id_number(rng: random.Random) -> str:
    body = "350502" + str(rng.randint(1940, 2000)) + f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += "".join(rng.choice("0123456789") for _ in range(3))
    return body + rng.choice("0123456789X")


def generate_register_rows(units: int, *, seed: int = 2026, buildings: int | None = None,
                           developer_share: float = 0.03, parking_share: float = 0.05,
                           commercial_share: float = 0.03, multi_unit_share: float = 0.04,
                           co_owned_share: float = 0.15, joint_share: float = 0.0,
                           milli_share: float = 0.0) -> list[dict[str, str]]:
    """Rows of a register with about ``units`` units (the exact count), as dicts of HEADER.

    ``joint_share``: how often a unit starts a new set of joint owners (two or three people); each
    set then takes the next units in other buildings until it holds two or three units, and the
    first set starts at the first unit an owner holds, so a register has one whenever the share is
    positive.  ``milli_share``: how often a dwelling's area has a third decimal; the first dwelling's
    has one whenever the share is positive.  At 0 (the default) neither draws a random number.
    """
    rng = random.Random(seed)
    buildings = buildings or max(2, min(60, units // 120 or 1))
    rows: list[dict[str, str]] = []
    owner_seq = 0
    previous_owner: tuple[str, dict] | None = None
    joint_sets: list[_JointOwners] = []
    milli_wanted = milli_share > 0

    def new_owner() -> tuple[str, dict]:
        nonlocal owner_seq
        owner_seq += 1
        return f"O{owner_seq:06d}", {"owner_name": _name(rng), "phone": _phone(rng), "id_number": _id_number(rng)}

    for n in range(units):
        building = f"{n % buildings + 1}"
        roll = rng.random()
        if roll < parking_share:
            kind, area = "parking", rng.randint(1200, 1800)
        elif roll < parking_share + commercial_share:
            kind, area = "commercial", rng.randint(3000, 20000)
        else:
            kind, area = "dwelling", rng.randint(4500, 16000)
        milli = area * 10
        if kind == "dwelling" and milli_share and (milli_wanted or rng.random() < milli_share):
            milli += rng.randint(1, 9)   # a third decimal, as some surveys give
            milli_wanted = False
        unit_id = f"{building}-{n // buildings + 1:04d}"
        source = rng.choices(("registry", "survey", "contract"), weights=(90, 7, 3))[0]
        base = {"unit_id": unit_id, "building": building, "kind": kind, "area": _area_text(milli),
                "area_source": source}
        if rng.random() < developer_share:
            rows.append({**base, "holder": "developer", "owner_id": DEVELOPER_ID, "representative": "1",
                         "owner_name": "某房地产开发有限公司", "phone": "05950000000", "id_number": ""})
            continue
        if joint_share:
            waiting = [s for s in joint_sets if len(s.buildings) < s.units_wanted and building not in s.buildings]
            if waiting or not joint_sets or rng.random() < joint_share:
                if waiting:
                    joint = waiting[0]
                else:
                    joint = _JointOwners([new_owner() for _ in range(rng.choice((2, 2, 3)))], rng.choice((2, 2, 3)))
                    joint_sets.append(joint)
                joint.buildings.add(building)
                for position, (owner_id, person) in enumerate(joint.people):
                    rows.append({**base, "holder": "owner", "owner_id": owner_id,
                                 "representative": "1" if position == 0 else "0", **person})
                continue
        if previous_owner and rng.random() < multi_unit_share:
            owner_id, person = previous_owner   # one buyer, several units: one person
        else:
            owner_id, person = new_owner()
            previous_owner = (owner_id, person)
        rows.append({**base, "holder": "owner", "owner_id": owner_id, "representative": "1", **person})
        if rng.random() < co_owned_share:
            co_owner, co_person = new_owner()
            rows.append({**base, "holder": "owner", "owner_id": co_owner, "representative": "0", **co_person})
    return rows


def register_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
