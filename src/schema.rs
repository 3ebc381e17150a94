//! The GraphQL schema: queries from `queries`, mutations from `commands`, limits from configuration.

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};
use commands::MutationRoot;
use queries::QueryRoot;

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema without data or limits (enough to print the SDL).
pub fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .extension(commands::ReadYourWrites)
}

/// The SDL that `autosalon schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    builder().finish().sdl()
}
