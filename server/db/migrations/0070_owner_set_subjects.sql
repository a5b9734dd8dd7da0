-- evote-bundle/2: areas in 0.001 m², and the frozen electorate as voting subjects that are owner sets.
--
-- 1. Areas.  Registers and surveys give areas with up to three decimals, so every area column
--    (unit.area, meeting.total_area, electorate.area) now counts 0.001 m²; what they held in
--    0.01 m² is multiplied by 10.  The triggers that keep register history and frozen meetings
--    unchanged are switched off for this one rewrite (inside this migration's transaction) and
--    switched on again.
-- 2. The frozen electorate.  A row is one voting subject (bundle-format.md "Voting subjects"):
--    voter_id    the subject id: its owners' ids sorted (by code point) and joined with '+'
--                (just the owner_id of a sole owner);
--    representative  the owner who casts the subject's ballot and holds its code;
--    units       its counted units (register order);
--    buildings, building_areas, building_units
--                per building of those units (first-seen order): the area of the subject's
--                units there and how many they are.  A matter scoped to some buildings weighs a
--                subject by its area there.  building (the first of buildings) stays for turnout
--                per building and code sheets.
--    Meetings noticed before this migration were frozen with one owner per voter_id; their rows
--    keep that voter_id (ballots, codes and sessions refer to it) with the owner as representative,
--    and their per-building areas are rebuilt from the frozen units where those add up.
-- 3. meeting.area_places: the decimals (2 or 3) the meeting's register prints areas with (3 when
--    any of its areas has a third decimal), frozen at notice with the totals; every area of the
--    meeting's result is printed with it.

-- ---------------------------------------------------------------- helpers for the checks

-- The subject id of an id's '+'-separated owners: sorted by code point, each once.
CREATE FUNCTION canonical_subject_id(voter_id text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT string_agg(owner_id, '+' ORDER BY owner_id)
      FROM (SELECT DISTINCT o COLLATE "C" AS owner_id FROM unnest(string_to_array(voter_id, '+')) AS o) owners
$$;

CREATE FUNCTION bigint_array_sum(items bigint[]) RETURNS numeric
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(sum(x), 0) FROM unnest(items) AS x
$$;

CREATE FUNCTION text_array_has_duplicates(items text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT count(DISTINCT x) <> count(x) FROM unnest(items) AS x
$$;

-- '+' joins the owners of a subject id, so an owner id never holds one (the importer never let
-- one in; NOT VALID leaves rows already stored alone).
ALTER TABLE owner ADD CONSTRAINT owner_id_without_plus CHECK (position('+' in owner_id) = 0) NOT VALID;

-- ---------------------------------------------------------------- 1. areas ×10

ALTER TABLE unit DISABLE TRIGGER unit_append_only;
UPDATE unit SET area = area * 10;
ALTER TABLE unit ENABLE TRIGGER unit_append_only;
COMMENT ON COLUMN unit.area IS 'exclusive floor area in 0.001 m²';

ALTER TABLE meeting ADD COLUMN area_places smallint CHECK (area_places IN (2, 3));
ALTER TABLE meeting DISABLE TRIGGER meeting_guard;
-- Areas so far had at most two decimals.
UPDATE meeting SET total_area = total_area * 10, area_places = 2 WHERE state <> 'draft';
ALTER TABLE meeting ENABLE TRIGGER meeting_guard;
COMMENT ON COLUMN meeting.total_area IS 'frozen at notice: total area of the voting subjects in 0.001 m²';
COMMENT ON COLUMN meeting.area_places IS 'frozen at notice: decimals (2 or 3) the register prints areas with';
ALTER TABLE meeting ADD CONSTRAINT meeting_area_places_frozen CHECK (state = 'draft' OR area_places IS NOT NULL);

-- area_places is frozen with the totals.  Its own trigger, so meeting_guard stays as 0010 wrote it.
CREATE FUNCTION meeting_area_places_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state <> 'draft' AND NEW.area_places IS DISTINCT FROM OLD.area_places THEN
        RAISE EXCEPTION 'meeting % was noticed: its area places are frozen', OLD.meeting_id
            USING ERRCODE = '23514', CONSTRAINT = 'meeting_frozen_after_notice';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER meeting_area_places_frozen BEFORE UPDATE OF area_places ON meeting
    FOR EACH ROW EXECUTE FUNCTION meeting_area_places_guard();

-- ---------------------------------------------------------------- 2. the electorate

ALTER TABLE electorate DISABLE TRIGGER electorate_frozen;

UPDATE electorate SET area = area * 10;
COMMENT ON COLUMN electorate.area IS 'the voting subject''s counted area in 0.001 m²';

ALTER TABLE electorate
    ADD COLUMN representative text,
    ADD COLUMN buildings text[],
    ADD COLUMN building_areas bigint[],
    ADD COLUMN building_units integer[];

-- Earlier meetings: one owner per voter_id, who is its own representative; by default the whole
-- area in the one building stored ...
UPDATE electorate
   SET representative = voter_id, buildings = ARRAY[building], building_areas = ARRAY[area],
       building_units = ARRAY[cardinality(units)];

-- ... and per building from the frozen units, where they add up to the frozen area.
WITH unit_rows AS (
    SELECT e.community_id, e.meeting_id, e.voter_id, u.building, u.area, x.position
      FROM electorate e
      JOIN meeting m ON m.community_id = e.community_id AND m.meeting_id = e.meeting_id
     CROSS JOIN LATERAL unnest(e.units) WITH ORDINALITY AS x(unit_id, position)
      JOIN unit u ON u.community_id = e.community_id AND u.version = m.register_version
                 AND u.unit_id = x.unit_id
), per_building AS (
    SELECT community_id, meeting_id, voter_id, building, sum(area)::bigint AS area,
           count(*)::integer AS units, min(position) AS first
      FROM unit_rows GROUP BY community_id, meeting_id, voter_id, building
), per_subject AS (
    SELECT community_id, meeting_id, voter_id,
           array_agg(building ORDER BY first) AS buildings, array_agg(area ORDER BY first) AS areas,
           array_agg(units ORDER BY first) AS units, sum(area) AS total, sum(units) AS unit_count
      FROM per_building GROUP BY community_id, meeting_id, voter_id
)
UPDATE electorate e
   SET buildings = s.buildings, building_areas = s.areas, building_units = s.units
  FROM per_subject s
 WHERE s.community_id = e.community_id AND s.meeting_id = e.meeting_id AND s.voter_id = e.voter_id
   AND s.total = e.area AND s.unit_count = cardinality(e.units) AND s.buildings[1] = e.building;

ALTER TABLE electorate
    ALTER COLUMN representative SET NOT NULL,
    ALTER COLUMN buildings SET NOT NULL,
    ALTER COLUMN building_areas SET NOT NULL,
    ALTER COLUMN building_units SET NOT NULL,
    ADD CONSTRAINT electorate_subject_id
        CHECK (voter_id <> '' AND voter_id = canonical_subject_id(voter_id)),
    ADD CONSTRAINT electorate_representative
        CHECK (representative = ANY (string_to_array(voter_id, '+'))),
    ADD CONSTRAINT electorate_building_areas
        CHECK (cardinality(buildings) >= 1
               AND cardinality(building_areas) = cardinality(buildings)
               AND cardinality(building_units) = cardinality(buildings)
               AND building = buildings[1]
               AND NOT text_array_has_duplicates(buildings)
               AND 0 < ALL (building_areas)
               AND area = bigint_array_sum(building_areas));
-- Rows frozen before 0010 have no units: the unit check holds from now on only.
ALTER TABLE electorate ADD CONSTRAINT electorate_units
    CHECK (0 < ALL (building_units)
           AND cardinality(units) = bigint_array_sum(building_units::bigint[])
           AND NOT text_array_has_duplicates(units)) NOT VALID;

COMMENT ON COLUMN electorate.voter_id IS 'the voting subject id: its owners'' ids sorted and joined with +';
COMMENT ON COLUMN electorate.representative IS 'the owner who casts the subject''s ballot and holds its code';

ALTER TABLE electorate ENABLE TRIGGER electorate_frozen;

COMMENT ON COLUMN meeting_result.result_json IS
    'the signed result (evote-result/2; records signed before 0070 hold evote-result/1), exactly as in result.json';
