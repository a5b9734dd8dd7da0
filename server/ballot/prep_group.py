"""The preparatory group's legal composition (筹备组; the seed plan and 《业主大会和业主委员会指导规则》).

"筹备组由业主代表、建设单位、街道办事处和居民委员会代表组成，成员人数应为五人以上的单数，其中业主
代表人数不低于筹备组总人数的一半。筹备组组长由街道挂钩社区的党政领导担任。"  Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

SIDES = {"owner": "业主代表", "developer": "建设单位", "street": "街道办事处", "residents_committee": "居委会",
         "other": "其他"}
MIN_MEMBERS = 5
MIN_POSTING_DAYS = 7


@dataclass(frozen=True)
class GroupMember:
    name: str
    side: str
    leader: bool = False


@dataclass(frozen=True)
class RuleBroken:
    code: str
    message: str


def composition_problems(members: list[GroupMember]) -> list[RuleBroken]:
    """Every rule the list breaks, each named (empty: a lawful group)."""
    problems = []
    n = len(members)
    if n < MIN_MEMBERS:
        problems.append(RuleBroken("prep_group_too_small", f"筹备组成员应为 {MIN_MEMBERS} 人以上，现有 {n} 人"))
    if n % 2 == 0:
        problems.append(RuleBroken("prep_group_even", f"筹备组成员人数应为单数，现有 {n} 人"))
    owners = sum(1 for m in members if m.side == "owner")
    if owners * 2 < n:
        problems.append(RuleBroken("prep_group_owner_share",
                                   f"业主代表应不少于筹备组总人数的一半：{n} 人中业主代表只有 {owners} 人"))
    leaders = [m for m in members if m.leader]
    if len(leaders) != 1:
        problems.append(RuleBroken("prep_group_leader", f"筹备组应有且只有一名组长，现有 {len(leaders)} 名"))
    elif leaders[0].side != "street":
        problems.append(RuleBroken("prep_group_leader_side", "筹备组组长应由街道挂钩社区的党政领导担任"))
    return problems
