-- A voting subject changing hands while a meeting is noticed or open (docs/meetings.md "Transfers
-- during voting").  The electorate, its weights and the subject id stay frozen: the transfer only
-- changes who holds the subject's ballot code for this meeting.  voting-rules.md: "if the old
-- owner already voted, that vote stands; otherwise the new owner may vote" -- applied per matter.
--
-- subject_transfer     the transfer of one whole voting subject (all its frozen units), with its
--                      evidence and what it did: the matters whose votes stand, the codes and
--                      sessions revoked, the code issued to the new owner; append-only
-- transfer_new_owner   the new owner's identity, held the way the register's owner table holds an
--                      owner (sign-in checks the last four digits of the phone or ID number); kept
--                      apart so personal data can be purged while the transfer itself stays

CREATE TABLE subject_transfer (
    community_id       text NOT NULL,
    meeting_id         text NOT NULL,
    transfer_id        bigint GENERATED ALWAYS AS IDENTITY,
    voter_id           text NOT NULL,               -- the frozen voting subject
    units              text[] NOT NULL,             -- all of its frozen units (a whole subject only)
    evidence_kind      text NOT NULL
                         CHECK (evidence_kind IN ('property_certificate', 'sale_contract', 'court_document',
                                                  'other')),
    evidence_reference text NOT NULL CHECK (length(evidence_reference) BETWEEN 1 AND 300),
    evidence_date      date NOT NULL,
    note               text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    -- matters the subject had voted on (any channel, by proxy too) when it changed hands: those
    -- votes stand and the subject can vote on them no more
    voted_matters      text[] NOT NULL,
    -- the matters left for the new owner
    open_matters       text[] NOT NULL,
    revoked_serials    integer[] NOT NULL DEFAULT '{}',
    sessions_revoked   integer NOT NULL DEFAULT 0 CHECK (sessions_revoked >= 0),
    proxies_revoked    bigint[] NOT NULL DEFAULT '{}',
    -- the code issued to the new owner; NULL when no matter is left to vote on
    code_serial        integer,
    recorded_by        text NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, meeting_id, transfer_id),
    FOREIGN KEY (community_id, meeting_id, voter_id) REFERENCES electorate (community_id, meeting_id, voter_id),
    -- checked at commit: the transfer is recorded before the new code (which names its new owner)
    FOREIGN KEY (community_id, meeting_id, voter_id, code_serial)
        REFERENCES ballot_code (community_id, meeting_id, voter_id, serial) DEFERRABLE INITIALLY DEFERRED,
    CHECK (cardinality(units) >= 1),
    CHECK (NOT (voted_matters && open_matters)),
    CHECK (code_serial IS NULL OR cardinality(open_matters) > 0)
);
CREATE INDEX subject_transfer_subject ON subject_transfer (community_id, meeting_id, voter_id, transfer_id);

CREATE TABLE transfer_new_owner (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    transfer_id   bigint NOT NULL,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- as in the register's owner table: checked at sign-in (last four), shown masked
    phone         text NOT NULL DEFAULT '',
    id_number     text NOT NULL DEFAULT '',
    PRIMARY KEY (community_id, meeting_id, transfer_id),
    FOREIGN KEY (community_id, meeting_id, transfer_id)
        REFERENCES subject_transfer (community_id, meeting_id, transfer_id)
);

-- A transfer is history: never rewritten.
CREATE TRIGGER subject_transfer_append_only BEFORE UPDATE OR DELETE ON subject_transfer
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Only while codes are in use (noticed or open), and only a whole subject: its units are exactly
-- the frozen ones (a part of a subject waits for the register update after the meeting).
CREATE FUNCTION subject_transfer_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_state text;
    frozen_units  text[];
BEGIN
    SELECT state INTO current_state FROM meeting
     WHERE community_id = NEW.community_id AND meeting_id = NEW.meeting_id FOR SHARE;
    IF current_state IS DISTINCT FROM 'noticed' AND current_state IS DISTINCT FROM 'open' THEN
        RAISE EXCEPTION 'meeting % is %: a voting subject changes hands only while it is noticed or open',
            NEW.meeting_id, current_state USING ERRCODE = '23514', CONSTRAINT = 'subject_transfer_while_voting';
    END IF;
    SELECT units INTO frozen_units FROM electorate
     WHERE community_id = NEW.community_id AND meeting_id = NEW.meeting_id AND voter_id = NEW.voter_id;
    IF frozen_units IS NULL OR NOT (NEW.units @> frozen_units AND frozen_units @> NEW.units) THEN
        RAISE EXCEPTION 'a transfer during voting takes the whole voting subject %', NEW.voter_id
            USING ERRCODE = '23514', CONSTRAINT = 'subject_transfer_whole_subject';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER subject_transfer_guard BEFORE INSERT ON subject_transfer
    FOR EACH ROW EXECUTE FUNCTION subject_transfer_guard();

-- The votes that stand: no submission (any channel: electronic, paper, proxy) of a subject for a
-- matter it had voted on before changing hands.  DETAIL carries the matter id.
CREATE FUNCTION submission_not_voted_before_transfer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM subject_transfer t
                WHERE t.community_id = NEW.community_id AND t.meeting_id = NEW.meeting_id
                  AND t.voter_id = NEW.voter_id AND NEW.matter_id = ANY (t.voted_matters)) THEN
        RAISE EXCEPTION 'voting subject % voted on matter % before it changed hands: that vote stands',
            NEW.voter_id, NEW.matter_id
            USING ERRCODE = '23514', CONSTRAINT = 'submission_voted_before_transfer', DETAIL = NEW.matter_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER submission_voted_before_transfer BEFORE INSERT ON submission
    FOR EACH ROW EXECUTE FUNCTION submission_not_voted_before_transfer();

COMMENT ON TABLE subject_transfer IS
    'a whole voting subject changing hands during voting: its evidence, the votes that stand, the new code';
COMMENT ON TABLE transfer_new_owner IS
    'the new owner of a transferred subject, held like a register owner; purgeable apart from the transfer';
