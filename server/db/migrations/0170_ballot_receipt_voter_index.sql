-- The index of a voter's short receipts led with (community_id, meeting_id) like the code's own key, so
-- for a table without statistics (a new database, the first minute of its first vote) PostgreSQL could
-- not tell them apart and checked each receipt item's code (the foreign key to ballot_receipt) through
-- the voter index, reading every receipt of the meeting: each ballot slower than the one before
-- (docs/performance.md).  With the voter second, that index matches only the community for the code's
-- lookup, and the key (community_id, meeting_id, short_code) is always the cheaper plan; a voter's
-- receipts (community, meeting, voter) are still found through it.
DROP INDEX ballot_receipt_voter;
CREATE INDEX ballot_receipt_voter ON ballot_receipt (community_id, voter_id, meeting_id);
