-- Elections from nomination to a committee on file (docs/elections.md).
--
-- nomination          an owner put forward for a body (self, or by the preparatory group), and
--                     the group's qualification decision (reason required when refused)
-- candidate_source    which nomination (and owner) stands behind a ballot candidate
-- election_runoff     a runoff (另行选举) matter and the election it continues
-- committee           the body formed (or not, with the reason) by an election, and its follow-up:
--                     first meeting, filing, seal, term
-- committee_member    members and alternates in vote order; leaving and promotion
-- committee_event     append-only log of what is published to owners

CREATE TABLE nomination (
    community_id     text NOT NULL REFERENCES community (community_id),
    nomination_id    integer NOT NULL CHECK (nomination_id > 0),
    body             text NOT NULL CHECK (body IN ('committee', 'supervisory')),
    owner_id         text NOT NULL,              -- the nominee, an owner of the register
    register_version integer NOT NULL,           -- the register version the nominee was found in
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    unit_label       text NOT NULL DEFAULT '' CHECK (length(unit_label) <= 100),
    party_member     boolean NOT NULL DEFAULT false,
    statement        text NOT NULL DEFAULT '' CHECK (length(statement) <= 2000),
    source           text NOT NULL CHECK (source IN ('self', 'prep_group')),
    nominated_by     text NOT NULL,              -- voter:<owner_id> or staff:<username>
    nominated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'qualified', 'refused')),
    reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    decided_by       text,
    decided_at       timestamptz,
    PRIMARY KEY (community_id, nomination_id),
    FOREIGN KEY (community_id, register_version, owner_id) REFERENCES owner (community_id, version, owner_id),
    CHECK (status <> 'refused' OR length(btrim(reason)) > 0),
    CHECK ((status = 'pending') = (decided_at IS NULL AND decided_by IS NULL)),
    CHECK (source <> 'self' OR nominated_by = 'voter:' || owner_id)
);
-- One live (pending or qualified) nomination per owner and body.
CREATE UNIQUE INDEX nomination_one_live ON nomination (community_id, body, owner_id)
    WHERE status IN ('pending', 'qualified');

CREATE TABLE candidate_source (
    community_id   text NOT NULL,
    meeting_id     text NOT NULL,
    matter_id      text NOT NULL,
    candidate_id   text NOT NULL,
    nomination_id  integer,                     -- NULL for a runoff candidate copied from a candidate
    owner_id       text NOT NULL,
    PRIMARY KEY (community_id, meeting_id, matter_id, candidate_id),
    FOREIGN KEY (community_id, meeting_id, matter_id, candidate_id)
        REFERENCES candidate (community_id, meeting_id, matter_id, candidate_id) ON DELETE CASCADE,
    FOREIGN KEY (community_id, nomination_id) REFERENCES nomination (community_id, nomination_id)
);
-- A person stands once per matter.
CREATE UNIQUE INDEX candidate_source_one_owner ON candidate_source (community_id, meeting_id, matter_id, owner_id);

CREATE TABLE election_runoff (
    community_id      text NOT NULL,
    meeting_id        text NOT NULL,           -- the runoff meeting and matter
    matter_id         text NOT NULL,
    origin_meeting_id text NOT NULL,           -- the election it continues
    origin_matter_id  text NOT NULL,
    plan              jsonb NOT NULL,           -- server.ballot.elections.RunoffPlan.as_json()
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, meeting_id, matter_id),
    UNIQUE (community_id, origin_meeting_id, origin_matter_id),
    FOREIGN KEY (community_id, meeting_id, matter_id) REFERENCES matter (community_id, meeting_id, matter_id)
        ON DELETE CASCADE,
    FOREIGN KEY (community_id, origin_meeting_id, origin_matter_id) REFERENCES matter (community_id, meeting_id, matter_id)
);

CREATE TABLE committee (
    community_id     text NOT NULL REFERENCES community (community_id),
    committee_id     integer NOT NULL CHECK (committee_id > 0),
    body             text NOT NULL CHECK (body IN ('committee', 'supervisory')),
    meeting_id       text NOT NULL,             -- the election that formed it (not a runoff)
    matter_id        text NOT NULL,
    seats            integer NOT NULL CHECK (seats > 0),
    alternate_places integer NOT NULL CHECK (alternate_places >= 0),
    formed           boolean NOT NULL DEFAULT false,
    reason           text NOT NULL DEFAULT '',  -- why not formed (Chinese), shown to owners
    notes            text[] NOT NULL DEFAULT '{}',
    pending_runoff   jsonb,                     -- RunoffPlan still to hold, or NULL
    elected_on       date,                      -- the day the members were all elected
    first_meeting_on date,
    filing_date      date,
    filing_ref       text CHECK (filing_ref IS NULL OR length(filing_ref) BETWEEN 1 AND 100),
    seal_status      text NOT NULL DEFAULT 'none' CHECK (seal_status IN ('none', 'applied', 'made')),
    term_start       date,
    term_end         date,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, committee_id),
    UNIQUE (community_id, meeting_id, matter_id),
    FOREIGN KEY (community_id, meeting_id, matter_id) REFERENCES matter (community_id, meeting_id, matter_id),
    CHECK (formed = (elected_on IS NOT NULL)),
    CHECK (formed OR length(reason) > 0),
    CHECK ((filing_date IS NULL) = (filing_ref IS NULL)),
    CHECK (first_meeting_on IS NULL OR formed),
    CHECK (filing_date IS NULL OR first_meeting_on IS NOT NULL),
    CHECK (seal_status = 'none' OR filing_date IS NOT NULL),   -- seals are made after filing
    CHECK ((term_start IS NULL) = (term_end IS NULL)),
    CHECK (term_start IS NULL OR (term_end >= term_start + interval '3 years'
                                  AND term_end <= term_start + interval '5 years'))
);

CREATE TABLE committee_member (
    community_id  text NOT NULL,
    committee_id  integer NOT NULL,
    member_no     integer NOT NULL CHECK (member_no > 0),  -- vote order: members, then alternates
    candidate_id  text NOT NULL,
    meeting_id    text NOT NULL,                          -- the election (or runoff) that placed them
    matter_id     text NOT NULL,
    owner_id      text,                                   -- from candidate_source when known
    name          text NOT NULL,
    unit_label    text NOT NULL DEFAULT '',
    party_member  boolean NOT NULL DEFAULT false,
    role          text NOT NULL CHECK (role IN ('member', 'alternate')),
    office        text NOT NULL DEFAULT '' CHECK (office IN ('', 'chair', 'vice_chair')),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'left')),
    left_on       date,
    leave_reason  text NOT NULL DEFAULT '',
    promoted_on   date,
    PRIMARY KEY (community_id, committee_id, member_no),
    FOREIGN KEY (community_id, committee_id) REFERENCES committee (community_id, committee_id),
    CHECK ((status = 'left') = (left_on IS NOT NULL)),
    CHECK (status = 'active' OR length(leave_reason) > 0),
    CHECK (office = '' OR (role = 'member' AND status = 'active')),
    CHECK (promoted_on IS NULL OR role = 'member')
);
CREATE UNIQUE INDEX committee_one_chair ON committee_member (community_id, committee_id) WHERE office = 'chair';

CREATE TABLE committee_event (
    community_id  text NOT NULL,
    committee_id  integer NOT NULL,
    seq           integer NOT NULL CHECK (seq > 0),
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind          text NOT NULL,
    summary       text NOT NULL CHECK (length(summary) BETWEEN 1 AND 1000),   -- Chinese, published
    detail        jsonb NOT NULL DEFAULT '{}',
    actor         text NOT NULL,
    PRIMARY KEY (community_id, committee_id, seq),
    FOREIGN KEY (community_id, committee_id) REFERENCES committee (community_id, committee_id)
);
CREATE TRIGGER committee_event_append_only BEFORE UPDATE OR DELETE ON committee_event
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
