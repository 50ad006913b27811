//! Custom domains, certificates and users' SSH keys.

use sqlx::FromRow;

use super::{Db, DbResult};

/// A custom domain bound to an app.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Domain {
    pub(crate) domain: String,
    pub(crate) owner: String,
    pub(crate) app: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

/// A certificate for a custom domain.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Cert {
    pub(crate) id: i64,
    pub(crate) owner: String,
    pub(crate) certificate: String,
    pub(crate) cert_key: String,
    pub(crate) common_name: String,
    pub(crate) expires: i64,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

/// A user's SSH public key.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct SshKey {
    pub(crate) uuid: String,
    pub(crate) owner: String,
    pub(crate) id: String,
    pub(crate) public: String,
    pub(crate) fingerprint: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

const DOMAIN: &str = "domain, owner, app, created, updated";
const CERT: &str = "id, owner, certificate, cert_key, common_name, expires, created, updated";
const KEY: &str = "uuid, owner, id, public, fingerprint, created, updated";

impl Db {
    pub(crate) async fn domains(
        &self,
        app: &str,
        limit: i64,
        offset: i64,
    ) -> DbResult<(Vec<Domain>, i64)> {
        self.page(
            format!("SELECT {DOMAIN} FROM domains WHERE app = $1 ORDER BY created, domain LIMIT $2 OFFSET $3"),
            "SELECT COUNT(*) FROM domains WHERE app = $1",
            app,
            limit,
            offset,
        )
        .await
    }

    pub(crate) async fn domain(&self, domain: &str) -> DbResult<Option<Domain>> {
        Ok(sqlx::query_as::<_, Domain>(sqlx::AssertSqlSafe(format!(
            "SELECT {DOMAIN} FROM domains WHERE lower(domain) = lower($1)"
        )))
        .bind(domain)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn insert_domain(&self, d: &Domain) -> DbResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO domains ({DOMAIN}) VALUES ($1, $2, $3, $4, $5)"
        )))
        .bind(&d.domain)
        .bind(&d.owner)
        .bind(&d.app)
        .bind(d.created)
        .bind(d.updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_domain(&self, domain: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM domains WHERE domain = $1")
            .bind(domain)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(crate) async fn certs(
        &self,
        owner: &str,
        limit: i64,
        offset: i64,
    ) -> DbResult<(Vec<Cert>, i64)> {
        self.page(
            format!("SELECT {CERT} FROM certs WHERE owner = $1 ORDER BY id LIMIT $2 OFFSET $3"),
            "SELECT COUNT(*) FROM certs WHERE owner = $1",
            owner,
            limit,
            offset,
        )
        .await
    }

    pub(crate) async fn cert(&self, common_name: &str) -> DbResult<Option<Cert>> {
        Ok(sqlx::query_as::<_, Cert>(sqlx::AssertSqlSafe(format!(
            "SELECT {CERT} FROM certs WHERE lower(common_name) = lower($1)"
        )))
        .bind(common_name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Stores a certificate under the next free id.
    pub(crate) async fn insert_cert(&self, cert: &Cert) -> DbResult<Cert> {
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM certs")
            .fetch_one(&mut *tx)
            .await?;
        let mut cert = cert.clone();
        cert.id = id;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO certs ({CERT}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(cert.id)
        .bind(&cert.owner)
        .bind(&cert.certificate)
        .bind(&cert.cert_key)
        .bind(&cert.common_name)
        .bind(cert.expires)
        .bind(cert.created)
        .bind(cert.updated)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(cert)
    }

    pub(crate) async fn delete_cert(&self, common_name: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM certs WHERE common_name = $1")
            .bind(common_name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(crate) async fn keys(
        &self,
        owner: &str,
        limit: i64,
        offset: i64,
    ) -> DbResult<(Vec<SshKey>, i64)> {
        self.page(
            format!("SELECT {KEY} FROM ssh_keys WHERE owner = $1 ORDER BY created, id LIMIT $2 OFFSET $3"),
            "SELECT COUNT(*) FROM ssh_keys WHERE owner = $1",
            owner,
            limit,
            offset,
        )
        .await
    }

    pub(crate) async fn key(&self, owner: &str, id: &str) -> DbResult<Option<SshKey>> {
        Ok(sqlx::query_as::<_, SshKey>(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY} FROM ssh_keys WHERE owner = $1 AND id = $2"
        )))
        .bind(owner)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The key whose public part (type and base64 blob) is `public`, whatever its comment.
    pub(crate) async fn key_by_fingerprint(&self, fingerprint: &str) -> DbResult<Option<SshKey>> {
        Ok(sqlx::query_as::<_, SshKey>(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY} FROM ssh_keys WHERE fingerprint = $1 ORDER BY created LIMIT 1"
        )))
        .bind(fingerprint)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn insert_key(&self, key: &SshKey) -> DbResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ssh_keys ({KEY}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )))
        .bind(&key.uuid)
        .bind(&key.owner)
        .bind(&key.id)
        .bind(&key.public)
        .bind(&key.fingerprint)
        .bind(key.created)
        .bind(key.updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_key(&self, uuid: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM ssh_keys WHERE uuid = $1")
            .bind(uuid)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
