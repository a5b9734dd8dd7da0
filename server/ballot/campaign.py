"""A district campaign's arithmetic (docs/district.md): each community's stage from recorded facts,
and progress against the campaign's batch targets.  Pure: no I/O.

A community's stage is never set by hand: it is the furthest stage whose fact is recorded (a later
fact implies the earlier steps were taken, e.g. a notice implies a register).  "Done" for the
campaign's targets means an owners' assembly held and its committee elected (业主大会成立、业委会选举产生:
stage ``committee_formed`` or later), as the seed plan counts 完成组建工作.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# (key, name shown to staff, what to do to reach it)
STAGES: tuple[tuple[str, str, str], ...] = (
    ("not_started", "未启动", "成立筹备组"),
    ("prep_group", "筹备组已成立", "公示业主名册"),
    ("register_posted", "业主名册已公示", "发布业主大会会议公告"),
    ("noticed", "已发布会议公告", "公告满 15 日后开始投票"),
    ("voting", "投票中", "投票结束并计票"),
    ("voted", "已表决", "选举产生业主委员会"),
    ("committee_formed", "业委会已成立", "向区住建局备案"),
    ("filed", "已备案", "刻制业主大会、业委会印章"),
    ("sealed", "已刻制印章", "业主大会决定选聘物业或自主管理"),
    ("management", "已确定物业管理方式", ""),
)
STAGE_KEYS = tuple(s[0] for s in STAGES)
STAGE_INDEX = {key: i for i, key in enumerate(STAGE_KEYS)}
DONE_STAGE = "committee_formed"

# yuan per household, by the management contract (seed: 国有、街道或社区物业管理公司 100, 其他 30)
SUBSIDY_YUAN = {"state_owned": 100, "street": 100, "community": 100, "other": 30}
CONTRACT_NAMES = {"state_owned": "国有物业公司", "street": "街道物业公司", "community": "社区物业公司",
                  "other": "其他物业公司"}
NOT_PAYABLE = {"civil_servant": "公务员", "public_institution": "事业单位工作人员"}
EMPLOYMENTS = {**NOT_PAYABLE, "other": "其他"}


@dataclass(frozen=True)
class Facts:
    """What is recorded of one community (None: not yet)."""

    prep_group_formed_on: date | None = None
    register_posted_on: date | None = None
    first_noticed_on: date | None = None
    voting_open: bool = False
    voted_on: date | None = None
    committee_formed_on: date | None = None
    filed_on: date | None = None
    sealed: bool = False
    management_on: date | None = None


def stage_of(f: Facts) -> str:
    """The furthest stage whose fact is recorded."""
    reached = [
        ("management", f.management_on is not None),
        ("sealed", f.sealed),
        ("filed", f.filed_on is not None),
        ("committee_formed", f.committee_formed_on is not None),
        ("voted", f.voted_on is not None),
        ("voting", f.voting_open),
        ("noticed", f.first_noticed_on is not None),
        ("register_posted", f.register_posted_on is not None),
        ("prep_group", f.prep_group_formed_on is not None),
    ]
    for key, holds in reached:
        if holds:
            return key
    return "not_started"


def is_done(stage: str) -> bool:
    return STAGE_INDEX[stage] >= STAGE_INDEX[DONE_STAGE]


def missing(stage: str) -> str:
    """What the community must do next (Chinese), '' at the last stage."""
    return STAGES[STAGE_INDEX[stage]][2]


def stage_name(stage: str) -> str:
    return STAGES[STAGE_INDEX[stage]][1]


@dataclass(frozen=True)
class Batch:
    batch_no: int
    name: str
    due_on: date
    share_percent: int
    one_per_shequ: bool = False


@dataclass(frozen=True)
class Member:
    """One community of the campaign, with its stage and where it belongs."""

    community_id: str
    name: str
    street_id: str | None
    shequ_id: str | None
    stage: str
    done_on: date | None          # when it reached the done stage (its committee's election)
    batch_no: int | None = None
    area_id: str | None = None
    area_due_on: date | None = None


def target_count(total: int, cumulative_percent: int) -> int:
    """Communities that must be done: the share rounded up (20 % of 222 is 44.4, so 45)."""
    return -(-total * cumulative_percent // 100)


@dataclass
class BatchProgress:
    batch: Batch
    cumulative_percent: int
    target: int
    done_by_due: int                # done on or before the due date
    done_now: int
    state: str                      # met | missed | on_track | behind
    shequ_without: list[str] = field(default_factory=list)   # 社区 with none done (one_per_shequ batches)


def batch_progress(members: list[Member], batches: list[Batch], today: date,
                   shequs: list[str]) -> list[BatchProgress]:
    """Each batch's cumulative target against the communities outside special areas."""
    plain = [m for m in members if m.area_id is None]
    out = []
    cumulative = 0
    for b in sorted(batches, key=lambda b: b.batch_no):
        cumulative = min(100, cumulative + b.share_percent)
        target = target_count(len(plain), cumulative)
        done_by_due = sum(1 for m in plain if m.done_on is not None and m.done_on <= b.due_on)
        done_now = sum(1 for m in plain if is_done(m.stage))
        without: list[str] = []
        if b.one_per_shequ:
            counted = {m.shequ_id for m in plain
                       if m.shequ_id and m.done_on is not None and (today <= b.due_on or m.done_on <= b.due_on)}
            without = sorted(s for s in shequs if s not in counted)
        if today > b.due_on:
            state = "met" if done_by_due >= target and not without else "missed"
        else:
            state = "on_track" if done_now >= target and not without else "behind"
        out.append(BatchProgress(b, cumulative, target, done_by_due, done_now, state, without))
    return out


def due_on_for(member: Member, batches: dict[int, Batch]) -> date | None:
    """The date by which this community should be done: its area's, or its planned batch's."""
    if member.area_due_on is not None:
        return member.area_due_on
    if member.batch_no is not None and member.batch_no in batches:
        return batches[member.batch_no].due_on
    return None


def overdue(members: list[Member], batches: list[Batch], today: date) -> list[tuple[Member, date]]:
    """Communities past their own due date and not done, oldest due first."""
    by_no = {b.batch_no: b for b in batches}
    late = [(m, due) for m in members
            if not is_done(m.stage) and (due := due_on_for(m, by_no)) is not None and due < today]
    return sorted(late, key=lambda pair: (pair[1], pair[0].community_id))


def subsidy_fen(households: int, contract_type: str | None) -> int:
    """The district's subsidy for one community, in fen (0 without a property-company contract)."""
    if contract_type is None:
        return 0
    return households * SUBSIDY_YUAN[contract_type] * 100
