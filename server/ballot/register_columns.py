"""The register's columns and values as people write them: the codes of bundle-format.md
(``unit_id``, ``dwelling`` ...) or their Chinese names (单元号, 住宅 ...).  Pure.

A file may use either header set (or mix them); every value column accepts the code or its
Chinese name.  What is stored and published is always the code.
"""
from __future__ import annotations

from server.ballot.weights import REGISTER_COLUMNS

OPTIONAL_COLUMNS = ("owner_name", "phone", "id_number", "possession_evidence")
ALL_COLUMNS = (*REGISTER_COLUMNS, *OPTIONAL_COLUMNS)

# Column code -> the Chinese header the template uses (first) and other Chinese headers accepted.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "unit_id": ("单元号", "房号", "单元编号"),
    "building": ("楼栋", "楼号", "楼栋号"),
    "kind": ("类型", "房屋类型", "用途"),
    "area": ("专有面积", "面积", "建筑面积"),
    "area_source": ("面积来源",),
    "holder": ("持有人", "持有人类型", "权属"),
    "owner_id": ("业主编号",),
    "representative": ("代表投票人", "是否代表", "代表"),
    "owner_name": ("业主姓名", "姓名"),
    "phone": ("手机号", "手机号码", "电话", "联系电话"),
    "id_number": ("证件号码", "身份证号", "身份证号码"),
    "possession_evidence": ("合法占有凭证", "占有凭证"),
}


def label(column: str) -> str:
    """The Chinese name of a column code (the code itself for an unknown one)."""
    names = COLUMN_NAMES.get(column)
    return names[0] if names else column


def _header_index() -> dict[str, str]:
    index = {code: code for code in ALL_COLUMNS}
    for code, names in COLUMN_NAMES.items():
        for name in names:
            index[name] = code
    return index


HEADER_INDEX = _header_index()


def column_code(header: str) -> str | None:
    """The column code a header cell names (``单元号`` -> ``unit_id``), or None."""
    text = header.strip().lstrip("\ufeff")
    return HEADER_INDEX.get(text) or HEADER_INDEX.get(text.lower())


# Column code -> {written value: code}; the first Chinese value of each code is the one the
# template and messages show.
VALUE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "kind": {"dwelling": ("住宅",), "commercial": ("商业", "商铺", "商用"), "parking": ("车位", "车库")},
    "area_source": {"registry": ("不动产登记", "产权登记", "不动产权证"), "survey": ("实测",),
                    "contract": ("合同", "预售合同", "购房合同")},
    "holder": {"owner": ("业主",), "developer": ("建设单位", "开发商", "开发建设单位")},
    "representative": {"1": ("是", "代表"), "0": ("否",)},
}

_VALUE_INDEX: dict[str, dict[str, str]] = {
    column: {name: code for code, names in values.items() for name in (code, *names)}
    for column, values in VALUE_NAMES.items()
}


def value_code(column: str, text: str) -> str | None:
    """The code a cell of a choice column names (``住宅`` -> ``dwelling``), or None if it names none."""
    return _VALUE_INDEX[column].get(text)


def allowed_values(column: str) -> str:
    """What a choice column accepts, in words: ``住宅（dwelling）、商业（commercial）…``."""
    return "、".join(f"{names[0]}（{code}）" for code, names in VALUE_NAMES[column].items())


def value_label(column: str, code: str) -> str:
    """The Chinese name of a value code (``dwelling`` -> ``住宅``)."""
    names = VALUE_NAMES.get(column, {}).get(code)
    return names[0] if names else code

# The template's example row (column code -> value as written there).  A file that still has it is
# refused: it would add a made-up owner.
EXAMPLE_ROW = {"unit_id": "1-101", "building": "1号楼", "kind": "住宅", "area": "88.5", "area_source": "不动产登记",
               "holder": "业主", "owner_id": "示例Y0001", "representative": "是", "owner_name": "张三",
               "phone": "13800000000", "id_number": "", "possession_evidence": ""}

# What each column holds, for the template's notes sheet and docs/register.md.
COLUMN_NOTES: dict[str, str] = {
    "unit_id": "单元（房屋或车位）的编号，小区内唯一，如 1-101、P-012。共有的单元每位共有人一行，单元号相同。",
    "building": "所在楼栋，如 1号楼、地下车库。按楼栋表决时以此为准。",
    "kind": "房屋类型。住宅和商业计入专有面积；车位只在本小区规定计入时才计入。",
    "area": "专有面积（平方米），正数，至多三位小数，如 88.5、102.37。不写单位、千位分隔符。",
    "area_source": "面积依据：不动产登记（不动产登记簿）、实测（测绘报告）或合同（购房合同）。",
    "holder": "业主（已交付给买受人）或建设单位（未售出或未交付）。建设单位的所有单元使用同一个业主编号。",
    "owner_id": "业主的稳定编号（公开记录中只出现其化名），不含“+”。同一人持有多个单元时用同一编号。",
    "representative": "是否为该单元的代表投票人：每个单元恰好一行填“是”（或 1），其余共有人填“否”（或 0）。",
    "owner_name": "业主姓名（选填），仅在系统内以遮盖形式显示。",
    "phone": "手机号（选填）。代表投票人登录时核对手机号或证件号码的后四位；两者都没有则无法网上投票。"
             "系统只保存后四位的密钥散列和遮盖形式。",
    "id_number": "身份证或其他证件号码（选填），用途同手机号。请将此列设为文本格式，以免 Excel 改写长数字。",
    "possession_evidence": "（选填）未登记但依法占有的业主，填写其依据（如 交付确认书 编号）；其他业主留空。",
}
