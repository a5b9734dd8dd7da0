-- The notice freeze and the lifecycle order, enforced in the database.
--
-- After a meeting's notice is published (state <> 'draft'): its title, rules, live-results
-- switch, frozen register version and totals cannot change, and its matters, candidates and
-- electorate can be neither added, changed nor removed.  States only move forward:
-- draft -> noticed -> open -> closed -> published.  noticed_at / opens_at / closes_at are
-- deliberately not frozen here: the API never changes them after notice, and test fixtures
-- and the demo backdate them with SQL to skip the 15-day wait (see docs/meetings.md).

-- The counted units of each voting subject, frozen with the electorate.
ALTER TABLE electorate ADD COLUMN units text[] NOT NULL DEFAULT '{}';

CREATE FUNCTION meeting_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state <> 'draft' THEN
            RAISE EXCEPTION 'meeting % was noticed and cannot be deleted', OLD.meeting_id
                USING ERRCODE = '23514', CONSTRAINT = 'meeting_frozen_after_notice';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state AND (OLD.state, NEW.state) NOT IN (
            ('draft', 'noticed'), ('noticed', 'open'), ('open', 'closed'), ('closed', 'published')) THEN
        RAISE EXCEPTION 'meeting % cannot go from % to %', OLD.meeting_id, OLD.state, NEW.state
            USING ERRCODE = '23514', CONSTRAINT = 'meeting_state_order';
    END IF;
    IF OLD.state <> 'draft' AND (NEW.community_id, NEW.meeting_id, NEW.title, NEW.rules, NEW.show_live_results,
                                 NEW.register_version, NEW.total_area, NEW.total_persons)
            IS DISTINCT FROM (OLD.community_id, OLD.meeting_id, OLD.title, OLD.rules, OLD.show_live_results,
                              OLD.register_version, OLD.total_area, OLD.total_persons) THEN
        RAISE EXCEPTION 'meeting % was noticed: title, rules, register version and totals are frozen',
            OLD.meeting_id USING ERRCODE = '23514', CONSTRAINT = 'meeting_frozen_after_notice';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER meeting_guard BEFORE UPDATE OR DELETE ON meeting
    FOR EACH ROW EXECUTE FUNCTION meeting_guard();

-- Matters, candidates and the electorate change only while their meeting is a draft.
-- FOR SHARE makes a concurrent notice wait for (or be waited on by) this change.
CREATE FUNCTION meeting_part_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_community text;
    row_meeting   text;
    current_state text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_community := OLD.community_id; row_meeting := OLD.meeting_id;
    ELSE
        row_community := NEW.community_id; row_meeting := NEW.meeting_id;
    END IF;
    SELECT state INTO current_state FROM meeting
     WHERE community_id = row_community AND meeting_id = row_meeting FOR SHARE;
    IF current_state IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION '% of meeting % cannot change after the notice', TG_TABLE_NAME, row_meeting
            USING ERRCODE = '23514', CONSTRAINT = 'meeting_frozen_after_notice';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER matter_frozen BEFORE INSERT OR UPDATE OR DELETE ON matter
    FOR EACH ROW EXECUTE FUNCTION meeting_part_guard();
CREATE TRIGGER candidate_frozen BEFORE INSERT OR UPDATE OR DELETE ON candidate
    FOR EACH ROW EXECUTE FUNCTION meeting_part_guard();
CREATE TRIGGER electorate_frozen BEFORE INSERT OR UPDATE OR DELETE ON electorate
    FOR EACH ROW EXECUTE FUNCTION meeting_part_guard();

-- The scheduler looks for meetings to open or close by state and time.
CREATE INDEX meeting_due_open ON meeting (opens_at) WHERE state = 'noticed';
CREATE INDEX meeting_due_close ON meeting (closes_at) WHERE state = 'open';
