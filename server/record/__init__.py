"""The public meeting record, pure (no database, no network): reading, writing and verifying bundles.

- ``format``: file names, columns, :class:`BundleError`, :class:`Bundle`, canonical JSON, meeting.json;
- ``archive``: a record's files from a directory or an archive, with a size limit per member;
- ``jsonlines``: JSON that remembers the line of each value (for messages);
- ``meeting``: meeting.json (format, meeting and its voting window, rules, matters and their scope);
- ``reader``: :func:`read_bundle` / ``parse_bundle``, every check of docs/bundle-format.md;
- ``writer``: :func:`bundle_files`, :func:`write_bundle` (canonical form);
- ``signed``: the signed record's own files (receipts.csv, result.json, result.sig.json …);
- ``extension``: the paper and proxy files (proxies.csv, paper.csv) and the channel split;
- ``verify``: what ``evote verify`` checks.
"""
from server.record.format import Bundle, BundleError, canonical_json, meeting_document
from server.record.reader import read_bundle
from server.record.writer import bundle_files, write_bundle

__all__ = [
    "Bundle",
    "BundleError",
    "bundle_files",
    "canonical_json",
    "meeting_document",
    "read_bundle",
    "write_bundle",
]
