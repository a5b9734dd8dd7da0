-- Ballots of evote-bundle/2: matters scoped to some buildings, and invalid (blank or unclear) ballots.
--
-- matter.scope         the buildings a matter decides for (a lift for one building, that building's
--                      maintenance funds); empty: the whole community.  Its electorate is the voting
--                      subjects with a counted unit in those buildings (server.ballot.weights).
--                      Frozen at the notice with the rest of the matter: the matter_frozen trigger
--                      of 0010 refuses every insert, update or delete of a matter row once its
--                      meeting is noticed, whichever columns change, and its guard below refuses an
--                      attempt to change the scope of a noticed matter in the same words.
-- submission_choice    the choice 'invalid': a returned paper sheet that is blank or unclear for a
--                      matter, kept and counted under the meeting's invalid_ballot rule.  It has no
--                      candidate ('': the one row of a resolution, the single row of a blank
--                      election ballot) and only a paper submission may carry it (an electronic
--                      ballot is never invalid).

-- Building names as in the register (unit.building: 1–64 characters), each once, at most 200.
CREATE FUNCTION building_list_valid(names text[]) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT coalesce(array_ndims(names), 1) = 1
       AND cardinality(names) <= 200
       AND NOT EXISTS (SELECT 1 FROM unnest(names) AS n WHERE n IS NULL OR length(n) NOT BETWEEN 1 AND 64)
       AND (SELECT count(DISTINCT n) FROM unnest(names) AS n) = cardinality(names)
$$;

ALTER TABLE matter ADD COLUMN scope text[] NOT NULL DEFAULT '{}';
ALTER TABLE matter ADD CONSTRAINT matter_scope_valid CHECK (building_list_valid(scope));

-- The notice freeze, named for the scope: the same refusal as meeting_part_guard (0010), raised
-- first when an UPDATE of a noticed matter changes its scope, so the error says what was frozen.
CREATE FUNCTION matter_scope_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_state text;
BEGIN
    SELECT state INTO current_state FROM meeting
     WHERE community_id = NEW.community_id AND meeting_id = NEW.meeting_id FOR SHARE;
    IF current_state IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION 'the scope of matter % of meeting % is frozen since the notice', OLD.matter_id,
            OLD.meeting_id USING ERRCODE = '23514', CONSTRAINT = 'meeting_frozen_after_notice';
    END IF;
    RETURN NEW;
END $$;

-- Named to sort before matter_frozen (triggers of one event fire in name order).
CREATE TRIGGER matter_a_scope_frozen BEFORE UPDATE OF scope ON matter
    FOR EACH ROW WHEN (OLD.scope IS DISTINCT FROM NEW.scope) EXECUTE FUNCTION matter_scope_guard();

ALTER TABLE submission_choice DROP CONSTRAINT submission_choice_choice_check;
ALTER TABLE submission_choice ADD CONSTRAINT submission_choice_choice_check
    CHECK (choice IN ('yes', 'no', 'abstain', 'invalid'));
ALTER TABLE submission_choice ADD CONSTRAINT submission_choice_invalid_without_candidate
    CHECK (choice <> 'invalid' OR candidate_id = '');

-- An AFTER trigger: it runs at the end of the statement, so it sees the submission inserted by
-- the same statement (both are one data-modifying CTE).  Only rows with choice 'invalid' pay for it.
CREATE FUNCTION invalid_choice_on_paper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM submission s
                    WHERE s.community_id = NEW.community_id AND s.meeting_id = NEW.meeting_id
                      AND s.ballot_id = NEW.ballot_id AND s.channel = 'paper') THEN
        RAISE EXCEPTION 'ballot %: only a paper ballot can be invalid', NEW.ballot_id
            USING ERRCODE = '23514', CONSTRAINT = 'submission_choice_invalid_on_paper';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER submission_choice_invalid_on_paper AFTER INSERT ON submission_choice
    FOR EACH ROW WHEN (NEW.choice = 'invalid') EXECUTE FUNCTION invalid_choice_on_paper();
