-- Dashboard sessions, kept server-side so that logging out revokes a
-- session on every API replica at once. `id_hash` is the SHA-256 of the
-- random session id the cookie carries: the table alone opens no session.
CREATE TABLE ui_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX ui_sessions_expires_at ON ui_sessions (expires_at);
