-- Before the vote (docs/district.md): the preparatory group (筹备组) with its posting and objections,
-- the register's public posting (业主名册公示) with owners' corrections, and the temporary management
-- committee (临时物业管理委员会).

-- 筹备组: drafted, posted for at least 7 days, formed when the posting ended with no open objection
-- (formed_on, which also becomes community.prep_group_formed_on: the 60-day deadline runs from it);
-- 'rejected' when the street upheld an objection (a new group is drafted).
CREATE TABLE prep_group (
    community_id   text NOT NULL REFERENCES community (community_id),
    group_no       integer NOT NULL CHECK (group_no > 0),
    state          text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'posted', 'formed', 'rejected')),
    posted_from    timestamptz,
    posted_until   timestamptz,
    formed_on      date,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, group_no),
    CHECK ((state = 'draft') = (posted_from IS NULL)),
    CHECK ((posted_from IS NULL) = (posted_until IS NULL)),
    CHECK (posted_until IS NULL OR posted_until >= posted_from + interval '7 days'),
    CHECK ((state = 'formed') = (formed_on IS NOT NULL))
);
CREATE UNIQUE INDEX prep_group_one_current ON prep_group (community_id) WHERE state IN ('draft', 'posted', 'formed');

CREATE TABLE prep_group_member (
    community_id   text NOT NULL,
    group_no       integer NOT NULL,
    member_no      integer NOT NULL CHECK (member_no > 0),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    side           text NOT NULL CHECK (side IN ('owner', 'developer', 'street', 'residents_committee', 'other')),
    unit_label     text NOT NULL DEFAULT '' CHECK (length(unit_label) <= 64),
    party_member   boolean NOT NULL DEFAULT false,
    leader         boolean NOT NULL DEFAULT false,
    -- civil servants and public-institution staff may not receive the group's subsidy
    employment     text NOT NULL DEFAULT 'other' CHECK (employment IN ('civil_servant', 'public_institution', 'other')),
    PRIMARY KEY (community_id, group_no, member_no),
    FOREIGN KEY (community_id, group_no) REFERENCES prep_group (community_id, group_no)
);
CREATE UNIQUE INDEX prep_group_one_leader ON prep_group_member (community_id, group_no) WHERE leader;

-- Objections to the posted list, by owners (signed in with a ballot code) or the public; the street resolves.
CREATE TABLE prep_group_objection (
    community_id   text NOT NULL,
    group_no       integer NOT NULL,
    objection_no   integer NOT NULL CHECK (objection_no > 0),
    filed_by       text NOT NULL CHECK (length(filed_by) BETWEEN 1 AND 120),
    text           text NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    filed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    outcome        text CHECK (outcome IN ('upheld', 'dismissed')),
    reason         text CHECK (length(reason) BETWEEN 1 AND 1000),
    resolved_by    text,
    resolved_at    timestamptz,
    PRIMARY KEY (community_id, group_no, objection_no),
    FOREIGN KEY (community_id, group_no) REFERENCES prep_group (community_id, group_no),
    CHECK ((outcome IS NULL) = (reason IS NULL) AND (outcome IS NULL) = (resolved_at IS NULL))
);

-- 业主名册公示: a register version shown for a period; owners file corrections.
ALTER TABLE community ADD COLUMN register_posting_required boolean NOT NULL DEFAULT true;
CREATE TABLE register_posting (
    community_id   text NOT NULL REFERENCES community (community_id),
    posting_no     integer NOT NULL CHECK (posting_no > 0),
    version        integer NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, posting_no),
    FOREIGN KEY (community_id, version) REFERENCES register_version (community_id, version),
    CHECK (ends_at > starts_at)
);

CREATE TABLE register_correction (
    community_id   text NOT NULL,
    posting_no     integer NOT NULL,
    correction_no  integer NOT NULL CHECK (correction_no > 0),
    unit_id        text NOT NULL,
    owner_id       text NOT NULL,
    text           text NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    filed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'refused')),
    reason         text CHECK (length(reason) BETWEEN 1 AND 1000),
    new_version    integer,
    diff           jsonb,
    resolved_by    text,
    resolved_at    timestamptz,
    PRIMARY KEY (community_id, posting_no, correction_no),
    FOREIGN KEY (community_id, posting_no) REFERENCES register_posting (community_id, posting_no),
    CHECK ((status = 'open') = (resolved_at IS NULL)),
    CHECK (status <> 'refused' OR reason IS NOT NULL),
    CHECK ((status = 'accepted') = (new_version IS NOT NULL AND diff IS NOT NULL))
);

-- Failed "which unit is mine" checks on the posting, per unit: 5 in a row lock it for 15 minutes.
CREATE TABLE posting_lookup_throttle (
    community_id   text NOT NULL,
    unit_id        text NOT NULL,
    failures       integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    PRIMARY KEY (community_id, unit_id)
);

-- 临时物业管理委员会: created by the street where no committee exists or its term lapsed; ends when a
-- committee is formed (ended_on set then).  It may convene meetings in its own name (meeting_convener).
CREATE TABLE temporary_committee (
    community_id   text NOT NULL REFERENCES community (community_id),
    tc_no          integer NOT NULL CHECK (tc_no > 0),
    reason         text NOT NULL CHECK (reason IN ('no_committee', 'term_lapsed')),
    created_on     date NOT NULL,
    ended_on       date,
    end_reason     text,
    created_by     text NOT NULL,
    PRIMARY KEY (community_id, tc_no),
    CHECK ((ended_on IS NULL) = (end_reason IS NULL))
);
CREATE UNIQUE INDEX temporary_committee_one_active ON temporary_committee (community_id) WHERE ended_on IS NULL;

CREATE TABLE temporary_committee_member (
    community_id   text NOT NULL,
    tc_no          integer NOT NULL,
    member_no      integer NOT NULL CHECK (member_no > 0),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    side           text NOT NULL CHECK (side IN ('street', 'residents_committee', 'owner')),
    unit_label     text NOT NULL DEFAULT '',
    PRIMARY KEY (community_id, tc_no, member_no),
    FOREIGN KEY (community_id, tc_no) REFERENCES temporary_committee (community_id, tc_no)
);

CREATE TABLE meeting_convener (
    community_id   text NOT NULL,
    meeting_id     text NOT NULL,
    convener       text NOT NULL CHECK (convener IN ('temporary_committee')),
    tc_no          integer NOT NULL,
    PRIMARY KEY (community_id, meeting_id),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id),
    FOREIGN KEY (community_id, tc_no) REFERENCES temporary_committee (community_id, tc_no)
);
