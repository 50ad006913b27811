//! The dashboard's sessions: the hash of a browser's session id, whose it is, and its CSRF token.

use sqlx::FromRow;

use super::{Db, DbResult};

/// A signed-in browser.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Session {
    pub(crate) username: String,
    pub(crate) csrf: String,
    pub(crate) created: i64,
}

impl Db {
    /// Records a new session under the hash of its id.
    pub(crate) async fn insert_session(
        &self,
        id_hash: &str,
        username: &str,
        csrf: &str,
        created: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_hash, username, csrf, created) VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(username)
        .bind(csrf)
        .bind(created)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session with this id hash, if any.
    pub(crate) async fn session(&self, id_hash: &str) -> DbResult<Option<Session>> {
        Ok(sqlx::query_as::<_, Session>(
            "SELECT username, csrf, created FROM dashboard_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Forgets a session (sign-out, or found expired).
    pub(crate) async fn delete_session(&self, id_hash: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forgets every session of a user (a new password or token signs every browser out).
    pub(crate) async fn delete_user_sessions(&self, username: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE username = $1")
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Keeps the `keep` newest sessions of a user and `id_hash` (the one just started), and
    /// forgets the others.
    pub(crate) async fn keep_newest_sessions(
        &self,
        username: &str,
        id_hash: &str,
        keep: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "DELETE FROM dashboard_sessions WHERE username = $1 AND id_hash <> $2 AND id_hash NOT IN \
             (SELECT id_hash FROM dashboard_sessions WHERE username = $1 AND id_hash <> $2 \
             ORDER BY created DESC, id_hash LIMIT $3)",
        )
        .bind(username)
        .bind(id_hash)
        .bind(keep)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets every session older than `before` (microseconds).
    pub(crate) async fn delete_sessions_before(&self, before: i64) -> DbResult<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE created < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
