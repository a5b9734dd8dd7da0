"""表决结果公告: the signed result of a meeting as a printable announcement (fpdf2).

For every matter: its electorate (the whole community or the buildings of its scope), participation
on both axes (area and persons) with its percentage against the two-thirds line, the yes, no,
abstain and invalid figures, the rule it needed and the outcome — "未达参与表决法定比例（不构成决定）"
is printed apart from "未通过".  For an election: each candidate's yes figures, who is elected,
who are the alternates and who must stand again (另行选举), with the formation's reason.  Then the
objection period, the signing key's fingerprint, a QR code of the public results page, the date, and
the signature and seal block.  Layout only: ``data`` is made by ``server.services.documents``.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from server.printing.document import LEFT, NBSP_CHAR, WIDTH, Document, day, output, when

OUTCOMES = {"passed": "通过", "failed": "未通过", "no_quorum": "未达参与表决法定比例（不构成决定）",
            "elected": "已选出", "runoff": "需另行选举"}
RULE_TEXT = {"majority": "同意的专有部分面积和人数均须超过参与表决者的半数（过半数）",
             "three_quarters": "同意的专有部分面积和人数均须达到参与表决者的四分之三以上"}
QUORUM_TEXT = "参与表决的专有部分面积和人数均须达到表决范围内总数的三分之二以上"
NUMBERS = "一二三四五六七八九十"


def ordinal(n: int) -> str:
    if n <= 10:
        return NUMBERS[n - 1]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else NUMBERS[tens - 1]) + "十" + (NUMBERS[ones - 1] if ones else "")


def percent(part: Any, whole: Any) -> str:
    """``66.67%`` (two decimals, rounded half up); ``—`` of nothing."""
    whole = Decimal(str(whole))
    if whole == 0:
        return "—"
    share = (Decimal(str(part)) * 100 / whole).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    return f"{share}%"


def two_thirds_line(total: dict) -> tuple[str, str]:
    """The smallest figures meeting the quorum: area ≥ 2/3 (to the area's places), persons ≥ 2/3."""
    area = Decimal(total["area"])
    exponent = area.as_tuple().exponent
    places = Decimal(1).scaleb(exponent if isinstance(exponent, int) else -2)   # 0.01 or 0.001
    line = (area * 2 / 3 / places).to_integral_value(rounding="ROUND_CEILING") * places
    return f"{line}", str(-(-2 * int(total["persons"]) // 3))


def fingerprint(hex_digest: str) -> str:
    return " ".join(hex_digest[i:i + 4] for i in range(0, len(hex_digest), 4))


def _scope_text(info: dict) -> str:
    scope = info.get("scope")
    if scope and scope.get("buildings"):
        return "、".join(f"{b} 栋" if not b.endswith(("栋", "座", "幢", "楼")) else b for b in scope["buildings"]) + "业主"
    return "全体业主"


def _participation(pdf: Document, matter: dict) -> None:
    total, part = matter["electorate"], matter["participating"]
    area_line, persons_line = two_thirds_line(total)
    met_area = Decimal(part["area"]) * 3 >= Decimal(total["area"]) * 2
    met_persons = int(part["persons"]) * 3 >= int(total["persons"]) * 2
    rows = [
        ("表决范围内总数", f"{total['area']} m²", f"{total['persons']} 人"),
        ("参与表决", f"{part['area']} m²（{percent(part['area'], total['area'])}）",
         f"{part['persons']} 人（{percent(part['persons'], total['persons'])}）"),
        ("三分之二线（66.67%）", f"{area_line} m²，{'已达到' if met_area else '未达到'}",
         f"{persons_line} 人，{'已达到' if met_persons else '未达到'}"),
    ]
    if matter["kind"] == "resolution":
        for key, label in (("yes", "同意"), ("no", "反对"), ("abstain", "弃权")):
            fig = matter[key]
            rows.append((f"{label}（占参与表决）", f"{fig['area']} m²（{percent(fig['area'], part['area'])}）",
                         f"{fig['persons']} 人（{percent(fig['persons'], part['persons'])}）"))
    invalid = matter.get("invalid")
    if invalid and (invalid["persons"] or Decimal(invalid["area"])):
        rows.append(("其中无效票", f"{invalid['area']} m²", f"{invalid['persons']} 人"))
    pdf.grid(("项目", "专有部分面积", "人数"), rows, (50, 66, 58))


def _election(pdf: Document, matter: dict, info: dict, formation: dict | None) -> None:
    names = {c["id"]: c["name"] for c in info.get("candidates", [])}
    elected, alternates, runoff = matter["elected"], matter["alternates"], matter["runoff_needed"]

    def place(cid: str) -> str:
        if cid in elected:
            return "当选"
        if cid in alternates:
            return "候补"
        if cid in runoff:
            return "需另行选举"
        return "—"

    part = matter["participating"]
    rows = [(names.get(c["id"], c["id"]), f"{c['yes']['area']} m²（{percent(c['yes']['area'], part['area'])}）",
             f"{c['yes']['persons']} 人（{percent(c['yes']['persons'], part['persons'])}）",
             "达到" if c["passed"] else "未达到", place(c["id"])) for c in matter["candidates"]]
    pdf.ln(1)
    pdf.grid(("候选人", "同意面积", "同意人数", "通过条件", "结果"), rows, (34, 46, 40, 24, 30))
    seats = info.get("seats", "")
    places = info.get("alternates", 0)
    pdf.ln(1)
    pdf.para(f"应选 {seats} 人，候补 {places} 名。当选：{'、'.join(names.get(c, c) for c in elected) or '无'}。")
    pdf.para(f"候补：{'、'.join(names.get(c, c) for c in alternates) or '无'}。")
    if runoff:
        pdf.para(f"票数完全相同、需另行选举：{'、'.join(names.get(c, c) for c in runoff)}。")
    if formation and formation.get("reason"):
        pdf.para(formation["reason"])
    for note in (formation or {}).get("notes", []):
        pdf.para(note)


def draw(pdf: Document, data: dict, *, title: str = "表决结果公告") -> None:
    """The announcement onto ``pdf`` (new pages); see :func:`result_announcement_pdf` for ``data``."""
    result = data["result"]
    matters_info = {m["id"]: m for m in data["matters"]}
    pdf.running = f"{data['community_name']} · {data['meeting_title']} · 表决结果公告"
    pdf.add_page()
    pdf.title_block(title, f"{data['community_name']} · {data['meeting_title']}")
    pdf.para(f"本次业主大会会议由{data['convener']}召集，投票时间为 {when(data.get('opened_at'))} 至 "
             f"{when(data.get('closed_at'))}，以电子投票和书面表决票方式进行。现将经电子签名的表决结果公告如下"
             f"（{data['status_name']}）：")
    totals = result["totals"]
    pdf.para(f"全体业主专有部分总面积 {totals['area']} m²，总人数 {totals['persons']} 人。依《民法典》第二百七十八条，"
             f"每一事项均按专有部分面积和人数两项分别计算：{QUORUM_TEXT}；未达到的，该事项不构成决定。")
    for n, matter in enumerate(result["matters"], start=1):
        info = matters_info.get(matter["id"], {})
        pdf.heading(f"{ordinal(n)}、{info.get('title', matter['id'])}", 12.5)
        pdf.para(f"事项类别：第 {matter['category']} 类；表决范围：{_scope_text(info)}；"
                 f"通过条件：{QUORUM_TEXT}，且{RULE_TEXT.get(matter['threshold'], matter['threshold'])}。", 9.5)
        _participation(pdf, matter)
        if matter["kind"] == "election":
            _election(pdf, matter, info, data.get("formations", {}).get(matter["id"]))
        pdf.set_font("NotoSansSC", size=12)
        pdf.ln(1)
        pdf.set_x(LEFT)
        pdf.cell(WIDTH, 7, f"表决结果：{OUTCOMES.get(matter['outcome'], matter['outcome'])}",
                 new_x="LMARGIN", new_y="NEXT")
    pdf.keep_space(110)       # the objection period, verification and signature stay together
    pdf.heading("异议期", 12.5)
    if data.get("objection_ends_at"):
        pdf.para(f"自本公告发布之日起至 {when(data['objection_ends_at'])} 止为异议期。业主对表决结果有异议的，"
                 f"请在异议期内以书面方式向{data['convener']}提出；异议及答复在结果公示页面公开。")
    if data.get("finalized_at"):
        pdf.para(f"异议期已结束，本结果于 {when(data['finalized_at'])} 确定为最终结果。")
    pdf.heading("核验", 12.5)
    y = pdf.get_y()
    qr_size = 34.0
    if pdf.get_y() + qr_size > pdf.h - 22:
        pdf.add_page()
        y = pdf.get_y()
    pdf.qr(data["results_url"], LEFT + WIDTH - qr_size, y, qr_size)
    text_w = WIDTH - qr_size - 4
    for line in (f"结果公示页面（扫右侧二维码）：{data['results_url']}",
                 f"签名密钥编号：{data['key_id']}",
                 f"公钥指纹（SHA-256）：{fingerprint(data['key_fingerprint'])}",
                 f"回执 Merkle 根（{data['receipt_count']} 张选票）：{data['receipts_root']}",
                 f"签名时间：{when(data.get('signed_at'))}"):
        pdf.set_font("NotoSansSC", size=9)
        pdf.set_x(LEFT)
        pdf.multi_cell(text_w, 4.6, line.replace(" ", NBSP_CHAR), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.para("业主可在结果公示页面查验自己的回执码，下载并核验会议记录（evote verify）。", 9)
    pdf.set_y(max(pdf.get_y(), y + qr_size + 2))
    pdf.signature_block(data["convener"], day(data.get("published_at") or data.get("signed_at")))


def result_announcement_pdf(data: dict[str, Any]) -> bytes:
    """``data``: community_name, meeting_title, convener, status_name, opened_at, closed_at, published_at,
    objection_ends_at, finalized_at, signed_at (ISO texts), result (evote-result/2), matters (meeting.json's),
    formations {matter_id: formation json}, results_url, key_id, key_fingerprint (64 hex), receipts_root,
    receipt_count."""
    pdf = Document(f"{data['meeting_title']} · 表决结果公告")
    draw(pdf, data)
    return output(pdf)
