-- The web dashboard's sign-ins: a row per signed-in browser. The cookie holds a random id; only
-- its SHA-256 is stored. `csrf` is the token every form of that session carries. Signing out,
-- or the user's removal, deletes the row.
CREATE TABLE dashboard_sessions (
    id_hash  TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    csrf     TEXT NOT NULL,
    created  BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_username ON dashboard_sessions (username);
