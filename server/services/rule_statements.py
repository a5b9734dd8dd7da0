"""The voting rules an owner reads before voting, in plain Chinese (voting-rules.md).

Three of a meeting's rules change which ballot counts or what a ballot means, so they are
stated in the notice and on every ballot: the duplicate policy (a phone vote and a paper
ballot for the same matter), whether a vote can be changed before the close, and what a
blank or unclear ballot means (the ``invalid_ballot`` rule).  The owner's page
(``GET /api/ballot/meeting`` ``rules.statements``) and the printed paper ballots
(server.printing.paper_ballots) show the same sentences, made here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.ballot.tally import INVALID_AS_ABSTAIN, Rules

__all__ = ["RULE_STATEMENT_KEYS", "rule_statements"]

RULE_STATEMENT_KEYS = ("duplicate_policy", "allow_revision", "invalid_ballot")

_TITLES = {
    "duplicate_policy": "手机投票与纸质票重复时",
    "allow_revision": "能否改票",
    "invalid_ballot": "空白票、无效票",
}


def _duplicate(rules: Rules) -> str:
    both = "同一议题既在手机上投了票、又交回了纸质表决票的，"
    if rules.duplicate_policy == "electronic_prevails":
        return both + "以手机投票为准，纸质票不计入。"
    which = "后收到的一张" if rules.allow_revision else "先收到的一张"
    return (both + f"两种票同等对待，以{which}为准（手机投票以服务器收到的时间计，"
            "纸质票以工作人员录入的时间计）。")


def _revision(rules: Rules) -> str:
    if not rules.allow_revision:
        return "不能改票：手机投票一经提交就不能修改，纸质表决票交回并录入后也不能再换一张。"
    text = "投票截止前可以改票：可以在手机上重新提交，也可以重新交回纸质表决票，以最后一次为准"
    if rules.duplicate_policy == "electronic_prevails":
        text += "（但投过手机票的议题，纸质票不计入）"
    return text + "。"


def _invalid(rules: Rules) -> str:
    what = ("纸质表决票上某个议题没有打“√”或无法辨认，或者选举事项选“同意”的人数超过应选人数的，"
            "该议题为无效票，")
    if rules.invalid_ballot == INVALID_AS_ABSTAIN:
        meaning = "视为弃权：计入参与表决的人数和面积，但不算同意。"
    else:
        meaning = "不计入：视为没有参加该议题的表决（不计入参与表决的人数和面积）。"
    return what + meaning + "手机投票不会产生无效票；选举事项一个人也不选的，视为对该项弃权（计入参与表决）。"


def rule_statements(rules: Rules | Mapping[str, Any]) -> list[dict[str, str]]:
    """``[{"key", "title", "text"}]`` for the duplicate policy, revision and invalid-ballot rules, in that order.

    ``rules``: a :class:`Rules` or a meeting's stored rules (missing keys take their defaults).
    """
    if not isinstance(rules, Rules):
        rules = Rules.from_json(rules)
    texts = {"duplicate_policy": _duplicate(rules), "allow_revision": _revision(rules),
             "invalid_ballot": _invalid(rules)}
    return [{"key": key, "title": _TITLES[key], "text": texts[key]} for key in RULE_STATEMENT_KEYS]
