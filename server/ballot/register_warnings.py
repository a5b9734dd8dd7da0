"""Warnings about a register that reads: rows that are allowed but probably wrong.  Pure.

A warning never refuses an import; the preview and the import both list them (the first
``MAX_LISTED`` by line, all counted) so staff can fix the file first.

- ``cannot_sign_in``: a representative (who holds the voting subject's code) with neither a phone
  nor an ID number: sign-in asks for the last four characters of one of them, so this owner can
  only vote on paper or through a proxy.
- ``large_area`` / ``small_area``: a unit's area far outside what its kind usually has
  (a misplaced decimal point, or square metres typed in another unit).
- ``shared_phone``: one phone number given for different owners (a typo, or two owner ids for
  one person); joint owners sharing a phone are warned too, since each signs in with it.
- ``shared_id_number``: one ID number under different owner ids: one person would count as two.
- ``not_counted``: an owner whose every unit is a parking space while this community does not
  count parking: they are not in the electorate (no vote, no person, no area).
"""
from __future__ import annotations

from server.ballot.amounts import format_area
from server.ballot.register_columns import value_label
from server.ballot.register_table import MAX_LISTED, Capped, RegisterTable, RowProblem
from server.ballot.weights import is_counted

# Areas (0.001 m²) beyond which a unit of a kind is unusual.
LARGE_AREA = {"dwelling": 500_000, "commercial": 20_000_000, "parking": 60_000}
SMALL_AREA = 1_000  # under 1 m²


def _normal_phone(phone: str) -> str:
    return phone.replace(" ", "").replace("-", "").removeprefix("+86")


def register_warnings(table: RegisterTable, *, count_parking_area: bool, max_listed: int = MAX_LISTED) -> Capped:
    """The warnings of the rows that read (``table.rows``), first ``max_listed`` by line."""
    found = Capped(max_listed)

    def warn(line: int, column: str, code: str, message: str) -> None:
        found.add(RowProblem(line, column, code, message))

    first_line_of_owner: dict[str, int] = {}
    representative_line: dict[str, int] = {}
    counted_owners: set[str] = set()
    seen_units: set[str] = set()
    for line, row in zip(table.lines, table.rows):
        first_line_of_owner.setdefault(row.owner_id, line)
        if row.representative:
            representative_line.setdefault(row.owner_id, line)
        if is_counted(row, count_parking_area):
            counted_owners.add(row.owner_id)
        if row.unit_id in seen_units:
            continue
        seen_units.add(row.unit_id)
        kind = value_label("kind", row.kind)
        if row.area > LARGE_AREA[row.kind]:
            warn(line, "area", "large_area",
                 f"单元 {row.unit_id} 的专有面积 {format_area(row.area, 3)} m² 对{kind}而言异常大，请核对（是否多写了位数）")
        elif row.area < SMALL_AREA:
            warn(line, "area", "small_area",
                 f"单元 {row.unit_id} 的专有面积 {format_area(row.area, 3)} m² 异常小，请核对单位（应为平方米）")

    phone_owner: dict[str, tuple[str, int]] = {}
    id_owner: dict[str, tuple[str, int]] = {}
    for owner_id, details in table.owners.items():
        line = first_line_of_owner[owner_id]
        if owner_id in representative_line and not details.phone and not details.id_number:
            warn(representative_line[owner_id], "phone", "cannot_sign_in",
                 f"业主 {owner_id} 是代表投票人，但既没有手机号也没有证件号码：无法在网上登录投票，"
                 "只能纸质投票或委托他人")
        if details.phone:
            other = phone_owner.setdefault(_normal_phone(details.phone), (owner_id, line))
            if other[0] != owner_id:
                warn(line, "phone", "shared_phone",
                     f"业主 {owner_id} 的手机号与第 {other[1]} 行的业主 {other[0]} 相同，请核对")
        if details.id_number:
            other = id_owner.setdefault(details.id_number, (owner_id, line))
            if other[0] != owner_id:
                warn(line, "id_number", "shared_id_number",
                     f"业主 {owner_id} 的证件号码与第 {other[1]} 行的业主 {other[0]} 相同：同一人用了两个业主编号，"
                     "会被计为两人")
        if owner_id not in counted_owners:
            warn(line, "kind", "not_counted",
                 f"业主 {owner_id} 只持有车位，而本小区车位不计入专有面积：该业主不计入表决人数和面积")
    return found
