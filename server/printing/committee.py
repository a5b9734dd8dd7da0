"""业委会成立公告 and the 备案材料 (filing package) as printable A4 (fpdf2).

- :func:`committee_pdf`: the formation notice of the bodies a meeting elected (业主委员会, 监事会):
  members with their offices (主任, 副主任), alternates, party-member share, term, first meeting.
- :func:`filing_pdf`: one PDF for the district housing bureau: a cover and contents, the formation
  report (成立情况报告), the member list, the texts of the adopted rules (管理规约, 议事规则 — the
  attached drafts when the meeting has them, else the matters' texts) and the result announcement.

Layout only: ``data`` is made by ``server.services.documents``.
"""
from __future__ import annotations

from typing import Any

from server.printing import result_notice
from server.printing.document import Document, day, output, when

OFFICES = {"committee": {"chair": "主任", "vice_chair": "副主任"},
           "supervisory": {"chair": "主席", "vice_chair": "副主席"}}


def _office(body: dict, member: dict) -> str:
    return OFFICES.get(body["body"], OFFICES["committee"]).get(member.get("office") or "", "委员")


def member_rows(body: dict) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [(str(i), m["name"], m.get("unit_label") or "—", _office(body, m), "是" if m.get("party_member") else "否")
            for i, m in enumerate(body["members"], start=1)]
    rows += [(f"候补 {i}", m["name"], m.get("unit_label") or "—", "候补委员", "是" if m.get("party_member") else "否")
             for i, m in enumerate(body["alternates"], start=1)]
    return rows


def _term(body: dict) -> str:
    term = body.get("term")
    if term:
        return f"{day(term['start'])} 至 {day(term['end'])}"
    return "自选举产生之日起计算，具体起止日期待首次会议确定后登记"


def _body_section(pdf: Document, body: dict) -> None:
    name = body["body_name"]
    pdf.heading(f"{name}组成情况", 12.5)
    chair = next((m["name"] for m in body["members"] if m.get("office") == "chair"), None)
    vices = [m["name"] for m in body["members"] if m.get("office") == "vice_chair"]
    offices = OFFICES.get(body["body"], OFFICES["committee"])
    pdf.para(f"{name}由 {body['seats']} 名委员组成，候补委员 {len(body['alternates'])} 名，于 {day(body.get('elected_on'))}"
             f" 经业主大会选举产生。{offices['chair']}：{chair or '待首次会议选举'}；"
             f"{offices['vice_chair']}：{'、'.join(vices) or '待首次会议选举'}。")
    pdf.grid(("序号", "姓名", "房号", "职务", "中共党员"), member_rows(body), (20, 40, 40, 40, 34))
    share = body.get("party_share") or {}
    if share:
        pdf.para(f"委员中中共党员 {share.get('party_members', 0)} 人，占 {share.get('percent', '—')}。", 9.5)
    pdf.para(f"任期：{_term(body)}。" + (f"首次会议：{day(body['first_meeting_on'])}。" if body.get("first_meeting_on")
                                      else ""), 10)


def draw_committee(pdf: Document, data: dict[str, Any]) -> None:
    bodies = data["bodies"]
    names = "、".join(b["body_name"] for b in bodies)
    pdf.running = f"{data['community_name']} · {names}成立公告"
    pdf.add_page()
    pdf.title_block(f"{names}成立公告", data["community_name"])
    pdf.para(f"{data['community_name']}业主大会会议（{data['meeting_title']}）于 {when(data.get('closed_at'))} 结束投票。"
             f"根据经电子签名的表决结果，{names}已依法选举产生，现将组成情况公告如下：")
    for body in bodies:
        _body_section(pdf, body)
    pdf.keep_space(62)
    pdf.para(f"{names}自选举产生之日起履行职责，并将在选举产生之日起三十日内，持有关材料向"
             f"{data.get('street_name') or '街道办事处'}、区住房和城乡建设主管部门备案。表决结果公示页面："
             f"{data['results_url']}", 10)
    pdf.signature_block(data["convener"], day(data.get("dated")))


def committee_pdf(data: dict[str, Any]) -> bytes:
    """``data``: community_name, street_name, meeting_title, closed_at, convener, results_url, dated, bodies
    (server.services.committees.committee_document of each formed body)."""
    pdf = Document(f"{data['meeting_title']} · 成立公告")
    draw_committee(pdf, data)
    return output(pdf)


def _contents(pdf: Document, data: dict[str, Any]) -> None:
    pdf.running = f"{data['community_name']} · 备案材料"
    pdf.add_page()
    pdf.title_block("业主大会、业主委员会备案材料", data["community_name"])
    rows = [("一", "业主委员会成立情况报告"), ("二", "业主委员会委员名单"),
            ("三", "业主大会通过的管理规约、议事规则"), ("四", "表决结果公告")]
    pdf.grid(("序号", "材料"), rows, (24, 150))
    pdf.ln(2)
    pdf.para(f"报送单位：{data['convener']}　报送日期：{day(data.get('dated'))}")
    pdf.para(f"选举日期：{day(data['bodies'][0].get('elected_on'))}；备案期限：{day(data.get('filing_due'))}前"
             "（选举产生之日起三十日内）。", 10)


def _report(pdf: Document, data: dict[str, Any]) -> None:
    result = data["result"]["result"]
    pdf.running = f"{data['community_name']} · 备案材料 · 成立情况报告"
    pdf.add_page()
    pdf.title_block("一、业主委员会成立情况报告")
    pdf.para(f"{data.get('street_name') or '街道办事处'}、区住房和城乡建设主管部门：")
    totals = result["totals"]
    pdf.para(f"{data['community_name']}业主大会会议（{data['meeting_title']}）由{data['convener']}召集，于"
             f" {day(data.get('noticed_at'))} 发布会议公告，投票时间 {when(data['result'].get('opened_at'))} 至"
             f" {when(data['result'].get('closed_at'))}，以电子投票和书面表决票方式进行。全体业主专有部分总面积"
             f" {totals['area']} m²，总人数 {totals['persons']} 人。")
    for matter in result["matters"]:
        info: dict = next((m for m in data["result"]["matters"] if m["id"] == matter["id"]), {})
        part = matter["participating"]
        pdf.para(f"“{info.get('title', matter['id'])}”：参与表决 {part['area']} m²（"
                 f"{result_notice.percent(part['area'], matter['electorate']['area'])}）、{part['persons']} 人（"
                 f"{result_notice.percent(part['persons'], matter['electorate']['persons'])}），表决结果："
                 f"{result_notice.OUTCOMES.get(matter['outcome'], matter['outcome'])}。", 10)
    for body in data["bodies"]:
        _body_section(pdf, body)
    pdf.keep_space(50)
    pdf.para("特此报告。附：委员名单、管理规约和议事规则文本、表决结果公告。")
    pdf.signature_block(data["convener"], day(data.get("dated")))


def _members(pdf: Document, data: dict[str, Any]) -> None:
    pdf.running = f"{data['community_name']} · 备案材料 · 委员名单"
    pdf.add_page()
    pdf.title_block("二、业主委员会委员名单")
    for body in data["bodies"]:
        pdf.heading(body["body_name"], 12.5)
        pdf.grid(("序号", "姓名", "房号", "职务", "中共党员"), member_rows(body), (20, 40, 40, 40, 34))
        pdf.para(f"任期：{_term(body)}。", 10)


def _rules(pdf: Document, data: dict[str, Any]) -> None:
    pdf.running = f"{data['community_name']} · 备案材料 · 规约和规则"
    pdf.add_page()
    pdf.title_block("三、业主大会通过的管理规约、议事规则")
    texts = data.get("rule_texts") or []
    if not texts:
        pdf.para("本次会议未表决管理规约或议事规则。")
    for text in texts:
        pdf.heading(f"{text['title']}（{text['outcome']}）", 12.5)
        if text.get("sha256"):
            pdf.para(f"文件：{text.get('filename', '')}  SHA-256：{text['sha256']}", 8.5)
        pdf.para(text["text"] or "（本事项无文字说明）", 10)


def filing_pdf(data: dict[str, Any]) -> bytes:
    """``data``: what :func:`committee_pdf` takes, plus noticed_at, filing_due, rule_texts [{title, outcome,
    text, filename?, sha256?}] and result (what :func:`result_notice.result_announcement_pdf` takes)."""
    pdf = Document(f"{data['community_name']} · 备案材料")
    _contents(pdf, data)
    _report(pdf, data)
    _members(pdf, data)
    _rules(pdf, data)
    result_notice.draw(pdf, data["result"], title="四、表决结果公告")
    return output(pdf)
