"""The receipt tree: an RFC 6962 / RFC 9162 Merkle tree over ballot receipts.

Pure, no I/O.  Definitions (docs/verification.md):

- Leaves are the 32-byte receipts of every submission of a meeting, **sorted
  ascending by their bytes** (so the tree says nothing about the order ballots
  arrived in, and anyone rebuilds it from receipts.csv alone).
- ``leaf_hash(r) = SHA-256(0x00 || r)``, ``node_hash(a, b) = SHA-256(0x01 || a || b)``
  (domain separation: a leaf can never pass for an inner node).
- A tree of n > 1 leaves splits at k, the largest power of two below n
  (RFC 6962 §2.1); the root of an empty tree is SHA-256 of nothing.
- An inclusion proof is the RFC 6962 audit path, bottom up; it is checked with
  the RFC 9162 §2.1.3.2 algorithm (:func:`verify_inclusion`), which the public
  page repeats in JavaScript.
"""
from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

__all__ = [
    "TREE_ALGORITHM",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_proof",
    "sorted_leaves",
    "verify_inclusion",
]

TREE_ALGORITHM = "rfc6962-sha256, leaves = receipts sorted ascending"
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def sorted_leaves(receipts: Sequence[bytes]) -> list[bytes]:
    """The leaves in tree order; refuses duplicates (each receipt is unique per meeting)."""
    leaves = sorted(receipts)
    for a, b in itertools.pairwise(leaves):
        if a == b:
            raise ValueError(f"receipt {a.hex()} appears twice")
    return leaves


def _split(n: int) -> int:
    """The largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    # Bottom-up: pair neighbours; an odd last node moves up unchanged.  This
    # gives exactly the RFC 6962 left-heavy split without recursion.
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of ``leaves`` (in the order given: pass :func:`sorted_leaves`)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _root_of_hashes([leaf_hash(leaf) for leaf in leaves])


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 6962 §2.1.1), bottom up."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} outside a tree of {len(leaves)}")
    level = [leaf_hash(leaf) for leaf in leaves]
    path: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        # else: the last, unpaired node moves up with no sibling at this level
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, index = nxt, index // 2
    return path


def root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root implied by a proof, or None if the proof is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows ``leaf`` at ``index`` in the tree of ``size`` leaves with ``root``."""
    return root_from_proof(leaf, index, size, proof) == root
