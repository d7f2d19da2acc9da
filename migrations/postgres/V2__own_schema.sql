-- jrps's objects live in a schema of their own, `jrps`, which only the jrps
-- role may create in, and every call in them is schema-qualified. A role
-- that may create objects in `public` can then no longer plant a function
-- (say `public.nextval(text)`) that jrps would call as itself (the pattern
-- of CVE-2018-1058). A database made before this moves in place: its rows
-- stay, only their schema changes. jrps creates the schema (and moves
-- refinery's history into it) before running migrations, so on a new
-- database V1 already made everything here.
DO $$
BEGIN
    IF pg_catalog.to_regclass('public.sessions') IS NOT NULL THEN
        ALTER SEQUENCE public.session_revisions SET SCHEMA jrps;
        ALTER TABLE public.sessions SET SCHEMA jrps;
        ALTER TABLE public.settings SET SCHEMA jrps;
        ALTER FUNCTION public.jrps_session_changed() SET SCHEMA jrps;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION jrps.jrps_session_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_catalog.pg_notify('jrps_sessions', OLD.alias);
    ELSE
        PERFORM pg_catalog.pg_notify('jrps_sessions', NEW.alias);
    END IF;
    RETURN NULL;
END
$$;

-- A default is bound when it is written: V1's may have been bound to a
-- planted function. This one names the real one.
ALTER TABLE jrps.sessions
    ALTER COLUMN revision SET DEFAULT pg_catalog.nextval('jrps.session_revisions'::pg_catalog.regclass);

REVOKE ALL ON SCHEMA jrps FROM PUBLIC;
