//! Configs, builds, releases, containers and pushes: an app's history and desired state.

use sqlx::FromRow;

use super::{Db, DbResult};

/// A config row: the app's environment, limits and tags at one point.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Config {
    pub(crate) uuid: String,
    pub(crate) owner: String,
    pub(crate) app: String,
    pub(crate) config_values: String,
    pub(crate) memory: String,
    pub(crate) cpu: String,
    pub(crate) tags: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

/// A build row: an image ready to run.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Build {
    pub(crate) uuid: String,
    pub(crate) owner: String,
    pub(crate) app: String,
    pub(crate) image: String,
    pub(crate) sha: String,
    pub(crate) procfile: String,
    pub(crate) dockerfile: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

/// A release row: a build and a config under a version number.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Release {
    pub(crate) uuid: String,
    pub(crate) owner: String,
    pub(crate) app: String,
    pub(crate) version: i64,
    pub(crate) summary: String,
    pub(crate) config: String,
    pub(crate) build: Option<String>,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

/// A container row: one desired process of the app.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Container {
    pub(crate) uuid: String,
    pub(crate) app: String,
    pub(crate) release_version: i64,
    pub(crate) ptype: String,
    pub(crate) num: i64,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

const CONFIG: &str = "uuid, owner, app, config_values, memory, cpu, tags, created, updated";
const BUILD: &str = "uuid, owner, app, image, sha, procfile, dockerfile, created, updated";
const RELEASE: &str = "uuid, owner, app, version, summary, config, build, created, updated";
const CONTAINER: &str = "uuid, app, release_version, ptype, num, created, updated";

/// A new release and the new config or build it brings, stored together.
pub(crate) struct NewRelease<'a> {
    pub(crate) config: Option<&'a Config>,
    pub(crate) build: Option<&'a Build>,
    pub(crate) release: &'a Release,
}

impl Db {
    pub(crate) async fn latest_release(&self, app: &str) -> DbResult<Option<Release>> {
        Ok(sqlx::query_as::<_, Release>(sqlx::AssertSqlSafe(format!(
            "SELECT {RELEASE} FROM releases WHERE app = $1 ORDER BY version DESC LIMIT 1"
        )))
        .bind(app)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn release(&self, app: &str, version: i64) -> DbResult<Option<Release>> {
        Ok(sqlx::query_as::<_, Release>(sqlx::AssertSqlSafe(format!(
            "SELECT {RELEASE} FROM releases WHERE app = $1 AND version = $2"
        )))
        .bind(app)
        .bind(version)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn releases(
        &self,
        app: &str,
        limit: i64,
        offset: i64,
    ) -> DbResult<(Vec<Release>, i64)> {
        self.page(
            format!("SELECT {RELEASE} FROM releases WHERE app = $1 ORDER BY version DESC LIMIT $2 OFFSET $3"),
            "SELECT COUNT(*) FROM releases WHERE app = $1",
            app,
            limit,
            offset,
        )
        .await
    }

    pub(crate) async fn config(&self, uuid: &str) -> DbResult<Option<Config>> {
        Ok(sqlx::query_as::<_, Config>(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG} FROM configs WHERE uuid = $1"
        )))
        .bind(uuid)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn build(&self, uuid: &str) -> DbResult<Option<Build>> {
        Ok(sqlx::query_as::<_, Build>(sqlx::AssertSqlSafe(format!(
            "SELECT {BUILD} FROM builds WHERE uuid = $1"
        )))
        .bind(uuid)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn builds(
        &self,
        app: &str,
        limit: i64,
        offset: i64,
    ) -> DbResult<(Vec<Build>, i64)> {
        self.page(
            format!(
                "SELECT {BUILD} FROM builds WHERE app = $1 ORDER BY created DESC LIMIT $2 OFFSET $3"
            ),
            "SELECT COUNT(*) FROM builds WHERE app = $1",
            app,
            limit,
            offset,
        )
        .await
    }

    /// Stores a release with its new config and/or build atomically.
    pub(crate) async fn insert_release(&self, new: NewRelease<'_>) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        if let Some(c) = new.config {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO configs ({CONFIG}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )))
            .bind(&c.uuid)
            .bind(&c.owner)
            .bind(&c.app)
            .bind(&c.config_values)
            .bind(&c.memory)
            .bind(&c.cpu)
            .bind(&c.tags)
            .bind(c.created)
            .bind(c.updated)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(b) = new.build {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO builds ({BUILD}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )))
            .bind(&b.uuid)
            .bind(&b.owner)
            .bind(&b.app)
            .bind(&b.image)
            .bind(&b.sha)
            .bind(&b.procfile)
            .bind(&b.dockerfile)
            .bind(b.created)
            .bind(b.updated)
            .execute(&mut *tx)
            .await?;
        }
        let r = new.release;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO releases ({RELEASE}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(&r.uuid)
        .bind(&r.owner)
        .bind(&r.app)
        .bind(r.version)
        .bind(&r.summary)
        .bind(&r.config)
        .bind(&r.build)
        .bind(r.created)
        .bind(r.updated)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a release that could not be deployed.
    pub(crate) async fn delete_release(&self, uuid: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM releases WHERE uuid = $1")
            .bind(uuid)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The app's containers in creation order, of one type when given.
    pub(crate) async fn containers(
        &self,
        app: &str,
        ptype: Option<&str>,
    ) -> DbResult<Vec<Container>> {
        let rows = match ptype {
            Some(t) => {
                sqlx::query_as::<_, Container>(sqlx::AssertSqlSafe(format!(
                    "SELECT {CONTAINER} FROM containers WHERE app = $1 AND ptype = $2 ORDER BY created, num"
                )))
                .bind(app)
                .bind(t)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as::<_, Container>(sqlx::AssertSqlSafe(format!(
                    "SELECT {CONTAINER} FROM containers WHERE app = $1 ORDER BY created, num"
                )))
                .bind(app)
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows)
    }

    /// Replaces the app's desired containers (excluding one-off `run` ones) in one transaction.
    pub(crate) async fn replace_containers(&self, app: &str, rows: &[Container]) -> DbResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM containers WHERE app = $1 AND ptype <> 'run'")
            .bind(app)
            .execute(&mut *tx)
            .await?;
        for c in rows {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO containers ({CONTAINER}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )))
            .bind(&c.uuid)
            .bind(&c.app)
            .bind(c.release_version)
            .bind(&c.ptype)
            .bind(c.num)
            .bind(c.created)
            .bind(c.updated)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a push authorised for the builder.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_push(
        &self,
        uuid: &str,
        owner: &str,
        app: &str,
        sha: &str,
        fingerprint: &str,
        ssh_connection: &str,
        ssh_original_command: &str,
        now: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO pushes (uuid, owner, app, sha, fingerprint, receive_user, receive_repo, ssh_connection, ssh_original_command, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(uuid)
        .bind(owner)
        .bind(app)
        .bind(sha)
        .bind(fingerprint)
        .bind(owner)
        .bind(app)
        .bind(ssh_connection)
        .bind(ssh_original_command)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
