-- Paper ballots entered twice by two different staff members, and proxies' written
-- authorizations (书面委托) and guardians (监护人).  docs/paper-and-proxy.md.
--
-- paper_ballot        one returned paper sheet of one voting subject, and where its double entry stands
-- paper_entry         each keying of a sheet (1, 2, and 3 to settle a mismatch); append-only
-- paper_submission    which submission rows a matched sheet produced (link for the record extension)
-- proxy_authorization an owner's written authorization (or guardianship) for another voting subject
-- proxy_submission    which submission rows a proxy cast under which authorization

CREATE TABLE paper_ballot (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    paper_id         bigint GENERATED ALWAYS AS IDENTITY,
    voter_id         text NOT NULL,
    -- how the first entry found the owner: the printed ballot code, or the voter id typed by staff
    identified_by    text NOT NULL CHECK (identified_by IN ('code', 'voter_id')),
    status           text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'matched', 'mismatch', 'resolved')),
    -- which entry's choices became submissions ('void': none, the sheet is not counted)
    resolution       text CHECK (resolution IN ('entry1', 'entry2', 'entry3', 'void')),
    resolved_by      text,
    resolution_note  text NOT NULL DEFAULT '' CHECK (length(resolution_note) <= 500),
    -- the server's time of the entry that made it count: the submissions' received_at
    received_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, meeting_id, paper_id),
    FOREIGN KEY (community_id, meeting_id, voter_id) REFERENCES electorate (community_id, meeting_id, voter_id),
    CHECK ((status IN ('pending', 'mismatch')) = (resolution IS NULL)),
    CHECK (status <> 'matched' OR resolution IN ('entry1', 'entry2')),
    CHECK ((received_at IS NOT NULL) = (status IN ('matched', 'resolved') AND resolution <> 'void'))
);
-- At most one sheet of a voter is being entered at a time: a second scan of the code joins it.
CREATE UNIQUE INDEX paper_ballot_one_open ON paper_ballot (community_id, meeting_id, voter_id)
    WHERE status IN ('pending', 'mismatch');
CREATE INDEX paper_ballot_status ON paper_ballot (community_id, meeting_id, status);

CREATE TABLE paper_entry (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    paper_id         bigint NOT NULL,
    entry_no         smallint NOT NULL CHECK (entry_no BETWEEN 1 AND 3),
    staff_id         integer NOT NULL,
    entered_by       text NOT NULL,                 -- staff:<username>
    votes            jsonb NOT NULL,                -- the choices as keyed, normalised
    paper_date       date,                          -- the date written on the sheet, if any
    scan_ref         text NOT NULL DEFAULT '' CHECK (length(scan_ref) <= 300),
    entered_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, meeting_id, paper_id, entry_no),
    -- double entry means two different people: one staff member keys a sheet at most once
    UNIQUE (community_id, meeting_id, paper_id, staff_id),
    FOREIGN KEY (community_id, meeting_id, paper_id) REFERENCES paper_ballot (community_id, meeting_id, paper_id)
);
CREATE TRIGGER paper_entry_append_only BEFORE UPDATE OR DELETE ON paper_entry
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE paper_submission (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    ballot_id        uuid NOT NULL,
    paper_id         bigint NOT NULL,
    PRIMARY KEY (community_id, meeting_id, ballot_id),
    FOREIGN KEY (community_id, meeting_id, ballot_id) REFERENCES submission (community_id, meeting_id, ballot_id),
    FOREIGN KEY (community_id, meeting_id, paper_id) REFERENCES paper_ballot (community_id, meeting_id, paper_id)
);
CREATE TRIGGER paper_submission_append_only BEFORE UPDATE OR DELETE ON paper_submission
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE proxy_authorization (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    authorization_id bigint GENERATED ALWAYS AS IDENTITY,
    owner_voter_id   text NOT NULL,                 -- the owner who authorizes (or is under guardianship)
    proxy_voter_id   text NOT NULL,                 -- who votes for them: a voting subject with their own code
    kind             text NOT NULL CHECK (kind IN ('proxy', 'guardian')),
    matters          text[],                        -- NULL: every matter of the meeting
    valid_until      timestamptz NOT NULL,
    document_ref     text NOT NULL CHECK (length(document_ref) BETWEEN 1 AND 300),
    note             text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at       timestamptz,
    revoked_by       text,
    revoke_reason    text NOT NULL DEFAULT '' CHECK (length(revoke_reason) <= 500),
    PRIMARY KEY (community_id, meeting_id, authorization_id),
    FOREIGN KEY (community_id, meeting_id, owner_voter_id) REFERENCES electorate (community_id, meeting_id, voter_id),
    FOREIGN KEY (community_id, meeting_id, proxy_voter_id) REFERENCES electorate (community_id, meeting_id, voter_id),
    CHECK (owner_voter_id <> proxy_voter_id),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
    CHECK (matters IS NULL OR cardinality(matters) > 0)
);
-- One live authorization per owner (to change it, revoke and register the new one).
CREATE UNIQUE INDEX proxy_authorization_one_live
    ON proxy_authorization (community_id, meeting_id, owner_voter_id) WHERE revoked_at IS NULL;
CREATE INDEX proxy_authorization_by_proxy
    ON proxy_authorization (community_id, meeting_id, proxy_voter_id) WHERE revoked_at IS NULL;

CREATE TABLE proxy_submission (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    ballot_id        uuid NOT NULL,
    authorization_id bigint NOT NULL,
    PRIMARY KEY (community_id, meeting_id, ballot_id),
    FOREIGN KEY (community_id, meeting_id, ballot_id) REFERENCES submission (community_id, meeting_id, ballot_id),
    FOREIGN KEY (community_id, meeting_id, authorization_id)
        REFERENCES proxy_authorization (community_id, meeting_id, authorization_id)
);
CREATE TRIGGER proxy_submission_append_only BEFORE UPDATE OR DELETE ON proxy_submission
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
