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
