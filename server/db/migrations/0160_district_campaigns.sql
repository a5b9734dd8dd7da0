-- The district level above the meetings (docs/district.md): 社区 (居委会) between street and
-- community with staff scoped to it, campaigns (a district's plan as data), the property-management
-- choice that ends a community's way, and the subsidy facts.

-- 社区 (neighbourhood committee, 居委会): a street's subdivision; a community may belong to one.
CREATE TABLE shequ (
    shequ_id   text PRIMARY KEY CHECK (shequ_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    street_id  text NOT NULL REFERENCES street (street_id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100)
);
CREATE INDEX shequ_street ON shequ (street_id);
ALTER TABLE community ADD COLUMN shequ_id text REFERENCES shequ (shequ_id);
CREATE INDEX community_shequ ON community (shequ_id);

-- A 社区 admin sees and acts for the communities of its 社区 (staff_shequ), like a street admin for its street.
ALTER TABLE staff DROP CONSTRAINT staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check
    CHECK (role IN ('district_admin', 'street_admin', 'shequ_admin', 'prep_group', 'committee', 'auditor'));
CREATE TABLE staff_shequ (
    staff_id  bigint NOT NULL REFERENCES staff (staff_id),
    shequ_id  text NOT NULL REFERENCES shequ (shequ_id),
    PRIMARY KEY (staff_id, shequ_id)
);

-- A campaign: the district's plan (e.g. 鲤城区 2022: 222 communities in three batches).
CREATE TABLE campaign (
    campaign_id  text PRIMARY KEY CHECK (campaign_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    district_id  text NOT NULL REFERENCES district (district_id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    starts_on    date NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Batches: by due_on, share_percent of the campaign's communities (outside special areas) must be done,
-- cumulatively with the earlier batches; one_per_shequ: and at least one in every 社区.
CREATE TABLE campaign_batch (
    campaign_id    text NOT NULL REFERENCES campaign (campaign_id),
    batch_no       integer NOT NULL CHECK (batch_no BETWEEN 1 AND 20),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    due_on         date NOT NULL,
    share_percent  integer NOT NULL CHECK (share_percent BETWEEN 1 AND 100),
    one_per_shequ  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (campaign_id, batch_no)
);

-- Special areas with their own date for all their communities (e.g. 江南新区 by 2022-06-30).
CREATE TABLE campaign_area (
    campaign_id  text NOT NULL REFERENCES campaign (campaign_id),
    area_id      text NOT NULL CHECK (area_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    due_on       date NOT NULL,
    PRIMARY KEY (campaign_id, area_id)
);

-- A community in a campaign: its planned batch or special area, and its households (for subsidies).
CREATE TABLE campaign_community (
    community_id  text NOT NULL REFERENCES community (community_id),
    campaign_id   text NOT NULL REFERENCES campaign (campaign_id),
    batch_no      integer,
    area_id       text,
    households    integer NOT NULL CHECK (households BETWEEN 0 AND 100000),
    added_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, campaign_id),
    FOREIGN KEY (campaign_id, batch_no) REFERENCES campaign_batch (campaign_id, batch_no),
    FOREIGN KEY (campaign_id, area_id) REFERENCES campaign_area (campaign_id, area_id),
    CHECK (batch_no IS NULL OR area_id IS NULL)
);
CREATE INDEX campaign_community_campaign ON campaign_community (campaign_id);

-- How the community is managed, as the assembly decided (选聘物业 or 自主管理): a fact with its source,
-- a passed matter of a published result.  The contract type sets the subsidy (100 or 30 yuan a household).
CREATE TABLE management_choice (
    community_id   text NOT NULL REFERENCES community (community_id),
    choice_no      integer NOT NULL CHECK (choice_no > 0),
    mode           text NOT NULL CHECK (mode IN ('property_company', 'self_managed')),
    company        text CHECK (length(company) BETWEEN 1 AND 200),
    contract_type  text CHECK (contract_type IN ('state_owned', 'street', 'community', 'other')),
    decided_on     date NOT NULL,
    meeting_id     text NOT NULL,
    matter_id      text NOT NULL,
    recorded_by    text NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, choice_no),
    FOREIGN KEY (community_id, meeting_id, matter_id) REFERENCES matter (community_id, meeting_id, matter_id),
    CHECK ((mode = 'property_company') = (company IS NOT NULL AND contract_type IS NOT NULL))
);
CREATE TRIGGER management_choice_append_only BEFORE UPDATE OR DELETE ON management_choice
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Who would receive the preparatory group's subsidy (通信、交通、就餐), with their employment as recorded:
-- civil servants (公务员) and public-institution staff (事业单位工作人员) may not be paid.
CREATE TABLE subsidy_recipient (
    community_id   text NOT NULL REFERENCES community (community_id),
    recipient_no   integer NOT NULL CHECK (recipient_no > 0),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    duty           text NOT NULL DEFAULT '' CHECK (length(duty) <= 50),
    employment     text NOT NULL CHECK (employment IN ('civil_servant', 'public_institution', 'other')),
    recorded_by    text NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, recipient_no)
);
