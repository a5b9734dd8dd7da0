-- One short receipt per ballot (回执码): an owner's electronic submission of one or more matters in
-- one request gets a code of 10 Crockford base32 characters, shown as XXXXX-XXXXX, that a person can
-- copy and read aloud.  It is derived from the ballot's per-matter receipts (server/ballot/receipts.py:
-- ballot_receipt_code), so whoever is shown those receipts can check the code names exactly them.
--
-- ballot_receipt       the code, unique within the meeting, and the voting subject it belongs to (not
--                      the ballot code: it survives a reissue);
-- ballot_receipt_item  the submissions it covers; a submission belongs to at most one.
-- Both are append-only, like the submissions themselves.
CREATE TABLE ballot_receipt (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    short_code    text NOT NULL CHECK (short_code ~ '^[0-9A-HJKMNP-TV-Z]{10}$'),
    voter_id      text NOT NULL,
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (community_id, meeting_id, short_code),
    FOREIGN KEY (community_id, meeting_id, voter_id) REFERENCES electorate (community_id, meeting_id, voter_id)
);
CREATE INDEX ballot_receipt_voter ON ballot_receipt (community_id, meeting_id, voter_id);

CREATE TABLE ballot_receipt_item (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    ballot_id     uuid NOT NULL,
    short_code    text NOT NULL,
    PRIMARY KEY (community_id, meeting_id, ballot_id),
    FOREIGN KEY (community_id, meeting_id, ballot_id) REFERENCES submission (community_id, meeting_id, ballot_id),
    FOREIGN KEY (community_id, meeting_id, short_code)
        REFERENCES ballot_receipt (community_id, meeting_id, short_code)
);
CREATE INDEX ballot_receipt_item_code ON ballot_receipt_item (community_id, meeting_id, short_code);

CREATE TRIGGER ballot_receipt_append_only BEFORE UPDATE OR DELETE ON ballot_receipt
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ballot_receipt_item_append_only BEFORE UPDATE OR DELETE ON ballot_receipt_item
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

COMMENT ON TABLE ballot_receipt IS
    'short receipt (XXXXX-XXXXX) of one electronic ballot, derived from its submissions'' receipts';
