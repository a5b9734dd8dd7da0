"""会议公告 and 延期公告: the meeting notice and the extension notice, as printable A4 (fpdf2).

The notice names the community, the convener, the form of the meeting (electronic voting, with
paper ballots for those who ask), the voting period, every matter with its category and the
rule it needs in words (and the buildings of a scoped matter), the candidates of an election,
the meeting's rules (duplicate policy, changing a vote, invalid ballots, who sees how a unit
voted), where to read the drafts voted on, how to vote (QR code / web address), a contact line
and the posting date.  The extension notice gives the reason and the new close.
Layout only: ``data`` is made by ``server.services.documents``.
"""
from __future__ import annotations

from typing import Any

from server.printing.document import LEFT, Document, day, output, when
from server.printing.result_notice import QUORUM_TEXT, RULE_TEXT, ordinal
from server.printing.text import building_label

WHO_SEES = ("公开公布的只有各事项的汇总结果。每户如何表决记录在会议记录中（业主以化名表示），只供本小区业主、"
            "筹备组/业委会工作人员和审计人员查阅，任何人不能在投票期间看到某一户的选择。")
HOW_TO_VOTE = ("每户会收到一张印有本户选票二维码的选票单（签收领取）。用微信或手机相机扫描二维码，或打开下列网址输入"
               "选票码，核对手机号或身份证号后四位后即可投票；投票后会得到回执码，可在结果公布后查验。"
               "不便使用手机的业主，可向召集人领取书面表决票，填好签名后在投票截止前交回。")


def _matter(pdf: Document, n: int, m: dict) -> None:
    pdf.heading(f"{ordinal(n)}、{m['title']}", 12)
    scope = m.get("scope")
    where = ("、".join(building_label(b) for b in scope["buildings"]) + "业主") if scope else "全体业主"
    pdf.para(f"事项类别：第 {m['category']} 类（{m['category_name']}）。表决范围：{where}。"
             f"通过条件：{QUORUM_TEXT}，且{RULE_TEXT.get(m['threshold'], m['threshold_name'])}。", 10)
    if m.get("description"):
        pdf.para(m["description"], 10)
    if m["kind"] == "election":
        pdf.para(f"应选 {m['seats']} 人，另设候补 {m.get('alternates', 0)} 名；每位业主对每位候选人可选“同意”、“反对”"
                 f"或“弃权”，选“同意”的人数不超过 {m['seats']} 人。", 10)
        rows = [(str(i), c["name"], c.get("unit_label") or "—", "是" if c.get("party_member") else "否",
                 (c.get("statement") or "")[:120])
                for i, c in enumerate(m.get("candidates", []), start=1)]
        if rows:
            pdf.grid(("序号", "候选人", "房号", "中共党员", "简介"), rows, (12, 28, 26, 18, 90))
            pdf.ln(1)


def draw_notice(pdf: Document, data: dict[str, Any]) -> None:
    meeting = data["meeting"]
    pdf.running = f"{data['community_name']} · {meeting['title']} · 会议公告"
    pdf.add_page()
    pdf.title_block("业主大会会议公告", f"{data['community_name']} · {meeting['title']}")
    pdf.para(f"根据《中华人民共和国民法典》和《业主大会和业主委员会指导规则》，{data['convener']}定于下列时间召开"
             f"{data['community_name']}业主大会会议，现将有关事项公告如下：")
    pdf.heading("一、会议基本情况", 12.5)
    rows = [("小区", data["community_name"] + (f"（{data['street_name']}）" if data.get("street_name") else "")),
            ("召集人", data["convener"]),
            ("会议形式", "书面征求意见（电子投票为主，可领取书面表决票）"),
            ("投票时间", f"{when(meeting['opens_at'])} 至 {when(meeting['closes_at'])}"),
            ("表决基数", f"专有部分总面积 {meeting['totals']['area']} m²，业主 {meeting['totals']['persons']} 人"
             if meeting.get("totals") else "以公告时冻结的业主名册为准")]
    pdf.grid(("项目", "内容"), rows, (34, 140))
    pdf.heading("二、表决事项", 12.5)
    for n, matter in enumerate(meeting["matters"], start=1):
        _matter(pdf, n, matter)
    pdf.heading("三、表决规则", 12.5)
    for mark, rule in zip("①②③④⑤⑥⑦⑧⑨", [*data["rules"], {"title": "谁能看到每户如何表决", "text": WHO_SEES}]):
        pdf.para(f"{mark}{rule['title']}：{rule['text']}", 10)
    pdf.heading("四、表决材料查阅", 12.5)
    attachments = data.get("attachments") or []
    if attachments:
        pdf.para("下列草案文件可在投票页面、小区公告栏和下列网址查阅（SHA-256 用于核对文件未被改动）：", 10)
        for n, a in enumerate(attachments, start=1):
            pdf.para(f"{n}. {a['title']}（{a['filename']}）：{a['url']}", 9.5)
            pdf.para(f"SHA-256：{a['sha256']}", 8, indent=4)
    else:
        pdf.para("各表决事项的内容以本公告为准；管理规约、议事规则等草案全文在小区公告栏张贴，并可在投票页面查阅。", 10)
    pdf.keep_space(85)        # how to vote, contact and signature stay together
    pdf.heading("五、如何投票", 12.5)
    pdf.para(HOW_TO_VOTE, 10)
    pdf.para(f"投票网址：{data['vote_url']}（输入选票码）", 10)
    pdf.heading("六、联系方式", 12.5)
    pdf.para(data.get("contact") or f"请向{data['convener']}咨询（见小区公告栏）。", 10)
    pdf.signature_block(data["convener"], day(meeting.get("noticed_at")))


def notice_pdf(data: dict[str, Any]) -> bytes:
    """``data``: community_name, street_name, convener, contact, vote_url, rules (rule_statements),
    attachments [{title, filename, sha256, url}], meeting (server.services.meetings.meeting_document with matters)."""
    pdf = Document(f"{data['meeting']['title']} · 会议公告")
    draw_notice(pdf, data)
    return output(pdf)


def extension_pdf(data: dict[str, Any]) -> bytes:
    """``data`` as for :func:`notice_pdf`; the meeting document carries ``extensions`` (at least one).
    The latest extension is the notice; earlier ones are listed."""
    meeting = data["meeting"]
    extensions = meeting["extensions"]
    latest = extensions[-1]
    pdf = Document(f"{meeting['title']} · 延期公告")
    pdf.running = f"{data['community_name']} · {meeting['title']} · 延期公告"
    pdf.add_page()
    pdf.title_block("业主大会会议延期公告", f"{data['community_name']} · {meeting['title']}"
                    + (f"（第 {latest['number']} 次延期）" if len(extensions) > 1 else ""))
    pdf.para(f"{data['community_name']}业主大会会议（{meeting['title']}）的投票原定于 "
             f"{when(latest['previous_closes_at'])} 截止。经{data['convener']}决定，投票截止时间延长至"
             f" {when(latest['closes_at'])}。")
    pdf.heading("延期理由", 12.5)
    pdf.para(latest["reason"])
    pdf.heading("有关事项", 12.5)
    pdf.para("延期期间，已经投出的票继续有效；尚未投票的业主可继续用原选票二维码或书面表决票投票。表决事项、表决规则"
             "和业主名册均不变。", 10)
    if len(extensions) > 1:
        rows = [(f"第 {e['number']} 次", when(e["previous_closes_at"]), when(e["closes_at"]), day(e["published_at"]))
                for e in extensions]
        pdf.grid(("延期", "原截止时间", "新截止时间", "公告日期"), rows, (20, 56, 56, 42))
    pdf.para(f"投票网址：{data['vote_url']}（输入选票码）", 10)
    pdf.para("联系：" + (data.get("contact") or f"{data['convener']}（见小区公告栏）"), 10)
    pdf.set_x(LEFT)
    pdf.signature_block(data["convener"], day(latest["published_at"]))
    return output(pdf)

