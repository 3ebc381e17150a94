//! The backend seam for cqrs-es: [`EventRepository`] persists aggregates' events and snapshots.
//! One variant per backend: sqlite-es for the embedded file, postgres-es for PostgreSQL.

use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, CqrsFramework};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use crate::database::NativePool;
use crate::{Database, Upcasters};

/// A snapshot is written every this many events, so loading an aggregate reads at most this many
/// events after its snapshot.
pub const SNAPSHOT_EVERY_EVENTS: usize = 100;

/// The event store cqrs-es runs against.
pub type Store<A> = PersistedEventStore<EventRepository, A>;
/// One command framework per aggregate.
pub type Cqrs<A> = CqrsFramework<A, Store<A>>;

/// The selected backend's event repository.
pub enum EventRepository {
    /// The embedded default: sqlite-es reads, the group-committing appender writes.
    Sqlite(SqliteEventRepository, crate::writer::Writer),
    /// The production backend: postgres-es reads, the group-committing appender writes.
    Postgres(PostgresEventRepository, crate::writer::Writer),
}

impl Database {
    /// The backend's repository for cqrs-es.
    pub fn event_repository(&self) -> EventRepository {
        match self.native() {
            NativePool::Sqlite(pool) => EventRepository::Sqlite(
                SqliteEventRepository::new(pool.clone()),
                self.writer().clone(),
            ),
            NativePool::Postgres(pool) => EventRepository::Postgres(
                PostgresEventRepository::new(pool.clone()),
                self.writer().clone(),
            ),
        }
    }

    /// An event store for aggregate `A` with snapshots and the shared upcasters.
    pub fn store<A: Aggregate>(&self, upcasters: &Upcasters) -> Store<A> {
        PersistedEventStore::new_snapshot_store(self.event_repository(), SNAPSHOT_EVERY_EVENTS)
            .with_upcasters(shared_upcasters(upcasters))
    }

    /// A command framework for aggregate `A`. No cqrs-es queries are attached: read models are built by
    /// durable projectors from the global log, never in-process after commit.
    pub fn framework<A: Aggregate>(&self, upcasters: &Upcasters, services: A::Services) -> Cqrs<A> {
        CqrsFramework::new(self.store::<A>(upcasters), vec![], services)
    }
}

/// cqrs-es wants owned boxes; each one delegates to the shared list.
fn shared_upcasters(upcasters: &Upcasters) -> Vec<Box<dyn cqrs_es::persist::EventUpcaster>> {
    vec![Box::new(SharedUpcasters(upcasters.clone()))]
}

struct SharedUpcasters(Upcasters);

impl cqrs_es::persist::EventUpcaster for SharedUpcasters {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        self.0
            .iter()
            .any(|upcaster| upcaster.can_upcast(event_type, event_version))
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        crate::log::upcast(&self.0, event)
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Sqlite(repo, _) => repo.get_events::<A>(aggregate_id).await,
            Self::Postgres(repo, _) => repo.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Sqlite(repo, _) => repo.get_last_events::<A>(aggregate_id, last_sequence).await,
            Self::Postgres(repo, _) => repo.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Self::Sqlite(repo, _) => repo.get_snapshot::<A>(aggregate_id).await,
            Self::Postgres(repo, _) => repo.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            Self::Sqlite(_, writer) => writer.append(A::TYPE, events, snapshot_update).await,
            Self::Postgres(_, writer) => writer.append(A::TYPE, events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(repo, _) => repo.stream_events::<A>(aggregate_id).await,
            Self::Postgres(repo, _) => repo.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(repo, _) => repo.stream_all_events::<A>().await,
            Self::Postgres(repo, _) => repo.stream_all_events::<A>().await,
        }
    }
}
