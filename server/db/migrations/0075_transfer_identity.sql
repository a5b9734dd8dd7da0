-- A transfer's new owner kept like a register owner (0073): no phone or ID number in clear.
--
-- transfer_new_owner (0074) held the new owner's phone and ID number in clear.  It now keeps what
-- the owner table keeps (docs/privacy.md):
--   phone_hmac, id_hmac   HMAC-SHA256 of the last four characters under the identity key, bound to
--                         the kind, the community and the owner id 'transfer:<transfer_id>'
--                         (server/ballot/identity.py: transfer_owner_id; a register owner id has
--                         no ':', so the two never share a context); NULL: no such number given
--   identity_key_id       which identity key made them
--   phone_masked, id_masked  the display forms (136****4444, 3505**********4321)
--   phone_enc             the full phone, nonce || AES-256-GCM under EVOTE_MASTER_KEY, bound to the
--                         community, register version 0 (a new owner is in no register version)
--                         and 'transfer:<transfer_id>'; NULL without a master key
--
-- Rows stored before this migration are converted by the step that runs right after the
-- migrations (server.services.personal_data.protect_stored_identities), in the same transaction
-- as the owner table's, which then validates transfer_new_owner_identity_not_in_clear: phone and
-- id_number stay as always-empty columns.
--
-- Purge (evote purge): a purged meeting's new owners keep their masked name only; the codes it
-- deletes may be named by a transfer (code_serial), whose foreign key becomes a check made when
-- the transfer is recorded (end of this file).

ALTER TABLE transfer_new_owner
    ADD COLUMN phone_hmac      bytea CHECK (phone_hmac IS NULL OR length(phone_hmac) = 32),
    ADD COLUMN id_hmac         bytea CHECK (id_hmac IS NULL OR length(id_hmac) = 32),
    ADD COLUMN identity_key_id text CHECK (identity_key_id IS NULL OR identity_key_id ~ '^[0-9a-f]{16}$'),
    ADD COLUMN phone_masked    text NOT NULL DEFAULT '' CHECK (length(phone_masked) <= 32),
    ADD COLUMN id_masked       text NOT NULL DEFAULT '' CHECK (length(id_masked) <= 32),
    ADD COLUMN phone_enc       bytea,
    ADD CONSTRAINT transfer_new_owner_identity_key_named
        CHECK ((phone_hmac IS NULL AND id_hmac IS NULL) OR identity_key_id IS NOT NULL),
    ADD CONSTRAINT transfer_new_owner_phone_enc_with_phone CHECK (phone_enc IS NULL OR phone_hmac IS NOT NULL);

-- New rows may not hold a number in clear; old rows until the start-up step has converted them.
ALTER TABLE transfer_new_owner ADD CONSTRAINT transfer_new_owner_identity_not_in_clear
    CHECK (phone = '' AND id_number = '') NOT VALID;

COMMENT ON COLUMN transfer_new_owner.phone IS 'always empty (0075): see phone_hmac, phone_masked, phone_enc';
COMMENT ON COLUMN transfer_new_owner.id_number IS 'always empty (0075): see id_hmac, id_masked';
COMMENT ON COLUMN transfer_new_owner.phone_hmac IS
    'HMAC-SHA256 of the phone''s last four under the identity key, owner id transfer:<transfer_id>';
COMMENT ON COLUMN transfer_new_owner.id_hmac IS
    'HMAC-SHA256 of the ID number''s last four (X upper case) under the identity key, owner id transfer:<transfer_id>';
COMMENT ON COLUMN transfer_new_owner.identity_key_id IS 'id of the identity key that made phone_hmac and id_hmac';
COMMENT ON COLUMN transfer_new_owner.phone_enc IS
    'full phone, AES-256-GCM under EVOTE_MASTER_KEY (version 0, owner id transfer:<transfer_id>); NULL without a master key';

-- subject_transfer.code_serial named the new owner's code by a foreign key to ballot_code, so
-- `evote purge`, which deletes a decided meeting's codes, failed on any meeting with a transfer
-- that issued one.  The transfer (append-only) keeps the serial as history; the check that the
-- code was issued in the same transaction stays, as a deferred constraint trigger run when the
-- transfer is recorded only.
DO $$
DECLARE
    fk text;
BEGIN
    SELECT conname INTO STRICT fk FROM pg_constraint
     WHERE conrelid = 'subject_transfer'::regclass AND confrelid = 'ballot_code'::regclass AND contype = 'f';
    EXECUTE format('ALTER TABLE subject_transfer DROP CONSTRAINT %I', fk);
END $$;

CREATE FUNCTION subject_transfer_code_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.code_serial IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM ballot_code b
             WHERE b.community_id = NEW.community_id AND b.meeting_id = NEW.meeting_id
               AND b.voter_id = NEW.voter_id AND b.serial = NEW.code_serial) THEN
        RAISE EXCEPTION 'transfer % of voting subject % names code serial %, which was not issued',
            NEW.transfer_id, NEW.voter_id, NEW.code_serial
            USING ERRCODE = '23503', CONSTRAINT = 'subject_transfer_code_issued';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER subject_transfer_code_issued AFTER INSERT ON subject_transfer
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION subject_transfer_code_issued();
