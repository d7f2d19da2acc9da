-- The site's cluster a session's job runs on ([clusters.NAME] in proxy.toml).
ALTER TABLE sessions ADD COLUMN cluster TEXT;
