-- The schema as it stood when versioning began. IF NOT EXISTS: a state
-- file made before then already has this table (its missing columns are
-- added before the first migration runs).
CREATE TABLE IF NOT EXISTS sessions (
    alias          TEXT PRIMARY KEY,
    user           TEXT NOT NULL,
    token_sha256   BLOB NOT NULL,
    secret_sha256  BLOB NOT NULL,
    cookie         BLOB NOT NULL,
    job_id         TEXT,
    backend        TEXT,
    state          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    registered_at  INTEGER,
    ended_at       INTEGER,
    end_reason     TEXT,
    owner_uid      INTEGER
);
