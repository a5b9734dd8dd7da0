-- Staff accounts, their community scopes, and the hash-chained audit log.

CREATE TABLE staff (
    staff_id       bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{2,64}$'),
    display_name   text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,           -- argon2id
    role           text NOT NULL CHECK (role IN
                     ('district_admin', 'street_admin', 'prep_group', 'committee', 'auditor')),
    -- street_admin: the street whose communities it may touch
    street_id      text REFERENCES street (street_id),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'street_admin' OR street_id IS NOT NULL)
);

-- prep_group, committee, auditor: the communities they may touch.
CREATE TABLE staff_community (
    community_id  text NOT NULL REFERENCES community (community_id),
    staff_id      bigint NOT NULL REFERENCES staff (staff_id),
    PRIMARY KEY (community_id, staff_id)
);
CREATE INDEX staff_community_staff ON staff_community (staff_id);

-- Append-only, hash-chained per community ('*' holds actions outside any community).
-- hash = sha256(prev_hash || canonical json of the row's other fields); see server/audit.py.
CREATE TABLE audit_log (
    community_id  text NOT NULL,
    seq           bigint NOT NULL CHECK (seq > 0),
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text NOT NULL,
    action        text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    PRIMARY KEY (community_id, seq)
);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
