-- Ballot tokens handed out at sign-in; a token whose session is revoked stops working at once.
CREATE TABLE ballot_session (
    community_id  text NOT NULL,
    meeting_id    text NOT NULL,
    jti           text NOT NULL,
    voter_id      text NOT NULL,
    code_serial   integer,                 -- the ballot_code it was redeemed from (NULL: staff/proxy path)
    device_hash   bytea,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    PRIMARY KEY (community_id, meeting_id, jti),
    FOREIGN KEY (community_id, meeting_id, voter_id) REFERENCES electorate (community_id, meeting_id, voter_id)
);
CREATE INDEX ballot_session_voter ON ballot_session (community_id, meeting_id, voter_id);
