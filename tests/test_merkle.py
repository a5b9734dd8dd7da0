"""The receipt tree (server.ballot.merkle): RFC 6962 hashes, proofs, and an independent implementation."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from server.ballot.merkle import (
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_proof,
    sorted_leaves,
    verify_inclusion,
)

receipts = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70, unique=True)


def test_small_trees_by_hand():
    a, b, c = b"a" * 32, b"b" * 32, b"c" * 32
    assert merkle_root([]) == hashlib.sha256(b"").digest()
    assert merkle_root([a]) == hashlib.sha256(b"\x00" + a).digest()
    assert merkle_root([a, b, c]) == node_hash(node_hash(leaf_hash(a), leaf_hash(b)), leaf_hash(c))
    # domain separation: a leaf equal to two concatenated hashes is not an inner node
    assert leaf_hash(leaf_hash(a) + leaf_hash(b)) != node_hash(leaf_hash(a), leaf_hash(b))


@settings(max_examples=150, deadline=None)
@given(receipts)
def test_root_matches_an_independent_rfc6962_implementation(leaves):
    tree = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        tree.append_entry(leaf)
    assert merkle_root(leaves) == tree.get_root()


@settings(max_examples=150, deadline=None)
@given(receipts, st.data())
def test_every_proof_verifies_and_a_changed_leaf_or_proof_fails(leaves, data):
    leaves = sorted_leaves(leaves)
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, index)
        assert verify_inclusion(leaf, index, len(leaves), proof, root)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = inclusion_proof(leaves, index)
    changed = bytes([leaves[index][0] ^ 1]) + leaves[index][1:]
    assert not verify_inclusion(changed, index, len(leaves), proof, root)
    if len(leaves) > 1:
        assert not verify_inclusion(leaves[index], (index + 1) % len(leaves), len(leaves), proof, root)
        bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        assert not verify_inclusion(leaves[index], index, len(leaves), bad, root)
        assert not verify_inclusion(leaves[index], index, len(leaves), proof[:-1], root)
    other = [r for r in leaves if r != leaves[index]] + [changed]
    assert not verify_inclusion(leaves[index], index, len(leaves), proof, merkle_root(sorted_leaves(other)))


def test_malformed_proofs_are_refused():
    leaves = sorted_leaves([bytes([i]) * 32 for i in range(5)])
    proof = inclusion_proof(leaves, 4)
    assert root_from_proof(leaves[4], 5, 5, proof) is None
    assert root_from_proof(leaves[4], 4, 5, [*proof, b"x" * 32]) is None
    with pytest.raises(IndexError):
        inclusion_proof(leaves, 5)


def test_duplicate_receipts_are_refused():
    with pytest.raises(ValueError):
        sorted_leaves([b"a" * 32, b"a" * 32])
