-- The owner register: district -> street -> community -> (versioned) units, owners, ownership.
-- Every table of community data leads its primary key with community_id and has no
-- foreign key that crosses communities, so it can be distributed by community.

CREATE TABLE district (
    district_id  text PRIMARY KEY CHECK (district_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100)
);

CREATE TABLE street (
    street_id    text PRIMARY KEY CHECK (street_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    district_id  text NOT NULL REFERENCES district (district_id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100)
);

CREATE TABLE community (
    community_id        text PRIMARY KEY CHECK (community_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    street_id           text REFERENCES street (street_id),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- 议事规则: whether parking spaces count as exclusive parts (off by default).
    count_parking_area  boolean NOT NULL DEFAULT false,
    -- 筹备组成立日期: the first meeting must be held within 60 days of it.
    prep_group_formed_on date,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX community_street ON community (street_id);

-- Each import makes a new version; a meeting freezes one.
CREATE TABLE register_version (
    community_id  text NOT NULL REFERENCES community (community_id),
    version       integer NOT NULL CHECK (version > 0),
    source_name   text NOT NULL DEFAULT '',
    source_sha256 text NOT NULL DEFAULT '',
    unit_count    integer NOT NULL DEFAULT 0,
    owner_count   integer NOT NULL DEFAULT 0,
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, version)
);

CREATE TABLE unit (
    community_id  text NOT NULL,
    version       integer NOT NULL,
    unit_id       text NOT NULL CHECK (length(unit_id) BETWEEN 1 AND 64),
    building      text NOT NULL CHECK (length(building) BETWEEN 1 AND 64),
    kind          text NOT NULL CHECK (kind IN ('dwelling', 'commercial', 'parking')),
    -- exclusive floor area in 0.01 m²
    area          bigint NOT NULL CHECK (area > 0),
    area_source   text NOT NULL CHECK (area_source IN ('registry', 'survey', 'contract')),
    holder        text NOT NULL CHECK (holder IN ('owner', 'developer')),
    PRIMARY KEY (community_id, version, unit_id),
    FOREIGN KEY (community_id, version) REFERENCES register_version (community_id, version)
);
CREATE INDEX unit_building ON unit (community_id, version, building);

CREATE TABLE owner (
    community_id  text NOT NULL,
    version       integer NOT NULL,
    owner_id      text NOT NULL CHECK (length(owner_id) BETWEEN 1 AND 64),
    name          text NOT NULL DEFAULT '',
    -- stored so they can be checked (sign-in asks for the last 4 digits); shown masked
    phone         text NOT NULL DEFAULT '',
    id_number     text NOT NULL DEFAULT '',
    -- 合法占有但未登记: recognised as owner by lawful possession, with the evidence
    recognised_by_possession boolean NOT NULL DEFAULT false,
    possession_evidence text NOT NULL DEFAULT '',
    PRIMARY KEY (community_id, version, owner_id),
    FOREIGN KEY (community_id, version) REFERENCES register_version (community_id, version),
    CHECK (NOT recognised_by_possession OR length(possession_evidence) > 0)
);

CREATE TABLE ownership (
    community_id   text NOT NULL,
    version        integer NOT NULL,
    unit_id        text NOT NULL,
    owner_id       text NOT NULL,
    representative boolean NOT NULL,
    PRIMARY KEY (community_id, version, unit_id, owner_id),
    FOREIGN KEY (community_id, version, unit_id) REFERENCES unit (community_id, version, unit_id),
    FOREIGN KEY (community_id, version, owner_id) REFERENCES owner (community_id, version, owner_id)
);
-- At most one representative per unit ...
CREATE UNIQUE INDEX ownership_one_representative
    ON ownership (community_id, version, unit_id) WHERE representative;
CREATE INDEX ownership_owner ON ownership (community_id, version, owner_id);

-- ... and at least one, checked when the importing transaction commits.
CREATE FUNCTION unit_has_representative() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM ownership o
         WHERE o.community_id = NEW.community_id AND o.version = NEW.version
           AND o.unit_id = NEW.unit_id AND o.representative
    ) THEN
        RAISE EXCEPTION 'unit % has no representative owner', NEW.unit_id
            USING ERRCODE = '23514', CONSTRAINT = 'unit_has_representative';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER unit_has_representative
    AFTER INSERT ON unit DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION unit_has_representative();

-- Register versions are history: never rewritten once made.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;
CREATE TRIGGER unit_append_only BEFORE UPDATE OR DELETE ON unit
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ownership_append_only BEFORE UPDATE OR DELETE ON ownership
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
