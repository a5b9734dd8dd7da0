"""Generated registers for the demo, the simulator and the benchmarks.

Deterministic for a seed.  A generated register has what real ones have:
several buildings, owners holding several units, co-owned units (one
representative), developer-held unsold units (one developer id), commercial
units, parking spaces, and names/phones/ID numbers (fake) for sign-in.
"""
from __future__ import annotations

import csv
import io
import random

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志强春梅海燕"

HEADER = ["unit_id", "building", "kind", "area", "area_source", "holder", "owner_id", "representative",
          "owner_name", "phone", "id_number"]
DEVELOPER_ID = "DEV"


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
                           co_owned_share: float = 0.15) -> list[dict[str, str]]:
    """Rows of a register with about ``units`` units (the exact count), as dicts of HEADER."""
    rng = random.Random(seed)
    buildings = buildings or max(2, min(60, units // 120 or 1))
    rows: list[dict[str, str]] = []
    owner_seq = 0
    previous_owner: tuple[str, dict] | None = None
    for n in range(units):
        building = f"{n % buildings + 1}"
        roll = rng.random()
        if roll < parking_share:
            kind, area = "parking", rng.randint(1200, 1800)
        elif roll < parking_share + commercial_share:
            kind, area = "commercial", rng.randint(3000, 20000)
        else:
            kind, area = "dwelling", rng.randint(4500, 16000)
        unit_id = f"{building}-{n // buildings + 1:04d}"
        source = rng.choices(("registry", "survey", "contract"), weights=(90, 7, 3))[0]
        base = {"unit_id": unit_id, "building": building, "kind": kind,
                "area": f"{area // 100}.{area % 100:02d}", "area_source": source}
        if rng.random() < developer_share:
            rows.append({**base, "holder": "developer", "owner_id": DEVELOPER_ID, "representative": "1",
                         "owner_name": "某房地产开发有限公司", "phone": "05950000000", "id_number": ""})
            continue
        if previous_owner and rng.random() < multi_unit_share:
            owner_id, person = previous_owner   # one buyer, several units: one person
        else:
            owner_seq += 1
            owner_id = f"O{owner_seq:06d}"
            person = {"owner_name": _name(rng), "phone": _phone(rng), "id_number": _id_number(rng)}
            previous_owner = (owner_id, person)
        rows.append({**base, "holder": "owner", "owner_id": owner_id, "representative": "1", **person})
        if rng.random() < co_owned_share:
            owner_seq += 1
            rows.append({**base, "holder": "owner", "owner_id": f"O{owner_seq:06d}", "representative": "0",
                         "owner_name": _name(rng), "phone": _phone(rng), "id_number": _id_number(rng)})
    return rows


def register_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
