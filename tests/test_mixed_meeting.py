"""A meeting with electronic, paper and proxy ballots: live split, close, signed record, verify, each owner once."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from server.ballot.amounts import format_area
from server.ballot.tally import Rules, Submission
from server.ballot.weights import Electorate, Subject
from server.record import read_bundle
from server.record.extension import ExtensionProblem, channel_split, check_record_extension
from server.record.verify import VerifyFailed, verify_bundle
from server.record.writer import write_directory
from server.services import results as results_service
from tests.helpers_meetings import CANDIDATES, ballot_token, cast, close_now, open_meeting
from tests.helpers_paper import areas, authorize, clerks, counted, double_entry, proxy_vote


def _votes(i: int) -> list[dict]:
    choice = ("yes", "no", "abstain")[i % 3]
    marks = {c["candidate_id"]: ("yes" if (i + n) % 2 else "no") for n, c in enumerate(CANDIDATES[:4])}
    return [{"matter_id": "M1", "choice": choice}, {"matter_id": "M2", "choice": "yes"},
            {"matter_id": "E1", "marks": marks}]


async def _mixed(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=30)
    v = m.voter_ids
    c1, c2 = await clerks(staff_headers, m.community_id)
    channel_of: dict[str, str] = {}
    for i, voter in enumerate(v[:6]):                       # electronic
        token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
        assert (await cast(client, token, _votes(i))).status == 201
        channel_of[voter] = "electronic"
    for i, voter in enumerate(v[6:10]):                     # paper, double entry
        await double_entry(client, m, [c1, c2], voter, _votes(i + 1), paper_date="2026-02-28")
        channel_of[voter] = "paper"
    # v[0] also hands in a paper ballot: electronic prevails (default), counted once
    await double_entry(client, m, [c1, c2], v[0], _votes(2))
    proxy = v[10]
    proxy_token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    for i, owner in enumerate(v[11:14]):                    # by proxy (one a guardian)
        await authorize(client, m, owner, proxy, kind="guardian" if i == 2 else "proxy")
        await proxy_vote(client, proxy_token, owner, _votes(i))
        channel_of[owner] = "proxy"
    assert (await cast(client, proxy_token, _votes(5))).status == 201     # the proxy's own ballot
    channel_of[proxy] = "electronic"
    # v[14] authorized a proxy but voted personally first: the proxy is refused
    await authorize(client, m, v[14], proxy)
    own = await ballot_token(db_pool, client, m.community_id, m.meeting_id, v[14])
    assert (await cast(client, own, _votes(4))).status == 201
    channel_of[v[14]] = "electronic"
    await proxy_vote(client, proxy_token, v[14], _votes(1), expect=409)
    # a sheet held as a mismatch at close never counts
    await double_entry_mismatch(client, m, c1, c2, v[15])
    # a sheet with M1 ticked unclearly and the election left blank: kept as invalid, counted under the
    # default rule (takes part, supports nothing)
    await double_entry(client, m, [c1, c2], v[16], [{"matter_id": "M1", "choice": "invalid"},
                                                    {"matter_id": "M2", "choice": "yes"},
                                                    {"matter_id": "E1", "marks": {}}])
    channel_of[v[16]] = "paper"
    return m, channel_of


async def double_entry_mismatch(client, m, c1, c2, voter):
    from tests.helpers_paper import enter

    await enter(client, m, c1, voter_id=voter, votes=[{"matter_id": "M1", "choice": "yes"}])
    second = await (await enter(client, m, c2, voter_id=voter, votes=[{"matter_id": "M1", "choice": "no"}])).json()
    assert second["status"] == "mismatch"


async def test_mixed_meeting_counts_each_owner_once_and_its_record_verifies(client, db_pool, staff_headers,
                                                                            imported_community, tmp_path):
    m, channel_of = await _mixed(client, db_pool, staff_headers, imported_community)
    weights = await areas(db_pool, m.community_id, m.meeting_id)
    # live: participation split by channel
    live = await (await client.get(f"/api/admin/communities/{m.community_id}/meetings/{m.meeting_id}/live",
                                   headers=m.headers)).json()
    for label in ("electronic", "paper", "proxy"):
        voters = [x for x, c in channel_of.items() if c == label]
        assert live["channels"][label]["persons"] == len(voters), label
        assert live["channels"][label]["area"] == format_area(sum(weights[x] for x in voters)), label
    assert live["turnout"]["persons"] == len(channel_of)

    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()
    result, chosen = await counted(db_pool, m.community_id, m.meeting_id)
    # each owner exactly once on both axes, in every matter
    for mat in result["matters"]:
        voters = {voter for (voter, matter_id) in chosen if matter_id == mat["id"]}
        assert voters == set(channel_of)
        assert mat["participating"] == {"area": format_area(sum(weights[x] for x in voters)),
                                        "persons": len(voters)}
    assert chosen[(m.voter_ids[0], "M1")].channel == "electronic"
    blank = m.voter_ids[16]
    assert chosen[(blank, "M1")].choices == (("", "invalid"),) == chosen[(blank, "E1")].choices
    m1, _, e1 = result["matters"]
    assert m1["invalid"] == e1["invalid"] == {"area": format_area(weights[blank]), "persons": 1}
    assert m1["abstain"]["persons"] == sum(1 for (_, mid), sub in chosen.items()
                                           if mid == "M1" and sub.choices == (("", "abstain"),))

    files = await results_service.export_files(db_pool, m.community_id, m.meeting_id)
    assert {"proxies.csv", "paper.csv"} <= set(files)
    record = write_directory(tmp_path / "record", files)
    report = verify_bundle(record)
    assert report.result == result == json.loads(files["result.json"])
    bundle = read_bundle(record)
    assert bundle.tally() == result                              # a version-1 reader recounts it alone
    signed = json.loads(files["result.sig.json"])["payload"]
    labels = ("electronic", "paper", "proxy")
    assert {k: signed["channels"][k] for k in labels} == {k: live["channels"][k] for k in labels}
    for label in ("electronic", "paper", "proxy"):
        assert signed["channels"][label]["persons"] == sum(1 for c in channel_of.values() if c == label)
    assert signed["channels"]["participants"]["persons"] == len(channel_of)
    proxies = files["proxies.csv"].decode().splitlines()
    assert proxies[0] == "ballot_id,proxy_voter_id,authorization_id,kind" and len(proxies) == 1 + 3 * 3
    assert sum(1 for line in proxies if line.endswith(",guardian")) == 3
    paper = files["paper.csv"].decode().splitlines()
    assert len(paper) == 1 + 6 * 3 and sum(1 for line in paper if line.endswith(",2026-02-28")) == 12
    ballots = files["ballots.csv"].decode().splitlines()
    assert sum(1 for line in ballots if ",,invalid,paper," in line) == 2      # M1 and E1 of the blank sheet
    assert m.voter_ids[0] not in files["proxies.csv"].decode()   # pseudonyms only

    # record.zip carries the extension files too, and verifies
    resp = await client.post(f"{m.base}/publish", json={"objection_days": 7}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    resp = await client.get(f"/api/public/meetings/{m.community_id}/{m.meeting_id}/record.zip", headers=m.headers)
    assert resp.status == 200
    archive = tmp_path / "record.zip"
    archive.write_bytes(await resp.read())
    assert verify_bundle(archive).result == result

    # tampering with the extension is caught
    for name, change in [("proxies.csv", lambda t: "\n".join(t.splitlines()[:-1]) + "\n"),
                         ("paper.csv", lambda t: t.replace("2026-02-28", "2026-02-27", 1))]:
        bad = write_directory(tmp_path / f"bad-{name}", dict(files))
        (bad / name).write_text(change(files[name].decode()))
        with pytest.raises(VerifyFailed, match=name):
            verify_bundle(bad)
    bad = write_directory(tmp_path / "bad-removed", {k: v for k, v in files.items() if k != "proxies.csv"})
    with pytest.raises(VerifyFailed, match=r"proxies\.csv"):
        verify_bundle(bad)


async def test_all_electronic_record_has_no_extension_files(client, db_pool, staff_headers, imported_community,
                                                            tmp_path):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    assert (await cast(client, token, _votes(0))).status == 201
    assert (await close_now(client, m.community_id, m.meeting_id, m.headers)).status == 200
    files = await results_service.export_files(db_pool, m.community_id, m.meeting_id)
    assert "proxies.csv" not in files and "paper.csv" not in files
    signed = json.loads(files["result.sig.json"])["payload"]
    assert signed["channels"]["electronic"]["persons"] == 1 and signed["channels"]["proxy"]["persons"] == 0
    record = write_directory(tmp_path / "r", files)
    verify_bundle(record)
    # an unsigned extension file added afterwards is refused
    (record / "proxies.csv").write_text("ballot_id,proxy_voter_id,authorization_id,kind\n")
    with pytest.raises(VerifyFailed, match="签名"):
        verify_bundle(record)


def _bundle(submissions):
    subjects = {v: Subject(v, 10000, (f"u-{v}",), ("1",)) for v in ("A", "B", "C")}
    electorate = Electorate(subjects=subjects, total_area=30000, total_persons=3, by_building={})
    return SimpleNamespace(submissions=tuple(submissions), rules=Rules(allow_revision=True), electorate=electorate)


def _at(minutes: int) -> datetime:
    return datetime(2026, 3, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def test_verify_refuses_a_proxy_ballot_counted_after_the_owners_own_vote():
    personal = Submission("b1", "A", "M1", "electronic", _at(1), (("", "no"),))
    by_proxy = Submission("b2", "A", "M1", "electronic", _at(2), (("", "yes"),))
    header = "ballot_id,proxy_voter_id,authorization_id,kind\n"
    files = {"proxies.csv": (header + "b2,B,1,proxy\n").encode()}
    payload = {"files": {"proxies.csv": "x"}}
    with pytest.raises(ExtensionProblem, match="业主本人"):
        check_record_extension(_bundle([personal, by_proxy]), files, payload)
    # the other order (proxy first, owner's own revision later) is fine
    later = Submission("b3", "A", "M1", "electronic", _at(3), (("", "no"),))
    check_record_extension(_bundle([by_proxy, later]), files, payload)
    # a proxy row for the owner's own id, or a paper ballot, is refused
    for row in ("b2,A,1,proxy\n", "b9,B,1,proxy\n"):
        with pytest.raises(ExtensionProblem):
            check_record_extension(_bundle([by_proxy]), {"proxies.csv": (header + row).encode()}, payload)


def test_channel_split_counts_counted_submissions_only():
    rules = Rules()   # electronic prevails, no revision
    subs = [Submission("e", "A", "M1", "electronic", _at(2), (("", "yes"),)),
            Submission("p", "A", "M1", "paper", _at(1), (("", "no"),)),
            Submission("q", "B", "M1", "paper", _at(1), (("", "no"),)),
            Submission("x", "C", "M1", "electronic", _at(3), (("", "yes"),))]
    split = channel_split(rules, subs, {"A": 1000, "B": 2000, "C": 3000}, {"x"})   # milli-m²
    assert split["electronic"] == {"area": "1.00", "persons": 1, "ballots": 1}
    assert split["paper"] == {"area": "2.00", "persons": 1, "ballots": 1}
    assert split["proxy"] == {"area": "3.00", "persons": 1, "ballots": 1}
    assert split["participants"] == {"area": "6.00", "persons": 3}
