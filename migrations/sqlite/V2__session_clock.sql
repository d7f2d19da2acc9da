-- When a session ends and when its page warns (api::SessionClock as JSON).
ALTER TABLE sessions ADD COLUMN clock TEXT;
