"""`evote verify`: an untouched record passes; every tampering is caught (exit 1) and named."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from server.ballot.signing import public_key_pem
from server.cli import main as evote
from server.record import archive as record_archive
from server.record.writer import write_directory
from server.services import results as results_service
from tests.helpers_results import voted_meeting

_CACHE: dict[str, Path] = {}


@pytest.fixture
async def record(client, db_pool, staff_headers, imported_community, tmp_path_factory, tmp_path):
    """A fresh copy of one signed record (built once per session) and its public key file."""
    if "dir" not in _CACHE:
        v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=40,
                                rules={"allow_revision": True}, revisions=3)
        files = await results_service.export_files(db_pool, v.m.community_id, v.m.meeting_id)
        base = tmp_path_factory.mktemp("signed-record")
        _CACHE["dir"] = write_directory(base / "record", files)
        keys = await (await client.get(f"/api/public/communities/{v.m.community_id}/keys")).json()
        (base / "pubkey.pem").write_text(keys["keys"][0]["public_key_pem"])
        _CACHE["pubkey"] = base / "pubkey.pem"
    copy = tmp_path / "record"
    shutil.copytree(_CACHE["dir"], copy)
    return copy, _CACHE["pubkey"]


def run_verify(capsys, *args) -> tuple[int, str, str]:
    status = evote(["verify", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def write_rows(path: Path, data: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(data)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def counted_resolution_row(bundle: Path) -> int:
    """Index in ballots.csv of a resolution row that counts (the voter's only M1 submission)."""
    data = rows(bundle / "ballots.csv")
    per_voter: dict[str, int] = {}
    for row in data[1:]:
        if row[2] == "M1":
            per_voter[row[1]] = per_voter.get(row[1], 0) + 1
    return next(i for i, row in enumerate(data) if i and row[2] == "M1" and per_voter[row[1]] == 1)


async def test_an_untouched_record_verifies_with_and_without_the_pinned_key(record, capsys):
    bundle, pubkey = record
    status, out, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 0, err
    assert out.startswith("OK") and "所给公钥" in out
    status, out, _ = run_verify(capsys, bundle)
    assert status == 0 and "请与小区公布的公钥核对" in out


async def test_a_changed_ballot_is_caught(record, capsys):
    bundle, pubkey = record
    data = rows(bundle / "ballots.csv")
    i = counted_resolution_row(bundle)
    data[i][4] = {"yes": "no", "no": "abstain", "abstain": "yes"}[data[i][4]]
    write_rows(bundle / "ballots.csv", data)
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1
    assert "重新计票与 result.json 不符" in err and "[M1]" in err


async def test_a_changed_area_is_caught(record, capsys):
    bundle, pubkey = record
    data = rows(bundle / "register.csv")
    row = next(r for r in data[1:] if r[2] == "dwelling" and r[7] == "1")
    whole, cents = row[3].split(".") if "." in row[3] else (row[3], "00")
    row[3] = f"{int(whole) + 10}.{cents}"
    write_rows(bundle / "register.csv", data)
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1
    assert "重新计票与 result.json 不符" in err and ".totals.area" in err


async def test_a_changed_result_figure_is_caught(record, capsys):
    bundle, pubkey = record
    result = json.loads((bundle / "result.json").read_text())
    result["matters"][0]["yes"]["persons"] += 1
    (bundle / "result.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1
    assert "result.json 与签名的结果不符" in err and "[M1].yes.persons" in err


async def test_a_removed_ballot_is_caught(record, capsys):
    bundle, pubkey = record
    data = rows(bundle / "ballots.csv")
    i = counted_resolution_row(bundle)
    removed = data.pop(i)
    write_rows(bundle / "ballots.csv", data)
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1
    assert "重新计票与 result.json 不符" in err and "[M1]" in err
    # and with the result rewritten to match (no signature change), the receipts still catch it
    receipts = [r for r in rows(bundle / "receipts.csv") if r[0] != removed[0]]
    write_rows(bundle / "receipts.csv", receipts)
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1


async def test_a_removed_superseded_ballot_and_its_receipt_are_caught(record, capsys):
    """A revision that does not count changes no figure: the receipt tree catches its removal."""
    bundle, pubkey = record
    data = rows(bundle / "ballots.csv")
    seen: dict[tuple[str, str], str] = {}
    superseded = None
    for row in data[1:]:
        key = (row[1], row[2])
        if key in seen and seen[key] != row[0]:
            superseded = seen[key]
            break
        seen[key] = row[0]
    assert superseded, "the record has revisions"
    write_rows(bundle / "ballots.csv", [r for r in data if r[0] != superseded])
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1 and "receipts.csv" in err and superseded in err
    write_rows(bundle / "receipts.csv", [r for r in rows(bundle / "receipts.csv") if r[0] != superseded])
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1 and "receipts.csv" in err and "Merkle" in err


async def test_a_changed_signature_is_caught(record, capsys):
    bundle, pubkey = record
    signed = json.loads((bundle / "result.sig.json").read_text())
    signature = bytearray(base64.b64decode(signed["signature"]))
    signature[0] ^= 1
    signed["signature"] = base64.b64encode(bytes(signature)).decode()
    (bundle / "result.sig.json").write_text(json.dumps(signed, ensure_ascii=False, indent=2))
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1 and "result.sig.json" in err and "签名无效" in err


async def test_a_changed_signed_payload_is_caught(record, capsys):
    bundle, pubkey = record
    signed = json.loads((bundle / "result.sig.json").read_text())
    signed["payload"]["result"]["matters"][0]["outcome"] = "passed" if \
        signed["payload"]["result"]["matters"][0]["outcome"] != "passed" else "failed"
    (bundle / "result.sig.json").write_text(json.dumps(signed, ensure_ascii=False, indent=2))
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1 and "签名无效" in err


async def test_a_wrong_public_key_is_caught(record, capsys, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    bundle, _ = record
    other = tmp_path / "other.pem"
    other.write_text(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    status, _, err = run_verify(capsys, bundle, "--pubkey", other)
    assert status == 1 and "不是所给公钥" in err


async def test_a_record_re_signed_with_another_key_fails_against_the_published_key(record, capsys):
    """Forging a whole new record and signing it yourself passes only without --pubkey."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from server.ballot.signing import key_id, sign_payload

    bundle, pubkey = record
    signed = json.loads((bundle / "result.sig.json").read_text())
    forger = Ed25519PrivateKey.generate()
    forged = sign_payload(forger, {**signed["payload"], "key_id": key_id(forger.public_key())})
    (bundle / "result.sig.json").write_text(json.dumps(forged))
    status, out, _ = run_verify(capsys, bundle)  # self-consistent: integrity only, hence the key id warning
    assert status == 0 and "请与小区公布的公钥核对" in out
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1 and "不是所给公钥" in err


async def test_unreadable_records_exit_2(record, capsys, tmp_path):
    bundle, pubkey = record
    (bundle / "register.csv").unlink()
    status, out, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 2 and out == "" and "register.csv" in err
    status, _, err = run_verify(capsys, tmp_path / "nothing-here")
    assert status == 2
    status, _, err = run_verify(capsys, tmp_path, "--pubkey", tmp_path / "no-key.pem")
    assert status == 2


async def test_a_missing_signature_file_is_caught(record, capsys):
    bundle, pubkey = record
    (bundle / "result.sig.json").unlink()
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1 and "result.sig.json" in err


def _zip_record(bundle: Path, archive: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(bundle.iterdir()):
            zf.write(path, f"record/{path.name}")
        for name, content in (extra or {}).items():
            zf.writestr(f"record/{name}", content)
    return archive


async def test_an_archived_record_verifies(record, capsys, tmp_path):
    bundle, pubkey = record
    status, out, err = run_verify(capsys, _zip_record(bundle, tmp_path / "record.zip"), "--pubkey", pubkey)
    assert status == 0 and out.startswith("OK"), err


async def test_verify_refuses_an_archive_member_over_the_size_limit(record, capsys, tmp_path, monkeypatch):
    """verify reads every file of the record with the bundle reader's limit, not only the bundle's three."""
    bundle, pubkey = record
    limit = max(path.stat().st_size for path in bundle.iterdir())
    monkeypatch.setattr(record_archive, "MAX_MEMBER_BYTES", limit)
    archive = _zip_record(bundle, tmp_path / "padded.zip", {"notes.txt": b"0" * (limit + 1)})
    status, out, err = run_verify(capsys, archive, "--pubkey", pubkey)
    assert status == 2 and out == ""
    assert "notes.txt:0:" in err and "文件过大" in err and len(err.splitlines()) == 1
    # `evote tally` reads the bundle's three files only, with the same limit
    assert evote(["tally", str(archive)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(record_archive, "MAX_MEMBER_BYTES", (bundle / "ballots.csv").stat().st_size - 1)
    for command in ("verify", "tally"):
        assert evote([command, str(archive)]) == 2
        assert "ballots.csv:0: 文件过大" in capsys.readouterr().err


def test_the_record_and_the_verify_command_import_no_database_web_or_redis_client():
    """server.record (every module) and `evote verify` stay pure: checked in a fresh interpreter."""
    root = Path(__file__).resolve().parent.parent
    script = (
        "import importlib, pkgutil, sys\n"
        "import server.record\n"
        "names = [m.name for m in pkgutil.iter_modules(server.record.__path__, 'server.record.')]\n"
        "for name in names + ['server.commands.verify']:\n"
        "    importlib.import_module(name)\n"
        "assert 'server.record.verify' in sys.modules and len(names) >= 7, names\n"
        "print(' '.join(sorted(m for m in ('asyncpg', 'aiohttp', 'redis') if m in sys.modules)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=root, timeout=60,
                               env=dict(os.environ, PYTHONPATH=str(root)))
    assert completed.returncode == 0, completed.stderr.decode()
    assert completed.stdout.decode().strip() == ""


# ---------------------------------------------------------------- evote-bundle/2 records signed here, no database
# The record is built as the signing service builds it (server/services/results.py): the bundle's
# files in canonical form, receipts.csv, result.json (the recount), the paper extension with the
# signed channel split, the signed payload listing every file's hash and the receipts' Merkle root.


def signed_v2_record(directory: Path, register: str | None = None) -> tuple[Path, Path]:
    """A signed record of tests/test_bundle.py's meeting (optionally another register.csv); its key file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from server.ballot.merkle import TREE_ALGORITHM, merkle_root, sorted_leaves
    from server.ballot.signing import key_id, sha256_hex, sign_payload
    from server.record import canonical_json, read_bundle
    from server.record.extension import PAPER_COLUMNS, PAPER_FILE, channel_split
    from server.record.signed import HASHED_FILES, PUBLIC_KEY_FILE, RESULT_FILE, SIGNATURE_FILE, unsigned_record_files
    from server.record.writer import csv_text
    from tests.test_bundle import make_bundle

    source = make_bundle(directory / "source", **({"register_csv": register} if register else {}))
    bundle = read_bundle(source)
    receipts = [(s.ballot_id, bytes([index + 1]) * 32) for index, s in enumerate(bundle.submissions)]
    files = unsigned_record_files(bundle.meeting, bundle.register_rows, bundle.submissions, receipts)
    files[RESULT_FILE] = canonical_json(bundle.tally()).encode("utf-8")
    paper = [(s.ballot_id, f"P-{s.ballot_id}", "2026-01-10") for s in bundle.submissions if s.channel == "paper"]
    files[PAPER_FILE] = csv_text(PAPER_COLUMNS, paper).encode("utf-8")
    areas = {voter: subject.area for voter, subject in bundle.electorate.subjects.items()}
    leaves = sorted_leaves([receipt for _, receipt in receipts])
    key = Ed25519PrivateKey.generate()
    payload = {
        "format": "evote-signed-result/1",
        "community": {"id": "lc-haibin-017", "name": "海滨小区"},
        "meeting": {"id": bundle.meeting_id, "title": "首次业主大会"},
        "result": bundle.tally(),
        "files": {name: sha256_hex(files[name]) for name in (*HASHED_FILES, PAPER_FILE)},
        "channels": channel_split(bundle.rules, bundle.submissions, areas, set(), bundle.electorate.places),
        "receipts": {"algorithm": TREE_ALGORITHM, "root": merkle_root(leaves).hex(), "leaves": len(leaves)},
        "key_id": key_id(key.public_key()),
        "signed_at": "2026-02-01T10:00:00+00:00",
    }
    files[SIGNATURE_FILE] = canonical_json(sign_payload(key, payload)).encode("utf-8")
    files[PUBLIC_KEY_FILE] = public_key_pem(key.public_key()).encode("ascii")
    record = write_directory(directory / "record", files)
    (directory / "pubkey.pem").write_bytes(files[PUBLIC_KEY_FILE])
    return record, directory / "pubkey.pem"


def test_a_v2_record_verifies(capsys, tmp_path):
    bundle, pubkey = signed_v2_record(tmp_path)
    status, out, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 0, err
    assert out.startswith("OK 会议 2026-01") and "11 份选票、11 个回执" in out
    result = json.loads((bundle / "result.json").read_text(encoding="utf-8"))
    assert result["format"] == "evote-result/2" and result["matters"][2]["electorate"]["area"] == "255.25"


def test_a_v2_record_with_three_decimal_areas_verifies(capsys, tmp_path):
    from tests.test_bundle import REGISTER

    register = REGISTER.replace("2-202,2号楼,dwelling,75.25,", "2-202,2号楼,dwelling,75.255,")
    bundle, pubkey = signed_v2_record(tmp_path, register)
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 0, err
    result = json.loads((bundle / "result.json").read_text(encoding="utf-8"))
    assert result["totals"] == {"area": "541.125", "persons": 5}
    signed = json.loads((bundle / "result.sig.json").read_text(encoding="utf-8"))
    assert signed["payload"]["channels"]["paper"]["area"].count(".") == 1
    assert len(signed["payload"]["channels"]["paper"]["area"].split(".")[1]) == 3


def test_a_v2_record_with_a_changed_invalid_ballot_is_caught(capsys, tmp_path):
    bundle, pubkey = signed_v2_record(tmp_path)
    data = rows(bundle / "ballots.csv")
    row = next(r for r in data if r[0] == "b8")  # O5's invalid ballot for M1
    row[4] = "yes"
    write_rows(bundle / "ballots.csv", data)
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1
    assert "重新计票与 result.json 不符" in err and "[M1].invalid" in err


def test_a_v2_record_with_a_changed_scope_is_caught(capsys, tmp_path):
    bundle, pubkey = signed_v2_record(tmp_path)
    meeting = json.loads((bundle / "meeting.json").read_text(encoding="utf-8"))
    meeting["matters"][2]["scope"]["buildings"] = ["1号楼", "2号楼"]
    (bundle / "meeting.json").write_text(json.dumps(meeting, ensure_ascii=False, indent=2), encoding="utf-8")
    status, _, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 1
    assert "[L2].electorate" in err


def test_a_v2_record_with_a_ballot_from_outside_the_scope_cannot_be_read(capsys, tmp_path):
    bundle, pubkey = signed_v2_record(tmp_path)
    data = rows(bundle / "ballots.csv")
    next(r for r in data if r[0] == "b11")[1] = "O1"  # O1 holds nothing in 2号楼
    write_rows(bundle / "ballots.csv", data)
    status, out, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 2 and out == ""
    assert err.startswith("evote verify: ballots.csv:13: ") and err.count("\n") == 1


def test_a_v1_record_cannot_be_read(capsys, tmp_path):
    bundle, pubkey = signed_v2_record(tmp_path)
    text = (bundle / "meeting.json").read_text(encoding="utf-8")
    (bundle / "meeting.json").write_text(text.replace("evote-bundle/2", "evote-bundle/1"), encoding="utf-8")
    status, out, err = run_verify(capsys, bundle, "--pubkey", pubkey)
    assert status == 2 and out == "" and err.startswith("evote verify: meeting.json:2: ")
