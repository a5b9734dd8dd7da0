-- Signed results, the stored meeting record, publication (公告) with objections,
-- and per-community result keys.  See docs/verification.md.

-- A community's Ed25519 result keys.  The private key is never stored in the clear:
-- either AES-GCM encrypted under EVOTE_MASTER_KEY (private_key_enc), or in a 0600
-- key file under data_dir/keys (key_file names it).  One active key per community;
-- a rotation retires the old one (kept, so old records still verify).
CREATE TABLE community_key (
    community_id     text NOT NULL REFERENCES community (community_id),
    key_id           text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    public_key       bytea NOT NULL CHECK (length(public_key) = 32),
    private_key_enc  bytea,        -- nonce(12) || AES-256-GCM ciphertext of the raw private key
    key_file         text,         -- file name under data_dir/keys when no master key is set
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by       text NOT NULL DEFAULT '',
    retired_at       timestamptz,
    rotated_by       text,
    PRIMARY KEY (community_id, key_id),
    CHECK ((private_key_enc IS NULL) <> (key_file IS NULL)),
    CHECK ((retired_at IS NULL) = (rotated_by IS NULL))
);
CREATE UNIQUE INDEX community_key_one_active ON community_key (community_id) WHERE retired_at IS NULL;

-- The signed result of a closed meeting, and its publication state.
CREATE TABLE meeting_result (
    community_id       text NOT NULL,
    meeting_id         text NOT NULL,
    -- HMAC key that turns owner ids into the record's pseudonyms (secret, per meeting)
    pseudonym_key      bytea NOT NULL,
    result_json        text NOT NULL,       -- evote-result/1, exactly as in result.json
    signed_json        text NOT NULL,       -- evote-signed-result/1, exactly as in result.sig.json
    key_id             text NOT NULL,
    receipts_root      bytea NOT NULL,
    receipt_count      integer NOT NULL CHECK (receipt_count >= 0),
    signed_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- 公告: preliminary when published, final after the objection period
    status             text NOT NULL DEFAULT 'unpublished'
                         CHECK (status IN ('unpublished', 'preliminary', 'final')),
    published_at       timestamptz,
    published_by       text,
    objection_ends_at  timestamptz,
    finalized_at       timestamptz,
    finalized_by       text,
    PRIMARY KEY (community_id, meeting_id),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id),
    FOREIGN KEY (community_id, key_id) REFERENCES community_key (community_id, key_id),
    CHECK (status = 'unpublished' OR (published_at IS NOT NULL AND objection_ends_at IS NOT NULL)),
    CHECK ((status = 'final') = (finalized_at IS NOT NULL))
);

-- The files of the record as signed (meeting.json, register.csv, ballots.csv,
-- receipts.csv, result.json, result.sig.json, public_key.pem); never rewritten.
CREATE TABLE meeting_record_file (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    name          text NOT NULL CHECK (name ~ '^[a-z_.]{1,40}$'),
    content       bytea NOT NULL,
    sha256        text NOT NULL,
    PRIMARY KEY (community_id, meeting_id, name),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting_result (community_id, meeting_id)
);
CREATE TRIGGER meeting_record_file_append_only BEFORE UPDATE OR DELETE ON meeting_record_file
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Objections (异议) during the objection period, each with its response.
CREATE TABLE result_objection (
    community_id   text NOT NULL,
    meeting_id     text NOT NULL,
    objection_id   integer NOT NULL CHECK (objection_id > 0),
    submitted_by   text NOT NULL,           -- staff:<user> recording it, or voter:<id> with a ballot token
    on_behalf_of   text NOT NULL DEFAULT '',-- who objects (unit or owner as told), when staff records it
    text           text NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    response       text CHECK (response IS NULL OR length(response) BETWEEN 1 AND 2000),
    responded_by   text,
    responded_at   timestamptz,
    PRIMARY KEY (community_id, meeting_id, objection_id),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting_result (community_id, meeting_id),
    CHECK ((response IS NULL) = (responded_at IS NULL))
);
