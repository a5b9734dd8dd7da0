"""Signed results, publication (公告) with an objection period, and the public record.

- :func:`sign_result` (also the ON_CLOSE hook): builds the record of a closed
  meeting from the database (server.services.export), recounts it with the tally engine
  exactly as ``evote tally`` would, builds the receipt Merkle tree, signs the
  payload with the community's result key and stores result, signature and
  files in one transaction, with an audit entry.  Idempotent.
- :func:`publish` (closed -> published, status ``preliminary``, objection period),
  :func:`add_objection`, :func:`respond_objection`, :func:`finalize` (``final``,
  refused before the period ends or while an objection is unanswered).
- :func:`public_result` and :func:`receipt_proof` for anyone (aggregates, the signed result, the
  receipt tree: never how a unit voted); :func:`record_files_for_reader` for the community's staff
  and owners only (the guard is server.auth.record_access).
"""
from __future__ import annotations

import bisect
import csv
import io
import json
import logging
import secrets
from collections import OrderedDict
from datetime import timedelta

import asyncpg

from server.ballot.merkle import TREE_ALGORITHM, inclusion_proof, merkle_root, sorted_leaves
from server.ballot.receipts import format_ballot_receipt, normalize_ballot_receipt
from server.ballot.signing import SIGNED_FORMAT, canonical_bytes, public_key_pem, sha256_hex, sign_payload
from server.ballot.tally import tally
from server.ballot.weights import compute_electorate
from server.errors import Conflict, NotFound, ValidationFailed
from server.record import canonical_json
from server.record.signed import HASHED_FILES, PUBLIC_KEY_FILE, RECEIPTS_FILE, RESULT_FILE, SIGNATURE_FILE
from server.repositories import ballot_receipts as ballot_receipts_repo
from server.repositories import clock
from server.repositories import meetings as meetings_repo
from server.repositories import results as repo
from server.services import audit, result_keys
from server.services import counting as counting_service
from server.services import proxies as proxies_service
from server.services.effects import Effects
from server.services.export import RecordNotFound, load_record_inputs, stored_files, subject_pseudonym
from server.services.export import record_files as build_record_files
from server.services.meeting_input import beijing_time
from server.settings import Settings

log = logging.getLogger("evote.results")

STATUS_NAMES = {"unpublished": "未公布", "preliminary": "初步结果（异议期内）", "final": "最终结果"}
MAX_OBJECTION_DAYS = 60


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


# ---------------------------------------------------------------- signing

async def sign_result(pool: asyncpg.Pool, settings: Settings, community_id: str, meeting_id: str, *,
                      actor: str = "system") -> dict:
    """Sign the result of a closed meeting (once); returns the summary of the stored result."""
    async with pool.acquire() as conn, conn.transaction():
        await repo.lock_meeting_result(conn, community_id, meeting_id)
        existing = await repo.get_result(conn, community_id, meeting_id)
        if existing is not None:
            return _summary(existing)
        state = await repo.meeting_state(conn, community_id, meeting_id)
        if state is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        if state == "voided":
            raise Conflict("会议已宣布作废，不产生表决结果，不能签名或公布", code="meeting_voided",
                           fields={"state": state})
        if state not in ("closed", "published"):
            raise Conflict("会议投票尚未结束，不能生成结果", code="meeting_not_closed", fields={"state": state})
        # The submission tables just grew by a whole meeting; fresh statistics keep the counting
        # query's plan sane (measured: 3,000 units, 14k submissions: close+sign 24 s before, 2 s after).
        await repo.analyze_submissions(conn)
        key = await result_keys.active_key(conn, settings, community_id, actor=actor)
        pseudonym_key = secrets.token_bytes(32)
        inputs = await load_record_inputs(conn, community_id, meeting_id, pseudonym_key)
        files = build_record_files(inputs)
        electorate = compute_electorate(inputs.register_rows, inputs.rules.count_parking_area)
        frozen = inputs.meeting_row
        if (electorate.total_area, electorate.total_persons, electorate.places) != (
                frozen["total_area"], frozen["total_persons"], frozen["area_places"]):
            # The register version is append-only, so this means a bug, not a user error.
            raise RuntimeError(f"{community_id}/{meeting_id}: register totals differ from the frozen totals")
        # evote-result/2: each matter's electorate and invalid figures, areas with the register's places.
        result = tally(meeting_id, inputs.rules, inputs.matters, electorate, inputs.submissions)
        # The record's recount (what auditors reproduce) must equal the live counting service's.
        if result != await counting_service.compute_result(conn, community_id, meeting_id):
            raise RuntimeError(f"{community_id}/{meeting_id}: the record's recount differs from the counting "
                               "service; not signing")
        files[RESULT_FILE] = canonical_json(result).encode("utf-8")
        # Paper and proxy details (proxies.csv, paper.csv; none for an all-electronic meeting) and the
        # participation split by channel: server/services/proxies.py, docs/paper-and-proxy.md.
        extension, channels = await proxies_service.record_extension(
            conn, community_id, meeting_id, lambda voter_id: subject_pseudonym(pseudonym_key, voter_id),
            rules=inputs.rules, submissions=inputs.submissions,
            areas={v: s.area for v, s in electorate.subjects.items()})
        files.update(extension)
        leaves = sorted_leaves([receipt for _, receipt in inputs.receipts])
        root = merkle_root(leaves)
        head = await repo.audit_head(conn, community_id)
        payload = {
            "format": SIGNED_FORMAT,
            "community": {"id": community_id, "name": inputs.community_name},
            "meeting": {"id": meeting_id, "title": inputs.title,
                        "register_version": frozen["register_version"],
                        "noticed_at": _iso(frozen["noticed_at"]), "opened_at": _iso(frozen["opened_at"]),
                        "closed_at": _iso(frozen["closed_at"]),
                        # the voting window as it finally stood, and the extension notices that moved it
                        "window": inputs.window, "extensions": list(inputs.extensions)},
            "result": result,
            "files": {name: sha256_hex(files[name]) for name in HASHED_FILES + tuple(sorted(extension))},
            "channels": channels,
            "receipts": {"algorithm": TREE_ALGORITHM, "root": root.hex(), "leaves": len(leaves)},
            # The chain alone cannot show that its last rows were removed; signing its head can.
            "audit_head": {"chain": community_id, "seq": head["seq"] if head else 0,
                           "hash": bytes(head["hash"]).hex() if head else ""},
            "key_id": key.key_id,
            "signed_at": _iso((await clock.now(conn)).replace(microsecond=0)),
        }
        signed = sign_payload(key.private_key, payload)
        files[SIGNATURE_FILE] = canonical_json(signed).encode("utf-8")
        files[PUBLIC_KEY_FILE] = public_key_pem(key.public_key).encode("ascii")
        await repo.insert_result(conn, community_id=community_id, meeting_id=meeting_id,
                                 pseudonym_key=pseudonym_key, result_json=files[RESULT_FILE].decode("utf-8"),
                                 signed_json=files[SIGNATURE_FILE].decode("utf-8"), key_id=key.key_id,
                                 receipts_root=root, receipt_count=len(leaves))
        await repo.insert_files(conn, community_id, meeting_id,
                                [(name, content, sha256_hex(content)) for name, content in files.items()])
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.result_signed",
                           detail={"meeting_id": meeting_id, "key_id": key.key_id, "receipts_root": root.hex(),
                                   "receipts": len(leaves),
                                   "payload_sha256": sha256_hex(canonical_bytes(payload))})
        row = await repo.get_result(conn, community_id, meeting_id)
    log.info("signed result of %s/%s (key %s, %d receipts)", community_id, meeting_id, key.key_id, len(leaves))
    return _summary(row)


def _summary(row: asyncpg.Record) -> dict:
    return {"community_id": row["community_id"], "meeting_id": row["meeting_id"], "status": row["status"],
            "status_name": STATUS_NAMES[row["status"]], "key_id": row["key_id"],
            "receipts_root": bytes(row["receipts_root"]).hex(), "receipt_count": row["receipt_count"],
            "signed_at": _iso(row["signed_at"]), "published_at": _iso(row["published_at"]),
            "objection_ends_at": _iso(row["objection_ends_at"]), "finalized_at": _iso(row["finalized_at"]),
            "result": json.loads(row["result_json"])}


async def on_meeting_closed(pool: asyncpg.Pool, effects: Effects, community_id: str, meeting_id: str) -> None:
    """Close hook (listed in server.app): sign the result as soon as the close has committed."""
    await sign_result(pool, effects.settings, community_id, meeting_id, actor="system")


# ---------------------------------------------------------------- publication and objections

def _objection(row: asyncpg.Record, *, public: bool) -> dict:
    doc = {"objection_id": row["objection_id"], "text": row["text"], "created_at": _iso(row["created_at"]),
           "response": row["response"], "responded_at": _iso(row["responded_at"])}
    if not public:
        doc.update(submitted_by=row["submitted_by"], on_behalf_of=row["on_behalf_of"],
                   responded_by=row["responded_by"])
    return doc


async def publish(pool: asyncpg.Pool, settings: Settings, community_id: str, meeting_id: str, *, actor: str,
                  objection_days: int | None = None) -> dict:
    """closed -> published: the signed result becomes public as preliminary, with an objection period."""
    days = settings.objection_days if objection_days is None else objection_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_OBJECTION_DAYS:
        raise ValidationFailed(f"异议期应为 1 至 {MAX_OBJECTION_DAYS} 天", code="bad_objection_days",
                               fields={"objection_days": f"1–{MAX_OBJECTION_DAYS}"})
    await sign_result(pool, settings, community_id, meeting_id, actor=actor)
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.get_result(conn, community_id, meeting_id, for_update=True)
        if row is None:   # sign_result stored it, and results are never deleted
            raise RuntimeError(f"{community_id}/{meeting_id}: the signed result is missing")
        if row["status"] != "unpublished":
            raise Conflict("结果已经公布", code="already_published", fields={"status": row["status"]})
        published_at = await repo.mark_meeting_published(conn, community_id, meeting_id)
        if published_at is None:
            raise Conflict("会议当前不能公布结果", code="wrong_state")
        ends_at = published_at + timedelta(days=days)
        await repo.set_published(conn, community_id, meeting_id, actor=actor, published_at=published_at,
                                 objection_ends_at=ends_at)
        await meetings_repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id,
                                              from_state="closed", to_state="published", actor=actor,
                                              note=f"objection period {days} days")
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.publish",
                           detail={"meeting_id": meeting_id, "objection_days": days,
                                   "objection_ends_at": ends_at.isoformat(), "key_id": row["key_id"]})
        return _summary(await repo.get_result(conn, community_id, meeting_id))


async def _locked_preliminary(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record:
    row = await repo.get_result(conn, community_id, meeting_id, for_update=True)
    if row is None or row["status"] == "unpublished":
        raise Conflict("结果尚未公布", code="not_published")
    if row["status"] == "final":
        raise Conflict("结果已是最终结果，异议期已结束", code="already_final")
    return row


async def add_objection(pool: asyncpg.Pool, community_id: str, meeting_id: str, *, submitted_by: str,
                        on_behalf_of: str, text: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked_preliminary(conn, community_id, meeting_id)
        now = await clock.now(conn)
        if now >= row["objection_ends_at"]:
            raise Conflict(f"异议期已于 {beijing_time(row['objection_ends_at'])} 结束",
                           code="objection_period_over")
        objection = await repo.insert_objection(conn, community_id, meeting_id, submitted_by=submitted_by,
                                                on_behalf_of=on_behalf_of, text=text)
        await audit.append(conn, community_id=community_id, actor=submitted_by, action="result.objection",
                           detail={"meeting_id": meeting_id, "objection_id": objection["objection_id"],
                                   "on_behalf_of": on_behalf_of, "text": text})
    return _objection(objection, public=False)


async def respond_objection(pool: asyncpg.Pool, community_id: str, meeting_id: str, objection_id: int, *,
                            actor: str, response: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        await _locked_preliminary(conn, community_id, meeting_id)
        if await repo.get_objection(conn, community_id, meeting_id, objection_id) is None:
            raise NotFound("找不到该异议", code="objection_not_found")
        objection = await repo.respond_objection(conn, community_id, meeting_id, objection_id, actor=actor,
                                                 response=response)
        if objection is None:
            raise Conflict("该异议已经答复", code="already_answered")
        await audit.append(conn, community_id=community_id, actor=actor, action="result.objection_response",
                           detail={"meeting_id": meeting_id, "objection_id": objection_id, "response": response})
    return _objection(objection, public=False)


async def finalize(pool: asyncpg.Pool, community_id: str, meeting_id: str, *, actor: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked_preliminary(conn, community_id, meeting_id)
        now = await clock.now(conn)
        if now < row["objection_ends_at"]:
            raise Conflict(f"异议期尚未结束（{beijing_time(row['objection_ends_at'])} 结束），"
                           "不能确定最终结果", code="objection_period_running",
                           fields={"objection_ends_at": row["objection_ends_at"].isoformat()})
        unanswered = await repo.count_unanswered(conn, community_id, meeting_id)
        if unanswered:
            raise Conflict(f"还有 {unanswered} 条异议未答复，请先答复", code="objections_unanswered",
                           fields={"unanswered": unanswered})
        await repo.set_final(conn, community_id, meeting_id, actor=actor)
        objections = await repo.list_objections(conn, community_id, meeting_id)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.finalize",
                           detail={"meeting_id": meeting_id, "objections": len(objections),
                                   "key_id": row["key_id"]})
        return _summary(await repo.get_result(conn, community_id, meeting_id))


async def admin_result(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    async with pool.acquire() as conn:
        row = await repo.get_result(conn, community_id, meeting_id)
        if row is None:
            raise NotFound("该会议还没有结果", code="result_not_found")
        objections = await repo.list_objections(conn, community_id, meeting_id)
    return {**_summary(row), "objections": [_objection(o, public=False) for o in objections]}


# ---------------------------------------------------------------- public

async def _public_row(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record:
    row = await repo.get_result(conn, community_id, meeting_id)
    if row is None or row["status"] == "unpublished":
        raise NotFound("该会议的表决结果尚未公布", code="result_not_published")
    return row


async def _record_file(conn: asyncpg.Connection, community_id: str, meeting_id: str, name: str) -> bytes:
    """A file of a signed record (stored with the result in one transaction, so always there)."""
    data = await repo.record_file(conn, community_id, meeting_id, name)
    if data is None:
        raise RuntimeError(f"{community_id}/{meeting_id}: the signed record has no {name}")
    return data


async def public_result(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    """What the public page shows: the signed document, the matters' names, status and objections."""
    async with pool.acquire() as conn:
        row = await _public_row(conn, community_id, meeting_id)
        meeting_json = await _record_file(conn, community_id, meeting_id, "meeting.json")
        objections = await repo.list_objections(conn, community_id, meeting_id)
    return {
        "community_id": community_id, "meeting_id": meeting_id,
        "status": row["status"], "status_name": STATUS_NAMES[row["status"]],
        "published_at": _iso(row["published_at"]), "objection_ends_at": _iso(row["objection_ends_at"]),
        "finalized_at": _iso(row["finalized_at"]),
        "key_id": row["key_id"], "receipts_root": bytes(row["receipts_root"]).hex(),
        "receipt_count": row["receipt_count"],
        "meeting": json.loads(meeting_json),
        "signed": json.loads(row["signed_json"]),
        "objections": [_objection(o, public=True) for o in objections],
    }


async def record_files_for_reader(pool: asyncpg.Pool, community_id: str, meeting_id: str, *,
                                  actor: str) -> dict[str, bytes]:
    """The published record with how each unit voted, for a reader the caller has authorised
    (server.auth.record_access: the community's staff and owners); each read is audited."""
    async with pool.acquire() as conn, conn.transaction():
        await _public_row(conn, community_id, meeting_id)
        files = await stored_files(conn, community_id, meeting_id, with_attachments=True)
        await audit.append(conn, community_id=community_id, actor=actor, action="record.read",
                           detail={"meeting_id": meeting_id})
    return files


async def export_files(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict[str, bytes]:
    """The stored record of a signed meeting (published or not): for `evote export`."""
    async with pool.acquire() as conn:
        try:
            return await stored_files(conn, community_id, meeting_id, with_attachments=True)
        except RecordNotFound:
            raise NotFound("该会议还没有已签名的记录", code="result_not_found") from None


# Leaves of signed records never change: keep a few parsed trees in memory.
_LEAF_CACHE: OrderedDict[tuple[str, str], list[bytes]] = OrderedDict()
_LEAF_CACHE_SIZE = 16


def _parse_receipts(data: bytes) -> list[bytes]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    next(reader, None)
    return sorted_leaves([bytes.fromhex(fields[1]) for fields in reader if fields])


async def _leaves(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[bytes]:
    cache_key = (community_id, meeting_id)
    leaves = _LEAF_CACHE.get(cache_key)
    if leaves is None:
        leaves = _parse_receipts(await _record_file(conn, community_id, meeting_id, RECEIPTS_FILE))
        _LEAF_CACHE[cache_key] = leaves
        while len(_LEAF_CACHE) > _LEAF_CACHE_SIZE:
            _LEAF_CACHE.popitem(last=False)
    else:
        _LEAF_CACHE.move_to_end(cache_key)
    return leaves


def _leaf_index(leaves: list[bytes], receipt: bytes) -> int:
    index = bisect.bisect_left(leaves, receipt)
    if index >= len(leaves) or leaves[index] != receipt:
        raise NotFound("没有找到这个回执码，请核对后重试", code="receipt_not_found")
    return index


async def receipt_proof(pool: asyncpg.Pool, community_id: str, meeting_id: str, receipt_text: str) -> dict:
    """The inclusion proof of a receipt: a full one (64 hex) or a ballot's short one (XXXXX-XXXXX,
    :func:`ballot_receipt_proof`)."""
    short = normalize_ballot_receipt(receipt_text)
    if short is not None:
        return await ballot_receipt_proof(pool, community_id, meeting_id, short)
    receipt_text = receipt_text.strip().lower()
    try:
        receipt = bytes.fromhex(receipt_text)
    except ValueError:
        receipt = b""
    if len(receipt) != 32:
        raise ValidationFailed("回执码应为 10 位字母和数字（如 7K3M9-QX2HB），或 64 位数字和字母（0-9、a-f）",
                               code="bad_receipt", fields={"receipt": "XXXXX-XXXXX 或 64 位十六进制"})
    async with pool.acquire() as conn:
        row = await _public_row(conn, community_id, meeting_id)
        leaves = await _leaves(conn, community_id, meeting_id)
    index = _leaf_index(leaves, receipt)
    return {"receipt": receipt.hex(), "leaf_index": index, "tree_size": len(leaves),
            "proof": [h.hex() for h in inclusion_proof(leaves, index)],
            "root": bytes(row["receipts_root"]).hex(), "algorithm": TREE_ALGORITHM, "key_id": row["key_id"]}


async def ballot_receipt_proof(pool: asyncpg.Pool, community_id: str, meeting_id: str, short: str) -> dict:
    """A ballot's short receipt resolved to its full receipts, each with its inclusion proof.

    Like a full receipt's proof, it names no matter, choice or voter: only the receipts, which the
    short code is derived from (whoever checks can recompute it: server.ballot.receipts).
    """
    async with pool.acquire() as conn:
        row = await _public_row(conn, community_id, meeting_id)
        leaves = await _leaves(conn, community_id, meeting_id)
        items = await ballot_receipts_repo.receipts_of_code(conn, community_id, meeting_id, short)
    if not items:
        raise NotFound("没有找到这个回执码，请核对后重试", code="receipt_not_found")
    receipts = sorted(bytes(item["receipt"]) for item in items)
    proofs = []
    for receipt in receipts:
        index = _leaf_index(leaves, receipt)
        proofs.append({"receipt": receipt.hex(), "leaf_index": index,
                       "proof": [h.hex() for h in inclusion_proof(leaves, index)]})
    return {"ballot_receipt": format_ballot_receipt(short), "receipts": proofs, "tree_size": len(leaves),
            "root": bytes(row["receipts_root"]).hex(), "algorithm": TREE_ALGORITHM, "key_id": row["key_id"]}
