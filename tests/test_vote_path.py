"""The vote path's one statement: receipts computed around the database's time, refusals decided from
the same row, nothing written when refused, and every ballot counted once under races."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from server.ballot.receipts import (
    ballot_receipt_code,
    canonical_around_cast_at,
    canonical_submission,
    format_cast_at,
    normalize_ballot_receipt,
)
from tests.helpers_meetings import ballot_token, cast, open_meeting

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(community_id=TEXT, meeting_id=TEXT, voter_id=TEXT, matter_id=TEXT,
       choices=st.lists(st.tuples(TEXT, st.sampled_from(["yes", "no", "abstain"])), max_size=4),
       micro=st.integers(0, 10 ** 6 - 1), days=st.integers(0, 3000))
def test_head_cast_at_tail_is_the_canonical_form(community_id, meeting_id, voter_id, matter_id, choices, micro,
                                                  days):
    """Quotes, backslashes, control characters, CJK in any field: head + time + tail is byte for byte the
    canonical form, so the receipt the database computes is the one `evote verify` recomputes."""
    ballot_id = str(uuid.uuid4())
    when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=days, microseconds=micro)
    kw = dict(community_id=community_id, meeting_id=meeting_id, ballot_id=ballot_id, voter_id=voter_id,
              matter_id=matter_id, channel="electronic", choices=choices)
    head, tail = canonical_around_cast_at(**kw)
    assert head + format_cast_at(when).encode() + tail == canonical_submission(cast_at=when, **kw)


async def _stored(db_pool, m, voter_id: str) -> int:
    async with db_pool.acquire() as conn:
        return await conn.fetchval(
            """SELECT (SELECT count(*) FROM submission WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3)
                    + (SELECT count(*) FROM submission_choice c JOIN submission s USING (community_id, meeting_id,
                                                                                         ballot_id)
                        WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = $3)""",
            m.community_id, m.meeting_id, voter_id)


async def test_a_refused_ballot_writes_nothing_and_a_replay_writes_nothing_more(client, db_pool, staff_headers,
                                                                                 imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    voter = m.voter_ids[0]
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
    ballot = [{"matter_id": "M1", "choice": "yes"}]
    first = await cast(client, token, ballot, idempotency_key="k1")
    assert first.status == 201, await first.text()
    written = await _stored(db_pool, m, voter)
    assert written == 2    # one submission, one choice
    # the same key and body: the same receipts, nothing written
    again = await cast(client, token, ballot, idempotency_key="k1")
    assert again.status == 200 and (await again.json()) == (await first.json())
    # the same key, another choice: 409, nothing written
    other = await cast(client, token, [{"matter_id": "M1", "choice": "no"}], idempotency_key="k1")
    assert other.status == 409 and (await other.json())["error"]["code"] == "idempotency_key_reused"
    # another key: already voted, nothing written
    second = await cast(client, token, [{"matter_id": "M1", "choice": "no"}], idempotency_key="k2")
    assert second.status == 409 and (await second.json())["error"]["code"] == "already_voted"
    assert await _stored(db_pool, m, voter) == written


async def test_many_voters_racing_each_get_their_own_outcome(client, db_pool, staff_headers, imported_community):
    """Ballots of different voters in flight together, each voter's twice (two phones): every voter has
    exactly one counted submission per matter, and each request its own answer (one 201, one 409)."""
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    voters = m.voter_ids[:8]
    tokens = [await ballot_token(db_pool, client, m.community_id, m.meeting_id, v) for v in voters]
    ballot = [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"}]
    answers = await asyncio.gather(*(cast(client, t, ballot) for t in tokens for _ in range(2)))
    statuses = [a.status for a in answers]
    for i in range(len(voters)):
        assert sorted(statuses[2 * i:2 * i + 2]) == [201, 409], statuses
    # the short receipt the statement derived in SQL is the one Python derives from the receipts
    for answer in answers:
        if answer.status == 201:
            doc = await answer.json()
            receipts = [bytes.fromhex(r["receipt"]) for r in doc["receipts"]]
            assert normalize_ballot_receipt(doc["ballot_receipt"]) == ballot_receipt_code(receipts)
    async with db_pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT voter_id, matter_id, count(*) AS n FROM submission
                WHERE community_id = $1 AND meeting_id = $2 GROUP BY voter_id, matter_id""",
            m.community_id, m.meeting_id)
    assert {(r["voter_id"], r["matter_id"]) for r in rows} == {(v, mt) for v in voters for mt in ("M1", "M2")}
    assert all(r["n"] == 1 for r in rows)


# Statements that leave state on a pooled connection past its transaction (the pool no longer runs
# asyncpg's RESET ALL / UNLISTEN / CLOSE ALL / advisory unlock on release: server/db/pool.py).
SESSION_STATE = re.compile(
    r"""(?x)
        (?:\A|[;"'])\s* SET \s+ (?!LOCAL\b)[A-Za-z_.]+              # a statement SET x (not SET LOCAL)
      | (?:\A|[;"'])\s* (?:UN)?LISTEN \s                             # LISTEN channel
      | (?i:set_config) \s* \( [^)]* ,\s*(?i:false)\s*\)          # set_config(..., false)
      | WITH \s+ HOLD\b                                               # a cursor kept past the transaction
      | (?i:pg_(?:try_)?advisory_lock(?:_shared)?) \s* \(            # a session advisory lock
      | CREATE \s+ TEMP(?:ORARY)? \s+ TABLE
    """)


def test_the_server_leaves_no_session_state_on_pooled_connections():
    root = Path(__file__).resolve().parent.parent / "server"
    found = []
    for path in [*root.rglob("*.py"), *root.rglob("*.sql")]:
        text = path.read_text(encoding="utf-8")
        for match in SESSION_STATE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(root)}:{line}: {match.group(0).strip()}")
    # the migration runner's lock, released in its finally (and asserted below)
    assert found == ["db/pool.py:{}: pg_advisory_lock(".format(_line_of(root / "db" / "pool.py",
                                                                    "pg_advisory_lock("))], found


def _line_of(path: Path, needle: str) -> int:
    text = path.read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(needle)) + 1


async def test_a_released_connection_holds_no_lock_and_no_open_transaction(db_pool):
    from server.db.pool import migrate
    async with db_pool.acquire() as conn:
        await migrate(conn)      # takes and releases the migration runner's session lock
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT 1")
        # left open on purpose: the pool rolls it back on release
    async with db_pool.acquire() as conn:
        locks = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory'", pid)
        assert locks == 0
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SHOW timezone") == "UTC"


def _token_variants(keys, typ: str, audience: str) -> list[tuple[str, bool]]:
    """(token, whether the plain path must accept it): what we issue, and what it must leave to PyJWT."""
    import jwt as pyjwt
    now = int(time.time())
    base = {"iss": keys.issuer, "aud": audience, "sub": "V1", "iat": now, "exp": now + 600, "jti": "j1",
            "cid": "c", "mid": "m"}

    def signed(payload: dict, headers: dict | None = None) -> str:
        return pyjwt.encode(payload, keys.private_key, algorithm="EdDSA", headers=headers or {"typ": typ})

    issued = keys.issue(typ=typ, audience=audience, subject="V1", ttl_s=600, claims={"cid": "c"})[0]
    h, p, sig = issued.split(".")
    other_sig = signed(dict(base, sub="V2")).split(".")[2]
    variants = [
        (issued, True),
        (signed(dict(base, exp=now - 3)), True),                 # within the 5 s leeway
        (signed(dict(base, iat=now + 3)), True),
        (signed(dict(base, exp=now - 10)), False),               # expired
        (signed(dict(base, aud="evote-other")), False),
        (signed(dict(base, aud=[audience])), False),             # a list: PyJWT decides
        (signed(dict(base, iss="someone-else")), False),
        (signed(dict(base, iat=now + 60)), False),               # issued in the future
        (signed(dict(base, nbf=now - 1)), False),
        (signed(dict(base, exp=True)), False),
        (signed(dict(base, exp=float(now + 600))), False),
        (signed(dict(base, sub=5)), False),
        (signed({k: v for k, v in base.items() if k != "jti"}), False),
        (signed(base, {"typ": "evote-staff+jwt"}), False),
        (signed(base, {"typ": typ, "kid": "k1"}), False),
        (f"{h}.{p}.{other_sig}", False),                          # another token's signature
        (f"{h}.{p[:-2]}AA.{sig}", False),                         # payload changed
        (f"{h}.{p}.{sig}=", False),
        (f"{h}.{p}.{sig}.x", False),
        (f"{h}.{p}", False),
        (issued + "é", False),
        (pyjwt.encode(base, None, algorithm="none", headers={"typ": typ}), False),
    ]
    return variants


def test_the_plain_token_check_accepts_only_what_pyjwt_accepts():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from server.auth.tokens import BALLOT_AUDIENCE, BALLOT_TYP, TokenKeys
    from server.errors import Unauthorized

    keys = TokenKeys(private_key=Ed25519PrivateKey.generate(), issuer="evote-test")
    for token, accepted in _token_variants(keys, BALLOT_TYP, BALLOT_AUDIENCE):
        plain = keys._accept_plain(token, typ=BALLOT_TYP, audience=BALLOT_AUDIENCE)
        try:
            reference = keys._verify_signed(token, typ=BALLOT_TYP, audience=BALLOT_AUDIENCE)
        except Unauthorized:
            reference = None
        assert (plain is not None) == accepted, token
        if plain is not None:
            assert plain == reference, token
    # and through verify(): the expired one still says token_expired, a tampered one invalid_token
    expired = _token_variants(keys, BALLOT_TYP, BALLOT_AUDIENCE)[3][0]
    tampered = _token_variants(keys, BALLOT_TYP, BALLOT_AUDIENCE)[15][0]
    for token, code in ((expired, "token_expired"), (tampered, "invalid_token")):
        try:
            keys.verify(token, typ=BALLOT_TYP, audience=BALLOT_AUDIENCE)
        except Unauthorized as exc:
            assert exc.code == code
        else:
            raise AssertionError(f"{code} accepted")


def test_a_prepared_ballot_has_version_4_ids_and_its_own_salts():
    """One read of the random source per ballot gives each matter what uuid4() and new_salt() give."""
    from server.ballot.receipts import SALT_BYTES
    from server.services.casting import Vote, prepare_ballot

    votes = [Vote(f"M{i}", (("", "yes"),)) for i in range(5)]
    ballots = [prepare_ballot("c", "m", "v", votes, jti="j", idempotency_key=None) for _ in range(50)]
    ids = [b for p in ballots for b in p.ballot_ids]
    salts = [s for p in ballots for s in p.salts]
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids) == 250
    assert all(len(s) == SALT_BYTES for s in salts) and len(set(salts)) == len(salts)
    # ids and salts come from different bytes (the first 6 bytes of an id are untouched by its version)
    assert not {i.bytes[:6] for i in ids} & {s[:6] for s in salts}
