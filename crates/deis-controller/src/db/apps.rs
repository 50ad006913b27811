//! Apps and their collaborators.

use sqlx::FromRow;

use super::{Db, DbResult};

/// An app row.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct App {
    pub(crate) uuid: String,
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) structure: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

const COLUMNS: &str = "uuid, id, owner, structure, created, updated";

impl Db {
    /// Creates an app with its empty config and release v1, in one transaction.
    pub(crate) async fn create_app(&self, id: &str, owner: &str, now: i64) -> DbResult<App> {
        let app = App {
            uuid: crate::time::new_uuid(),
            id: id.to_owned(),
            owner: owner.to_owned(),
            structure: "{}".to_owned(),
            created: now,
            updated: now,
        };
        let config = crate::time::new_uuid();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO apps (uuid, id, owner, structure, created, updated) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&app.uuid)
        .bind(&app.id)
        .bind(&app.owner)
        .bind(&app.structure)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO configs (uuid, owner, app, config_values, memory, cpu, tags, created, updated) \
             VALUES ($1, $2, $3, '{}', '{}', '{}', '{}', $4, $5)",
        )
        .bind(&config)
        .bind(owner)
        .bind(id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO releases (uuid, owner, app, version, summary, config, build, created, updated) \
             VALUES ($1, $2, $3, 1, $4, $5, NULL, $6, $7)",
        )
        .bind(crate::time::new_uuid())
        .bind(owner)
        .bind(id)
        .bind(format!("{owner} created initial release"))
        .bind(&config)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.reads.forget_all();
        Ok(app)
    }

    pub(crate) async fn app(&self, id: &str) -> DbResult<Option<App>> {
        let generation = match self.reads.apps.get(id) {
            Ok(app) => return Ok(app),
            Err(generation) => generation,
        };
        let app = sqlx::query_as::<_, App>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM apps WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        self.reads.apps.keep(id.to_owned(), app.clone(), generation);
        Ok(app)
    }

    /// The apps `user` may see: all for an admin, else owned and shared ones.
    pub(crate) async fn apps_visible(
        &self,
        user: &str,
        admin: bool,
        limit: i64,
        offset: i64,
    ) -> DbResult<(Vec<App>, i64)> {
        let key = (user.to_owned(), admin, limit, offset);
        let generation = match self.reads.visible.get(&key) {
            Ok(page) => return Ok(page),
            Err(generation) => generation,
        };
        let filter = if admin {
            "($1 = $1)"
        } else {
            "(owner = $1 OR id IN (SELECT app FROM app_perms WHERE username = $1))"
        };
        let rows = sqlx::query_as::<_, App>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM apps WHERE {filter} ORDER BY id LIMIT $2 OFFSET $3"
        )))
        .bind(user)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let count = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM apps WHERE {filter}"
        )))
        .bind(user)
        .fetch_one(self.pool())
        .await?;
        self.reads
            .visible
            .keep(key, (rows.clone(), count), generation);
        Ok((rows, count))
    }

    pub(crate) async fn set_app_owner(&self, id: &str, owner: &str, now: i64) -> DbResult<()> {
        sqlx::query("UPDATE apps SET owner = $1, updated = $2 WHERE id = $3")
            .bind(owner)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        self.reads.forget_all();
        Ok(())
    }

    pub(crate) async fn set_structure(&self, id: &str, structure: &str, now: i64) -> DbResult<()> {
        sqlx::query("UPDATE apps SET structure = $1, updated = $2 WHERE id = $3")
            .bind(structure)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        self.reads.forget_all();
        Ok(())
    }

    /// The id of every app.
    pub(crate) async fn all_app_ids(&self) -> DbResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM apps ORDER BY id")
            .fetch_all(self.pool())
            .await?)
    }

    /// Deletes an app and, by cascade, everything that belongs to it.
    pub(crate) async fn delete_app(&self, id: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        self.reads.forget_all();
        Ok(())
    }

    pub(crate) async fn apps_owned_by(&self, user: &str) -> DbResult<i64> {
        self.count("SELECT COUNT(*) FROM apps WHERE owner = $1", user)
            .await
    }

    pub(crate) async fn is_collaborator(&self, app: &str, user: &str) -> DbResult<bool> {
        let key = (app.to_owned(), user.to_owned());
        let generation = match self.reads.collaborators.get(&key) {
            Ok(is) => return Ok(is),
            Err(generation) => generation,
        };
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM app_perms WHERE app = $1 AND username = $2")
                .bind(app)
                .bind(user)
                .fetch_one(self.pool())
                .await?;
        self.reads.collaborators.keep(key, n > 0, generation);
        Ok(n > 0)
    }

    pub(crate) async fn collaborators(&self, app: &str) -> DbResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT username FROM app_perms WHERE app = $1 ORDER BY username")
                .bind(app)
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub(crate) async fn grant(&self, app: &str, user: &str) -> DbResult<()> {
        if !self.is_collaborator(app, user).await? {
            let inserted = sqlx::query("INSERT INTO app_perms (app, username) VALUES ($1, $2)")
                .bind(app)
                .bind(user)
                .execute(self.pool())
                .await;
            self.reads.forget_all();
            match inserted.map_err(super::DbError::from) {
                Err(e) if e.is_unique_violation() => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn revoke(&self, app: &str, user: &str) -> DbResult<bool> {
        let done = sqlx::query("DELETE FROM app_perms WHERE app = $1 AND username = $2")
            .bind(app)
            .bind(user)
            .execute(self.pool())
            .await?;
        self.reads.forget_all();
        Ok(done.rows_affected() > 0)
    }
}
