-- WeChat subscribe messages (订阅消息), docs/notifications.md.
--
-- An owner accepts a template in WeChat (one-time subscription: each acceptance allows one message)
-- and the page records it here, per voting subject, meeting and kind.  The same row is the message's
-- outbox entry: a background pass queues it when its event has happened after the acceptance, a
-- sender pass claims it with a lease, sends it and records 'sent' or, after its retries, 'given_up'.
CREATE TABLE notification_optin (
    community_id     text NOT NULL,
    meeting_id       text NOT NULL,
    voter_id         text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('notice_published', 'voting_opened', 'reminder',
                                                  'extension', 'result_published')),
    openid           text NOT NULL CHECK (length(openid) BETWEEN 1 AND 128),
    template_id      text NOT NULL CHECK (length(template_id) BETWEEN 1 AND 128),
    accepted_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    state            text NOT NULL DEFAULT 'waiting'
                       CHECK (state IN ('waiting', 'queued', 'sent', 'given_up', 'withdrawn')),
    -- the meeting the message speaks of (another meeting of the community for 'notice_published')
    about_meeting_id text,
    payload          jsonb,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_error       text,
    sent_at          timestamptz,
    PRIMARY KEY (community_id, meeting_id, voter_id, kind),
    FOREIGN KEY (community_id, meeting_id, voter_id) REFERENCES electorate (community_id, meeting_id, voter_id),
    CHECK ((state IN ('queued', 'sent', 'given_up')) = (payload IS NOT NULL)),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX notification_optin_due ON notification_optin (next_attempt_at) WHERE state = 'queued';
CREATE INDEX notification_optin_waiting ON notification_optin (community_id, kind) WHERE state = 'waiting';

-- WeChat's access token (stable_token), shared by every worker; refreshed before expiry by one of them.
CREATE TABLE wechat_access_token (
    appid        text PRIMARY KEY,
    token        text NOT NULL,
    expires_at   timestamptz NOT NULL,
    fetched_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
