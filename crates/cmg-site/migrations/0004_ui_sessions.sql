-- The web console's sessions (src/ui/session.rs), same dialect rules as 0001. A row holds
-- the SHA-256 (hex) of the session cookie's secret, never the secret, so a copy of the
-- database signs nobody in. Times are Unix seconds; expiry (idle and absolute) is the
-- server's configuration, applied when a session is looked up.

CREATE TABLE ui_sessions (
    id_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
