-- Sessions shared by every replica. `cookie` holds the per-session salt of
-- the edge cookie, never the cookie. `revision` orders the versions of a
-- row across replicas (one sequence for all rows, so an alias drawn again
-- after it was forgotten still moves forward). `client` is the address that
-- created the session, for the per-client quota.
CREATE SEQUENCE session_revisions;

CREATE TABLE sessions (
    alias          TEXT PRIMARY KEY,
    "user"         TEXT NOT NULL,
    token_sha256   BYTEA NOT NULL,
    secret_sha256  BYTEA NOT NULL,
    cookie         BYTEA NOT NULL,
    job_id         TEXT,
    backend        TEXT,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'ended')),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    registered_at  BIGINT,
    ended_at       BIGINT,
    end_reason     TEXT,
    owner_uid      BIGINT,
    client         TEXT,
    revision       BIGINT NOT NULL DEFAULT nextval('session_revisions')
);

-- Every replica follows changes by LISTEN jrps_sessions: the payload is the
-- alias, and the listener reads the row itself. A trigger, so that no write
-- (not even an operator's by hand) goes unannounced.
CREATE FUNCTION jrps_session_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('jrps_sessions', OLD.alias);
    ELSE
        PERFORM pg_notify('jrps_sessions', NEW.alias);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_changed
    AFTER INSERT OR UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION jrps_session_changed();

-- What the replicas must agree on besides sessions: the fingerprint of the
-- cookie key (never the key), so a replica started with another key file
-- refuses to start instead of handing out cookies the others reject.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
