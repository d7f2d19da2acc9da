-- When a session ends and when its page warns (api::SessionClock as JSON).
ALTER TABLE jrps.sessions ADD COLUMN clock TEXT;
