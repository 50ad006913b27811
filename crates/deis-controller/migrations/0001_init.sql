-- The controller's schema, in SQL that SQLite and PostgreSQL both run. Timestamps are microseconds since the Unix epoch (UTC);
-- maps are JSON text; ids are random UUIDs as text; flags are 0/1 (the Any driver reads no SQLite BOOLEAN).
CREATE TABLE users (
    username     TEXT PRIMARY KEY,
    password     TEXT NOT NULL,
    email        TEXT NOT NULL DEFAULT '',
    first_name   TEXT NOT NULL DEFAULT '',
    last_name    TEXT NOT NULL DEFAULT '',
    is_superuser BIGINT NOT NULL DEFAULT 0,
    is_active    BIGINT NOT NULL DEFAULT 1,
    token        TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    last_login   BIGINT,
    date_joined  BIGINT NOT NULL
);

CREATE TABLE apps (
    uuid      TEXT PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    owner     TEXT NOT NULL REFERENCES users(username),
    structure TEXT NOT NULL DEFAULT '{}',
    created   BIGINT NOT NULL,
    updated   BIGINT NOT NULL
);

CREATE TABLE app_perms (
    app      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    PRIMARY KEY (app, username)
);

CREATE TABLE configs (
    uuid          TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    app           TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    config_values TEXT NOT NULL DEFAULT '{}',
    memory        TEXT NOT NULL DEFAULT '{}',
    cpu           TEXT NOT NULL DEFAULT '{}',
    tags          TEXT NOT NULL DEFAULT '{}',
    created       BIGINT NOT NULL,
    updated       BIGINT NOT NULL
);

CREATE TABLE builds (
    uuid       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    app        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    image      TEXT NOT NULL,
    sha        TEXT NOT NULL DEFAULT '',
    procfile   TEXT NOT NULL DEFAULT '{}',
    dockerfile TEXT NOT NULL DEFAULT '',
    created    BIGINT NOT NULL,
    updated    BIGINT NOT NULL
);

CREATE TABLE releases (
    uuid    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    app     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    config  TEXT NOT NULL REFERENCES configs(uuid) ON DELETE CASCADE,
    build   TEXT REFERENCES builds(uuid) ON DELETE CASCADE,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    UNIQUE (app, version)
);

CREATE TABLE containers (
    uuid            TEXT PRIMARY KEY,
    app             TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    release_version BIGINT NOT NULL,
    ptype           TEXT NOT NULL,
    num             BIGINT NOT NULL,
    created         BIGINT NOT NULL,
    updated         BIGINT NOT NULL
);

CREATE TABLE pushes (
    uuid                 TEXT PRIMARY KEY,
    owner                TEXT NOT NULL,
    app                  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    sha                  TEXT NOT NULL DEFAULT '',
    fingerprint          TEXT NOT NULL DEFAULT '',
    receive_user         TEXT NOT NULL,
    receive_repo         TEXT NOT NULL,
    ssh_connection       TEXT NOT NULL DEFAULT '',
    ssh_original_command TEXT NOT NULL DEFAULT '',
    created              BIGINT NOT NULL,
    updated              BIGINT NOT NULL
);

CREATE TABLE domains (
    domain  TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    app     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE certs (
    id          BIGINT PRIMARY KEY,
    owner       TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    certificate TEXT NOT NULL,
    cert_key    TEXT NOT NULL,
    common_name TEXT NOT NULL UNIQUE,
    expires     BIGINT NOT NULL,
    created     BIGINT NOT NULL,
    updated     BIGINT NOT NULL
);

CREATE TABLE ssh_keys (
    uuid        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    public      TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    created     BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    UNIQUE (owner, fingerprint),
    UNIQUE (owner, id)
);

CREATE INDEX releases_app ON releases(app, created);
CREATE INDEX containers_app ON containers(app, created);
CREATE INDEX builds_app ON builds(app, created);
CREATE INDEX configs_app ON configs(app, created);
