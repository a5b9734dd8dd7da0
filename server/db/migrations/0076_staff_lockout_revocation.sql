-- Staff accounts that can be locked and revoked.

-- Bumped whenever every token of the account must stop working (password change or reset,
-- disable, role or scope change, `evote staff revoke`); a staff token carries the generation
-- it was issued under ("gen", absent = 0) and is refused once they differ.
ALTER TABLE staff ADD COLUMN token_generation integer NOT NULL DEFAULT 0;

-- Single tokens revoked before they expire (logout).  Rows past expires_at may be deleted.
CREATE TABLE staff_token_revoked (
    jti         text PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES staff (staff_id),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_token_revoked_expiry ON staff_token_revoked (expires_at);

-- Failed staff logins, per account ('user:<username>', whether or not it exists) and per client
-- address ('addr:<ip>'), shared by every worker.  ``level`` is how many lockouts the key has had
-- (each one longer); ``locked_until`` in the future refuses logins without checking a password.
CREATE TABLE staff_login_throttle (
    key              text PRIMARY KEY,
    failures         integer NOT NULL DEFAULT 0,
    level            integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    last_failure_at  timestamptz NOT NULL DEFAULT now()
);
