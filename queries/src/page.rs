//! Relay pagination: `first`/`after`, capped page size, `totalCount`.

use async_graphql::SimpleObject;
use async_graphql::connection::CursorType;

use crate::input::Cursor;
use crate::{ApiError, ApiResult};

/// Page size when the client does not say.
pub const DEFAULT_PAGE: usize = 50;
/// The largest page anyone gets, whatever they ask for.
pub const MAX_PAGE: usize = 200;

/// Extra connection field: how many items match in all.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct TotalCount {
    pub total_count: i64,
}

/// A connection with no edges: what a caller who may see none of a list's rows gets.
pub fn empty<C, N>() -> async_graphql::connection::Connection<C, N, TotalCount>
where
    C: CursorType + Send + Sync,
    N: async_graphql::OutputType,
{
    async_graphql::connection::Connection::with_additional_fields(
        false,
        false,
        TotalCount { total_count: 0 },
    )
}

/// A validated page request.
pub struct Page<C> {
    pub after: Option<C>,
    pub first: usize,
    pub has_previous: bool,
}

impl<C: CursorType> Page<C> {
    /// Checks `first` (1..=MAX_PAGE) and decodes `after`.
    pub fn new(first: Option<i32>, after: Option<Cursor>) -> ApiResult<Self> {
        let first = match first {
            None => DEFAULT_PAGE,
            Some(n) if n >= 1 && n as usize <= MAX_PAGE => n as usize,
            Some(n) => {
                return Err(ApiError::validation(format!(
                    "first must be between 1 and {MAX_PAGE}, got {n}"
                )));
            }
        };
        let after = after
            .map(|cursor| {
                // The value is not repeated: whatever was typed there stays out of the answer.
                C::decode_cursor(cursor.as_str())
                    .map_err(|_| ApiError::validation("after is not a cursor from this list"))
            })
            .transpose()?;
        Ok(Self {
            has_previous: after.is_some(),
            after,
            first,
        })
    }

    /// Rows to fetch: one more than the page, to learn whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.first as i64 + 1
    }
}
