-- What a session runs (lab, notebook, voila, code-server), when the launcher said.
ALTER TABLE sessions ADD COLUMN kind TEXT;
