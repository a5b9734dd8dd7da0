-- Owner codes: escalating lockouts, and masked phone/ID numbers that no longer show the last four.
--
-- ballot_code.lock_level  how many lockouts the code has had since its last sign-in or staff unlock:
--   0 none yet; 1 after the first MAX_FAILED_ATTEMPTS failures (locked 15 minutes); 2 after the next
--   (locked hours); 3 after the next (locked until staff unlock it: locked_until = 'infinity').
--   failed_attempts counts the failures since the last lockout.
--
-- The masked forms stored at import (owner, transfer_new_owner) kept the last four characters,
-- exactly what sign-in checks; they keep only the first three now, the rest stars (all stars where
-- the number was too short to show anything).
ALTER TABLE ballot_code
    ADD COLUMN lock_level smallint NOT NULL DEFAULT 0 CHECK (lock_level BETWEEN 0 AND 3);

COMMENT ON COLUMN ballot_code.lock_level IS
    'lockouts since the last sign-in or staff unlock (0-3); 3: locked until a staff unlock';

UPDATE owner
   SET phone_masked = left(phone_masked, 3) || repeat('*', greatest(length(phone_masked) - 3, 0))
 WHERE phone_masked <> '' AND phone_masked <> left(phone_masked, 3) || repeat('*', greatest(length(phone_masked) - 3, 0));
UPDATE owner
   SET id_masked = left(id_masked, 3) || repeat('*', greatest(length(id_masked) - 3, 0))
 WHERE id_masked <> '' AND id_masked <> left(id_masked, 3) || repeat('*', greatest(length(id_masked) - 3, 0));
UPDATE transfer_new_owner
   SET phone_masked = left(phone_masked, 3) || repeat('*', greatest(length(phone_masked) - 3, 0))
 WHERE phone_masked <> '' AND phone_masked <> left(phone_masked, 3) || repeat('*', greatest(length(phone_masked) - 3, 0));
UPDATE transfer_new_owner
   SET id_masked = left(id_masked, 3) || repeat('*', greatest(length(id_masked) - 3, 0))
 WHERE id_masked <> '' AND id_masked <> left(id_masked, 3) || repeat('*', greatest(length(id_masked) - 3, 0));
