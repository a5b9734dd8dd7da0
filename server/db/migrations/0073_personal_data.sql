-- Personal data: the register keeps what sign-in needs, not the owners' phone and ID numbers.
--
-- owner.phone and owner.id_number held the full numbers in clear, although sign-in asks only for
-- the last four characters of one of them (docs/owner-signin.md, docs/privacy.md).  An owner row
-- now keeps instead:
--   phone_hmac, id_hmac   HMAC-SHA256 of those four characters (an ID number's may end in X) under
--                         the identity key, bound to the kind, community and owner
--                         (server/ballot/identity.py); NULL: no such number on record
--   identity_key_id       which identity key made them: a key changed since (EVOTE_MASTER_KEY set
--                         or changed, the key file replaced) is told apart from wrong digits
--   phone_masked, id_masked  the display forms (138****5678, 3505**********1234)
--   phone_enc             the full phone, nonce || AES-256-GCM under a key derived from
--                         EVOTE_MASTER_KEY, for a notification channel; NULL without a master key
--                         (the full phone is then not kept at all)
--
-- The hashes need the key, which SQL does not have.  Rows stored before this migration are
-- converted by the step that runs right after the migrations (evote migrate, every other evote
-- command and the server's start: server.services.personal_data.protect_stored_identities): in
-- one transaction it hashes, masks and (with a master key) encrypts every row still holding a
-- number, register history included, blanks phone and id_number, and then validates
-- owner_identity_not_in_clear, after which the database refuses any clear number in those two
-- columns.  They stay as empty columns.
--
-- Purge (evote purge, docs/privacy.md): register_version.personal_data_purged_at marks a version
-- whose owners' personal data was removed (names masked, hashes, masked forms and encrypted phones
-- blanked); such a version can no longer be frozen by a notice.  personal_data_purge lists the
-- decided meetings whose codes, sessions and pseudonym key were removed.

ALTER TABLE owner
    ADD COLUMN phone_hmac      bytea CHECK (phone_hmac IS NULL OR length(phone_hmac) = 32),
    ADD COLUMN id_hmac         bytea CHECK (id_hmac IS NULL OR length(id_hmac) = 32),
    ADD COLUMN identity_key_id text CHECK (identity_key_id IS NULL OR identity_key_id ~ '^[0-9a-f]{16}$'),
    ADD COLUMN phone_masked    text NOT NULL DEFAULT '' CHECK (length(phone_masked) <= 32),
    ADD COLUMN id_masked       text NOT NULL DEFAULT '' CHECK (length(id_masked) <= 32),
    ADD COLUMN phone_enc       bytea,
    ADD CONSTRAINT owner_identity_key_named
        CHECK ((phone_hmac IS NULL AND id_hmac IS NULL) OR identity_key_id IS NOT NULL),
    ADD CONSTRAINT owner_phone_enc_with_phone CHECK (phone_enc IS NULL OR phone_hmac IS NOT NULL);

-- New rows may not hold a number in clear; old rows until the start-up step has converted them.
ALTER TABLE owner ADD CONSTRAINT owner_identity_not_in_clear CHECK (phone = '' AND id_number = '') NOT VALID;

COMMENT ON COLUMN owner.phone IS 'always empty (0073): see phone_hmac, phone_masked, phone_enc';
COMMENT ON COLUMN owner.id_number IS 'always empty (0073): see id_hmac, id_masked';
COMMENT ON COLUMN owner.phone_hmac IS 'HMAC-SHA256 of the phone''s last four under the identity key';
COMMENT ON COLUMN owner.id_hmac IS 'HMAC-SHA256 of the ID number''s last four (X upper case) under the identity key';
COMMENT ON COLUMN owner.identity_key_id IS 'id of the identity key that made phone_hmac and id_hmac';
COMMENT ON COLUMN owner.phone_enc IS 'full phone, AES-256-GCM under EVOTE_MASTER_KEY; NULL without a master key';

ALTER TABLE register_version ADD COLUMN personal_data_purged_at timestamptz;
COMMENT ON COLUMN register_version.personal_data_purged_at IS
    'when evote purge removed this version''s owners'' personal data (names masked, numbers blanked)';

CREATE TABLE personal_data_purge (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    purged_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    purged_by     text NOT NULL,
    before        date NOT NULL,            -- the date the purge was run with
    PRIMARY KEY (community_id, meeting_id),
    FOREIGN KEY (community_id, meeting_id) REFERENCES meeting (community_id, meeting_id)
);

-- A purged register has no sign-in data left: a notice cannot freeze it.
CREATE FUNCTION meeting_register_not_purged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM register_version v
                WHERE v.community_id = NEW.community_id AND v.version = NEW.register_version
                  AND v.personal_data_purged_at IS NOT NULL) THEN
        RAISE EXCEPTION '登记册版本 % 的个人信息已按保存期限清除，请先导入新的业主登记册', NEW.register_version
            USING ERRCODE = '23514', CONSTRAINT = 'meeting_register_not_purged';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER meeting_register_not_purged BEFORE UPDATE OF state ON meeting
    FOR EACH ROW WHEN (OLD.state = 'draft' AND NEW.state <> 'draft')
    EXECUTE FUNCTION meeting_register_not_purged();
