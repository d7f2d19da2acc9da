-- What a session runs (lab, notebook, voila, code-server), when the launcher said.
ALTER TABLE jrps.sessions ADD COLUMN kind TEXT;
