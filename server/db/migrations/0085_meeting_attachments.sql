-- The documents owners vote on (议事规则、管理规约、方案 drafts), attached to a meeting while it is a
-- draft and frozen with it at the notice: their sha256 goes into the notice (its audit entry) and
-- into the published record (meeting.json, docs/bundle-format.md).  PDF or UTF-8 text only, at most
-- 10 MiB each; the content is kept here (bytea), so one database backup holds the whole meeting.
CREATE TABLE meeting_attachment (
    community_id   text NOT NULL,
    meeting_id     text NOT NULL,
    attachment_id  integer GENERATED ALWAYS AS IDENTITY,   -- never reused, even after a draft deletion
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    filename       text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200 AND filename !~ '[/\\[:cntrl:]]'),
    media_type     text NOT NULL CHECK (media_type IN ('application/pdf', 'text/plain')),
    size           integer NOT NULL CHECK (size BETWEEN 1 AND 10485760),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content        bytea NOT NULL,
    uploaded_by    text NOT NULL,
    uploaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, meeting_id, attachment_id),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id),
    CHECK (octet_length(content) = size),
    CHECK (media_type <> 'application/pdf' OR substring(content FROM 1 FOR 5) = '\x255044462d'::bytea)  -- %PDF-
);

-- Added or removed only while the meeting is a draft (the function of migration 0010, which also
-- makes a concurrent notice wait); never changed in place (delete and upload again).
CREATE TRIGGER meeting_attachment_frozen BEFORE INSERT OR DELETE ON meeting_attachment
    FOR EACH ROW EXECUTE FUNCTION meeting_part_guard();
CREATE TRIGGER meeting_attachment_unchanged BEFORE UPDATE ON meeting_attachment
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
