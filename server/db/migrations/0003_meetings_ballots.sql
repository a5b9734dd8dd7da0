-- Meetings, matters, the frozen electorate, ballot codes, submissions.

CREATE TABLE meeting (
    community_id      text NOT NULL REFERENCES community (community_id),
    meeting_id        text NOT NULL CHECK (meeting_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    state             text NOT NULL DEFAULT 'draft'
                        CHECK (state IN ('draft', 'noticed', 'open', 'closed', 'published')),
    -- bundle-format.md `rules`, with every key filled in
    rules             jsonb NOT NULL,
    show_live_results boolean NOT NULL DEFAULT false,   -- to owners and the public
    opens_at          timestamptz,                      -- voting window (server receive time)
    closes_at         timestamptz,
    -- frozen when the notice is published
    register_version  integer,
    total_area        bigint,        -- 0.01 m²
    total_persons     integer,
    noticed_at        timestamptz,
    opened_at         timestamptz,
    closed_at         timestamptz,
    published_at      timestamptz,
    created_by        text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, meeting_id),
    CHECK (closes_at IS NULL OR opens_at IS NULL OR closes_at > opens_at),
    CHECK (state = 'draft' OR (register_version IS NOT NULL AND total_area IS NOT NULL
                               AND total_persons IS NOT NULL AND noticed_at IS NOT NULL))
);
CREATE INDEX meeting_state_times ON meeting (state, opens_at, closes_at);

-- Every lifecycle transition, with who and when.
CREATE TABLE meeting_transition (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    seq           integer NOT NULL,
    from_state    text,
    to_state      text NOT NULL,
    actor         text NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    note          text NOT NULL DEFAULT '',
    PRIMARY KEY (community_id, meeting_id, seq),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id)
);

CREATE TABLE matter (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    matter_id     text NOT NULL CHECK (matter_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    position      integer NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('resolution', 'election')),
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    category      integer NOT NULL CHECK (category BETWEEN 1 AND 9),   -- Civil Code art. 278 item
    seats         integer CHECK (seats > 0),
    alternates    integer CHECK (alternates >= 0),
    -- committee (业主委员会) / supervisory (监事会) / other
    body          text CHECK (body IN ('committee', 'supervisory', 'other')),
    PRIMARY KEY (community_id, meeting_id, matter_id),
    UNIQUE (community_id, meeting_id, position),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id),
    CHECK ((kind = 'election') = (seats IS NOT NULL AND alternates IS NOT NULL))
);

CREATE TABLE candidate (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    matter_id     text NOT NULL,
    candidate_id  text NOT NULL CHECK (candidate_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    position      integer NOT NULL,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    unit_label    text NOT NULL DEFAULT '',
    party_member  boolean NOT NULL DEFAULT false,
    statement     text NOT NULL DEFAULT '',
    PRIMARY KEY (community_id, meeting_id, matter_id, candidate_id),
    UNIQUE (community_id, meeting_id, matter_id, position),
    FOREIGN KEY (community_id, meeting_id, matter_id) REFERENCES matter (community_id, meeting_id, matter_id)
);

-- The voting subjects of a meeting, frozen from its register version at notice.
CREATE TABLE electorate (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    voter_id      text NOT NULL,            -- the owner_id of the voting subject
    area          bigint NOT NULL CHECK (area > 0),
    -- the building of the subject's first counted unit, for turnout per building
    building      text NOT NULL,
    PRIMARY KEY (community_id, meeting_id, voter_id),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id)
);

-- One live code per voting subject and meeting; revoked codes are kept.
CREATE TABLE ballot_code (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    voter_id         text NOT NULL,
    serial           integer NOT NULL,          -- 1 for the first code, +1 per reissue
    code_hash        bytea NOT NULL UNIQUE,     -- sha256 of the code; the code itself is never stored
    issued_at        timestamptz NOT NULL DEFAULT now(),
    issued_by        text NOT NULL DEFAULT '',
    revoked_at       timestamptz,
    redeemed_at      timestamptz,
    -- hash of the device/session that redeemed it; another device must pass the identity check
    redeemed_device  bytea,
    failed_attempts  integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    wechat_openid    text,
    PRIMARY KEY (community_id, meeting_id, voter_id, serial),
    FOREIGN KEY (community_id, meeting_id, voter_id) REFERENCES electorate (community_id, meeting_id, voter_id)
);
CREATE UNIQUE INDEX ballot_code_one_live
    ON ballot_code (community_id, meeting_id, voter_id) WHERE revoked_at IS NULL;

-- A submission: one voter, one matter, one channel; its choices are in submission_choice.
CREATE TABLE submission (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    ballot_id        uuid NOT NULL,
    voter_id         text NOT NULL,
    matter_id        text NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('electronic', 'paper')),
    -- 0 for every submission when revision is not allowed, so the unique key below
    -- refuses a second one; when it is allowed, 1, 2, ... in order.
    revision         integer NOT NULL DEFAULT 0 CHECK (revision >= 0),
    -- art. 137: the server's receive time is the legal vote time
    received_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    paper_date       date,                      -- the date written on a paper ballot
    proxy_voter_id   text,                      -- set when cast by a proxy (书面委托)
    idempotency_key  text,
    salt             bytea NOT NULL,            -- secret; makes the receipt unguessable
    receipt          bytea NOT NULL,            -- sha256(canonical submission || salt)
    PRIMARY KEY (community_id, meeting_id, ballot_id),
    UNIQUE (community_id, meeting_id, voter_id, matter_id, channel, revision),
    UNIQUE (community_id, meeting_id, receipt),
    FOREIGN KEY (community_id, meeting_id, voter_id) REFERENCES electorate (community_id, meeting_id, voter_id),
    FOREIGN KEY (community_id, meeting_id, matter_id) REFERENCES matter (community_id, meeting_id, matter_id)
);
CREATE INDEX submission_matter ON submission (community_id, meeting_id, matter_id);
CREATE UNIQUE INDEX submission_idempotency
    ON submission (community_id, meeting_id, voter_id, idempotency_key, matter_id)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE submission_choice (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    ballot_id     uuid NOT NULL,
    candidate_id  text NOT NULL DEFAULT '',     -- '' for a resolution
    choice        text NOT NULL CHECK (choice IN ('yes', 'no', 'abstain')),
    PRIMARY KEY (community_id, meeting_id, ballot_id, candidate_id),
    FOREIGN KEY (community_id, meeting_id, ballot_id) REFERENCES submission (community_id, meeting_id, ballot_id)
);

CREATE TRIGGER submission_append_only BEFORE UPDATE OR DELETE ON submission
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER submission_choice_append_only BEFORE UPDATE OR DELETE ON submission_choice
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
