-- The first registration claims this one row and becomes the administrator: the primary key
-- decides between simultaneous first registrations on either database. Changes that take
-- administrators away lock the row, so that two of them cannot together remove the last one.
CREATE TABLE first_admin (
    id       BIGINT PRIMARY KEY,
    username TEXT NOT NULL
);
INSERT INTO first_admin (id, username)
    SELECT 1, MIN(username) FROM users WHERE is_superuser = 1 HAVING COUNT(*) > 0;
