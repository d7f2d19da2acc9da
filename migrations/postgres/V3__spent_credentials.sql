-- The munge credentials the API accepted, by SHA-256, until munge would
-- call them expired (plus a margin for clock skew). Each replica's munged
-- keeps its own replay cache, so without this record a credential would
-- be good once at every replica. The duty holder deletes what has run out.
CREATE TABLE jrps.spent_credentials (
    digest  BYTEA PRIMARY KEY,
    until   BIGINT NOT NULL
);

CREATE INDEX spent_credentials_until ON jrps.spent_credentials (until);
