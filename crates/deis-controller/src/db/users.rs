//! Users, their tokens and admin flags.

use sqlx::FromRow;

use super::{Db, DbResult};

/// A user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) email: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) is_superuser: bool,
    pub(crate) is_active: bool,
    pub(crate) token: String,
    pub(crate) token_hash: String,
    pub(crate) last_login: Option<i64>,
    pub(crate) date_joined: i64,
}

/// A user as stored: flags are 0/1 integers.
#[derive(FromRow)]
struct UserRow {
    username: String,
    password: String,
    email: String,
    first_name: String,
    last_name: String,
    is_superuser: i64,
    is_active: i64,
    token: String,
    token_hash: String,
    last_login: Option<i64>,
    date_joined: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            username: r.username,
            password: r.password,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            is_superuser: r.is_superuser != 0,
            is_active: r.is_active != 0,
            token: r.token,
            token_hash: r.token_hash,
            last_login: r.last_login,
            date_joined: r.date_joined,
        }
    }
}

const COLUMNS: &str = "username, password, email, first_name, last_name, is_superuser, is_active, token, token_hash, last_login, date_joined";

impl Db {
    /// Inserts a user; the platform's first user becomes admin (it claims the one row of
    /// `first_admin`, which only one of simultaneous registrations can). Returns the stored row.
    pub(crate) async fn insert_user(&self, user: &User) -> DbResult<User> {
        let mut tx = self.pool().begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO first_admin (id, username) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&user.username)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mut user = user.clone();
        user.is_superuser = claimed == 1;
        sqlx::query(
            "INSERT INTO users (username, password, email, first_name, last_name, is_superuser, is_active, token, token_hash, last_login, date_joined) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&user.username)
        .bind(&user.password)
        .bind(&user.email)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(i64::from(user.is_superuser))
        .bind(i64::from(user.is_active))
        .bind(&user.token)
        .bind(&user.token_hash)
        .bind(user.last_login)
        .bind(user.date_joined)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    pub(crate) async fn user(&self, username: &str) -> DbResult<Option<User>> {
        Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(self.pool())
        .await?
        .map(User::from))
    }

    pub(crate) async fn user_by_token_hash(&self, hash: &str) -> DbResult<Option<User>> {
        let generation = match self.reads.callers.get(hash) {
            Ok(user) => return Ok(Some(user)),
            Err(generation) => generation,
        };
        let user = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE token_hash = $1"
        )))
        .bind(hash)
        .fetch_optional(self.pool())
        .await?
        .map(User::from);
        if let Some(user) = &user {
            self.reads
                .callers
                .keep(hash.to_owned(), user.clone(), generation);
        }
        Ok(user)
    }

    pub(crate) async fn users(&self, limit: i64, offset: i64) -> DbResult<(Vec<User>, i64)> {
        let rows = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users ORDER BY date_joined, username LIMIT $1 OFFSET $2"
        )))
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(User::from)
        .collect();
        let count = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok((rows, count))
    }

    pub(crate) async fn admins(&self, limit: i64, offset: i64) -> DbResult<(Vec<User>, i64)> {
        let rows = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE is_superuser = 1 AND is_active = 1 ORDER BY date_joined, username LIMIT $1 OFFSET $2"
        )))
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(User::from)
        .collect();
        let count = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE is_superuser = 1 AND is_active = 1",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((rows, count))
    }

    pub(crate) async fn set_password(&self, username: &str, hash: &str) -> DbResult<()> {
        sqlx::query("UPDATE users SET password = $1 WHERE username = $2")
            .bind(hash)
            .bind(username)
            .execute(self.pool())
            .await?;
        // Every dashboard sign-in of the user ends with the old secret.
        self.delete_user_sessions(username).await?;
        self.reads.forget_all();
        Ok(())
    }

    pub(crate) async fn set_token(&self, username: &str, token: &str, hash: &str) -> DbResult<()> {
        sqlx::query("UPDATE users SET token = $1, token_hash = $2 WHERE username = $3")
            .bind(token)
            .bind(hash)
            .bind(username)
            .execute(self.pool())
            .await?;
        // Every dashboard sign-in of the user ends with the old secret.
        self.delete_user_sessions(username).await?;
        self.reads.forget_all();
        Ok(())
    }

    pub(crate) async fn set_last_login(&self, username: &str, at: i64) -> DbResult<()> {
        sqlx::query("UPDATE users SET last_login = $1 WHERE username = $2")
            .bind(at)
            .bind(username)
            .execute(self.pool())
            .await?;
        self.reads.forget_all();
        Ok(())
    }

    pub(crate) async fn set_superuser(&self, username: &str, admin: bool) -> DbResult<()> {
        sqlx::query("UPDATE users SET is_superuser = $1 WHERE username = $2")
            .bind(i64::from(admin))
            .bind(username)
            .execute(self.pool())
            .await?;
        self.reads.forget_all();
        Ok(())
    }

    pub(crate) async fn all_usernames(&self) -> DbResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT username FROM users")
            .fetch_all(self.pool())
            .await?)
    }

    /// Deletes a user, unless it is the last administrator: `Ok(false)` then, and nothing
    /// changed.
    pub(crate) async fn delete_user(&self, username: &str) -> DbResult<bool> {
        self.unless_last_admin(username, "DELETE FROM users WHERE username = $1")
            .await
    }

    /// Takes administration from a user, unless it is the last administrator: `Ok(false)`
    /// then, and nothing changed.
    pub(crate) async fn revoke_superuser(&self, username: &str) -> DbResult<bool> {
        self.unless_last_admin(
            username,
            "UPDATE users SET is_superuser = 0 WHERE username = $1",
        )
        .await
    }

    /// Runs `sql` (with `$1` = `username`) unless `username` is the only administrator. The
    /// row of `first_admin` is locked first, so such changes happen one at a time.
    async fn unless_last_admin(&self, username: &str, sql: &'static str) -> DbResult<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE first_admin SET username = username WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let (admins, this_one): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN username = $1 THEN 1 ELSE 0 END), 0) \
             FROM users WHERE is_superuser = 1",
        )
        .bind(username)
        .fetch_one(&mut *tx)
        .await?;
        if this_one > 0 && admins <= 1 {
            return Ok(false);
        }
        sqlx::query(sql).bind(username).execute(&mut *tx).await?;
        tx.commit().await?;
        self.reads.forget_all();
        Ok(true)
    }
}
