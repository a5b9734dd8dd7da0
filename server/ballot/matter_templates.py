"""Matter templates: a matter starts from one, so its Civil Code art. 278 item fixes its threshold.

A template names the item (``category`` 1–9), the kind of matter and the threshold that item
takes (:func:`server.ballot.rules.threshold_for_category`, never entered by hand).  The console
offers them (``GET /api/admin/matter-templates``); a matter sent with a ``template`` or a
``threshold`` that disagrees with its category is refused (``template_problem``), so a
three-quarters item cannot be drafted as a majority one by mistake.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.ballot.rules import THRESHOLD_DESCRIPTIONS, THRESHOLDS, threshold_for_category

__all__ = ["CATEGORY_NAMES", "MATTER_TEMPLATES", "QUORUM_TEXT", "MatterTemplate", "template_problem",
           "templates_document"]

# Civil Code art. 278, items 1–9 (shown to owners next to each matter).
CATEGORY_NAMES = {
    1: "制定和修改业主大会议事规则",
    2: "制定和修改管理规约",
    3: "选举业主委员会或者更换业主委员会成员",
    4: "选聘和解聘物业服务企业或者其他管理人",
    5: "使用建筑物及其附属设施的维修资金",
    6: "筹集建筑物及其附属设施的维修资金",
    7: "改建、重建建筑物及其附属设施",
    8: "改变共有部分的用途或者利用共有部分从事经营活动",
    9: "有关共有和共同管理权利的其他重大事项",
}
QUORUM_TEXT = "须由专有部分面积占比三分之二以上的业主且人数占比三分之二以上的业主参与表决"


@dataclass(frozen=True, slots=True)
class MatterTemplate:
    key: str
    category: int
    title: str
    description: str
    kind: str = "resolution"
    body: str = ""          # an election's body: committee or supervisory

    @property
    def threshold(self) -> str:
        return threshold_for_category(self.category)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "key": self.key, "category": self.category, "category_name": CATEGORY_NAMES[self.category],
            "title": self.title, "description": self.description, "threshold": self.threshold,
            "threshold_text": THRESHOLD_DESCRIPTIONS[self.threshold], "quorum_text": QUORUM_TEXT,
            "kind": self.kind,
        }
        if self.body:
            doc["body"] = self.body
        return doc


MATTER_TEMPLATES: tuple[MatterTemplate, ...] = (
    MatterTemplate("rules_of_procedure", 1, "制定（修改）业主大会议事规则",
                   "表决通过《业主大会议事规则》（草案见附件）"),
    MatterTemplate("management_statute", 2, "制定（修改）管理规约", "表决通过《管理规约》（草案见附件）"),
    MatterTemplate("elect_committee", 3, "选举业主委员会委员", "从候选人中选举业主委员会委员",
                   kind="election", body="committee"),
    MatterTemplate("elect_supervisory", 3, "选举业主监事会成员", "从候选人中选举监事会成员",
                   kind="election", body="supervisory"),
    MatterTemplate("replace_committee_members", 3, "更换业主委员会成员", "罢免或更换业主委员会成员"),
    MatterTemplate("property_manager", 4, "选聘（解聘）物业服务企业",
                   "选聘或者解聘物业服务企业或者其他管理人（合同草案见附件）"),
    MatterTemplate("use_maintenance_funds", 5, "使用专项维修资金", "使用建筑物及其附属设施的维修资金（方案见附件）"),
    MatterTemplate("raise_maintenance_funds", 6, "筹集专项维修资金", "筹集建筑物及其附属设施的维修资金（方案见附件）"),
    MatterTemplate("rebuild", 7, "改建、重建建筑物及其附属设施", "改建、重建方案见附件"),
    MatterTemplate("common_parts_use", 8, "改变共有部分用途或利用共有部分经营",
                   "改变共有部分的用途或者利用共有部分从事经营活动（方案见附件）"),
    MatterTemplate("other", 9, "其他共有和共同管理事项", "有关共有和共同管理权利的其他重大事项"),
)
_BY_KEY = {template.key: template for template in MATTER_TEMPLATES}


def templates_document() -> dict[str, Any]:
    """What ``GET /api/admin/matter-templates`` answers."""
    return {"templates": [template.to_json() for template in MATTER_TEMPLATES]}


def template_problem(matter: dict[str, Any]) -> tuple[str, str, str] | None:
    """Why a matter's ``template`` or ``threshold`` disagrees with its kind and category, or None.

    ``matter`` has its ``kind`` and ``category`` already checked; ``template`` and ``threshold``
    are optional.  The answer is (error code, field, Chinese message).
    """
    category, kind = matter["category"], matter["kind"]
    threshold = threshold_for_category(category)
    key = matter.get("template")
    if key is not None:
        template = _BY_KEY.get(key) if isinstance(key, str) else None
        if template is None:
            return ("unknown_template", "template",
                    f"事项模板 {key!r} 不存在；可用模板见 GET /api/admin/matter-templates")
        if template.category != category:
            return ("category_mismatch", "category",
                    f"模板“{template.title}”属于《民法典》第二百七十八条第 {template.category} 项，"
                    f"不能改为第 {category} 项；请换用对应的模板")
        if template.kind != kind:
            return ("kind_mismatch", "kind", f"模板“{template.title}”的事项类型应为 {template.kind}")
    given = matter.get("threshold")
    if given is not None:
        if given not in THRESHOLDS:
            return ("bad_threshold", "threshold", "threshold 应为 majority（过半数）或 three_quarters（四分之三以上）")
        if given != threshold:
            return ("threshold_mismatch", "threshold",
                    f"第 {category} 项（{CATEGORY_NAMES[category]}）须经{THRESHOLD_DESCRIPTIONS[threshold]}，"
                    f"不能按{THRESHOLD_DESCRIPTIONS[given]}表决；表决比例由事项类别决定，请核对类别")
    return None
