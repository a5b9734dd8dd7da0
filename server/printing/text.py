"""Words and times as printed: Beijing time, Chinese dates, building names (pure)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
def when(moment: datetime | str | None, *, seconds: bool = False) -> str:
    """``2026-12-08 20:00（北京时间）`` from an aware datetime or an ISO text with an offset."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(BEIJING)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + "（北京时间）"


def day(moment: datetime | date | str | None) -> str:
    """``2026年12月08日`` (the Beijing calendar day of a time)."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment) if "T" in moment else date.fromisoformat(moment)
    if isinstance(moment, datetime):
        moment = moment.astimezone(BEIJING).date()
    return f"{moment.year}年{moment.month:02d}月{moment.day:02d}日"


def building_label(building: str) -> str:
    """``1`` → ``1 栋``; a name that already says what it is (``A座``, ``3号楼``) stays as it is."""
    if building.endswith(("栋", "座", "幢", "楼", "区")):
        return building
    return f"{building} 栋"
