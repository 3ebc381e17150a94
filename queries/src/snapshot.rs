//! Reading a read model as of one point in the log: the rows and the projector's checkpoint are read in
//! one read transaction, so the position a query reports is exactly the one its rows reflect, even
//! while the projector keeps writing (SQLite WAL gives any transaction a stable snapshot; PostgreSQL
//! needs REPEATABLE READ, see [`Backend::begin_snapshot`]).

use eventstore::{Backend, Db, DbPool};
use sqlx::{AnyConnection, Transaction};

use crate::ApiResult;

/// An open, read-only view of the database at one instant.
pub struct Snapshot {
    tx: Transaction<'static, Db>,
}

impl Snapshot {
    /// Opens a snapshot. The first statement fixes the instant it shows.
    pub async fn open(pool: &DbPool) -> ApiResult<Self> {
        Ok(Self {
            tx: pool.begin_with(Backend::of(pool).begin_snapshot()).await?,
        })
    }

    /// The connection to run this snapshot's queries on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The global position up to which `projector`'s tables reflect the log, in this snapshot.
    pub async fn position(&mut self, projector: &str) -> ApiResult<i64> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM log_checkpoints WHERE consumer = $1")
                .bind(projector)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(position.unwrap_or(0))
    }
}
