-- The voting window (voting-rules.md): voting runs for the whole noticed period and is never
-- closed early; a meeting may be voided with a reason (state 'voided', before the close), or
-- extended, when its rules allow it, by a published extension notice (延期公告) made before the
-- current close.  See docs/meetings.md "The voting window".

-- A new final state, reached from draft, noticed or open.
ALTER TABLE meeting DROP CONSTRAINT meeting_state_check;
ALTER TABLE meeting ADD CONSTRAINT meeting_state_check
    CHECK (state IN ('draft', 'noticed', 'open', 'closed', 'published', 'voided'));
-- A draft voided before its notice has no frozen register, totals or area places (0003, 0070).
ALTER TABLE meeting DROP CONSTRAINT meeting_check1;
ALTER TABLE meeting ADD CONSTRAINT meeting_frozen_at_notice
    CHECK (state = 'draft' OR (state = 'voided' AND noticed_at IS NULL)
           OR (register_version IS NOT NULL AND total_area IS NOT NULL
               AND total_persons IS NOT NULL AND noticed_at IS NOT NULL));
ALTER TABLE meeting DROP CONSTRAINT meeting_area_places_frozen;
ALTER TABLE meeting ADD CONSTRAINT meeting_area_places_frozen
    CHECK (state = 'draft' OR (state = 'voided' AND noticed_at IS NULL) OR area_places IS NOT NULL);

ALTER TABLE meeting
    -- How many extensions the meeting's rules allow (0: none) and how many days all of them may
    -- add together; set on the draft, frozen at the notice.
    ADD COLUMN max_extensions     integer NOT NULL DEFAULT 0 CHECK (max_extensions BETWEEN 0 AND 10),
    ADD COLUMN max_extension_days integer NOT NULL DEFAULT 0 CHECK (max_extension_days BETWEEN 0 AND 365),
    -- Set together when the meeting is voided, never changed afterwards.
    ADD COLUMN voided_at          timestamptz,
    ADD COLUMN void_reason        text CHECK (length(void_reason) BETWEEN 1 AND 500),
    ADD CONSTRAINT meeting_void_reason
        CHECK ((state = 'voided') = (voided_at IS NOT NULL AND void_reason IS NOT NULL));

-- One row per published extension notice (延期公告), numbered 1, 2, … per meeting; append-only.
CREATE TABLE meeting_extension (
    community_id       text NOT NULL,
    meeting_id         text NOT NULL,
    number             integer NOT NULL CHECK (number >= 1),
    previous_closes_at timestamptz NOT NULL,
    closes_at          timestamptz NOT NULL,
    reason             text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    actor              text NOT NULL,
    published_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, meeting_id, number),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id),
    CHECK (closes_at > previous_closes_at),
    -- published before the close it moves
    CHECK (published_at < previous_closes_at)
);
CREATE TRIGGER meeting_extension_append_only BEFORE UPDATE OR DELETE ON meeting_extension
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The freeze of migration 0010, with the new state and columns: states still only move forward
-- (now also draft/noticed/open -> voided); the extension limits are frozen at the notice like the
-- rules; a voided meeting's time and reason never change.
CREATE OR REPLACE FUNCTION meeting_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state <> 'draft' THEN
            RAISE EXCEPTION 'meeting % was noticed and cannot be deleted', OLD.meeting_id
                USING ERRCODE = '23514', CONSTRAINT = 'meeting_frozen_after_notice';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state AND (OLD.state, NEW.state) NOT IN (
            ('draft', 'noticed'), ('noticed', 'open'), ('open', 'closed'), ('closed', 'published'),
            ('draft', 'voided'), ('noticed', 'voided'), ('open', 'voided')) THEN
        RAISE EXCEPTION 'meeting % cannot go from % to %', OLD.meeting_id, OLD.state, NEW.state
            USING ERRCODE = '23514', CONSTRAINT = 'meeting_state_order';
    END IF;
    IF OLD.state <> 'draft' AND (NEW.community_id, NEW.meeting_id, NEW.title, NEW.rules, NEW.show_live_results,
                                 NEW.register_version, NEW.total_area, NEW.total_persons,
                                 NEW.max_extensions, NEW.max_extension_days)
            IS DISTINCT FROM (OLD.community_id, OLD.meeting_id, OLD.title, OLD.rules, OLD.show_live_results,
                              OLD.register_version, OLD.total_area, OLD.total_persons,
                              OLD.max_extensions, OLD.max_extension_days) THEN
        RAISE EXCEPTION 'meeting % was noticed: title, rules, register version and totals are frozen',
            OLD.meeting_id USING ERRCODE = '23514', CONSTRAINT = 'meeting_frozen_after_notice';
    END IF;
    IF OLD.state = 'voided' AND (NEW.voided_at, NEW.void_reason) IS DISTINCT FROM (OLD.voided_at, OLD.void_reason)
    THEN
        RAISE EXCEPTION 'meeting % was voided: its void time and reason are final', OLD.meeting_id
            USING ERRCODE = '23514', CONSTRAINT = 'meeting_void_final';
    END IF;
    RETURN NEW;
END $$;
