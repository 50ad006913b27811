//! Persistence: one schema (`migrations/`) run on SQLite (a file under the data directory) or
//! PostgreSQL (`DATABASE_URL`) through sqlx's `Any` driver, so every query is written once.
//! Timestamps are microseconds since the epoch; maps are JSON text.

mod apps;
mod keys;
mod recent;
mod releases;
mod sessions;
mod users;

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

pub(crate) use apps::App;
pub(crate) use keys::{Cert, Domain, SshKey};
pub(crate) use releases::{Build, Config, Container, NewRelease, Release};
pub(crate) use users::User;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database {url}")]
    Open {
        /// Where (without a password).
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Migrating the schema failed.
    #[error("migrating the database schema failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
    /// The database could not be reached (its host is lost, it restarts): nothing was changed.
    #[error(
        "the platform's database cannot be reached: changes are refused until it answers again (apps keep serving); try again in a moment"
    )]
    Unreachable(#[source] sqlx::Error),
    /// A stored JSON value is not what the schema says.
    #[error("corrupt JSON in the database")]
    Corrupt(#[source] serde_json::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => DbError::Unreachable(e),
            e => DbError::Query(e),
        }
    }
}

impl DbError {
    /// Whether the database could not be reached (as opposed to refusing or failing): that
    /// passes once it is back.
    pub(crate) fn is_unreachable(&self) -> bool {
        match self {
            DbError::Unreachable(_) => true,
            // A SQLite file is never "out of reach": its failures are for the operator.
            DbError::Open { url, source } => {
                url.starts_with("postgres")
                    && matches!(
                        source,
                        sqlx::Error::Io(_)
                            | sqlx::Error::Tls(_)
                            | sqlx::Error::PoolTimedOut
                            | sqlx::Error::PoolClosed
                    )
            }
            _ => false,
        }
    }

    /// How the failure is reported: a database out of reach is a passing unavailability.
    pub(crate) fn code(&self) -> deis_types::Code {
        match self {
            DbError::Unreachable(_) => deis_types::Code::Unavailable,
            _ => deis_types::Code::Internal,
        }
    }

    /// Whether this is a unique-constraint violation (someone else got there first).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Query(e) => e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation()),
            _ => false,
        }
    }
}

pub(crate) type DbResult<T> = Result<T, DbError>;

/// The controller's database.
#[derive(Clone)]
pub(crate) struct Db {
    pool: AnyPool,
    /// Rows as last read (the token check, the app and who sees it, of most requests).
    reads: std::sync::Arc<recent::Reads>,
}

impl Db {
    /// Opens `database_url`, or SQLite at `<data_dir>/controller.db` when it is `None`, and
    /// brings the schema up to date.
    pub(crate) async fn open(database_url: Option<&str>, data_dir: &Path) -> DbResult<Db> {
        sqlx::any::install_default_drivers();
        let (url, max) = match database_url {
            Some(url) => (url.to_owned(), 10),
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| DbError::Open {
                    url: data_dir.display().to_string(),
                    source: sqlx::Error::Io(e),
                })?;
                let file = data_dir.join("controller.db");
                // One connection: SQLite serialises writers anyway, and it rules out "database
                // is locked" between our own connections.
                (format!("sqlite://{}?mode=rwc", file.display()), 1)
            }
        };
        let shown = redact(&url);
        // A request waits this long for a connection: a database out of reach is then a 503
        // within the client's patience, not a hang (SQLite's one connection may be busy longer
        // under load, which is a queue, not an outage).
        let acquire = if url.starts_with("sqlite:") { 60 } else { 5 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(acquire))
            .connect(&url)
            .await
            .map_err(|source| DbError::Open { url: shown, source })?;
        if url.starts_with("sqlite:") {
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&pool)
                .await?;
        }
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(DbError::Migrate)?;
        Ok(Db {
            pool,
            reads: std::sync::Arc::default(),
        })
    }

    /// Pages as last rendered, forgotten at every write (see `recent`).
    pub(crate) fn app_pages(&self) -> &recent::Recent<recent::PageKey, bytes::Bytes> {
        &self.reads.app_pages
    }

    /// Held while a page missing from [`Db::app_pages`] is rendered.
    pub(crate) fn app_pages_rendering(&self) -> &tokio::sync::Mutex<()> {
        &self.reads.rendering
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// One page of a `SELECT ... WHERE x = $1 ... LIMIT $2 OFFSET $3` query, and the number of
    /// all its rows by `count_sql` (`SELECT COUNT(*) ... WHERE x = $1`).
    pub(crate) async fn page<T>(
        &self,
        rows_sql: String,
        count_sql: &'static str,
        param: &str,
        limit: i64,
        offset: i64,
    ) -> DbResult<(Vec<T>, i64)>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let rows = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(rows_sql))
            .bind(param)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        Ok((rows, self.count(count_sql, param).await?))
    }

    /// Counts rows of a `SELECT COUNT(*) ...` query with one text parameter.
    pub(crate) async fn count(&self, sql: &'static str, param: &str) -> DbResult<i64> {
        let row = sqlx::query(sql).bind(param).fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Parses a JSON object column.
pub(crate) fn json_map(text: &str) -> DbResult<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).map_err(DbError::Corrupt)
}
