//! Who is asking: taken from the HTTP request, written into every event's metadata.

use uuid::Uuid;

/// The caller of one GraphQL request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    pub actor_id: String,
    pub actor_role: String,
    /// Shared by every command of this request (and by the client's own tracing, if it sent one).
    pub correlation_id: String,
}

impl RequestContext {
    /// Used when no actor is declared (no authentication yet: the header is trusted as given).
    pub const ANONYMOUS: &'static str = "anonymous";
    pub const DEFAULT_ROLE: &'static str = "staff";

    pub fn new(
        actor_id: Option<&str>,
        actor_role: Option<&str>,
        correlation_id: Option<&str>,
    ) -> Self {
        let clean = |value: Option<&str>, default: &str| {
            value
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= 200)
                .unwrap_or(default)
                .to_string()
        };
        Self {
            actor_id: clean(actor_id, Self::ANONYMOUS),
            actor_role: clean(actor_role, Self::DEFAULT_ROLE),
            correlation_id: correlation_id
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= 200)
                .map(str::to_string)
                .unwrap_or_else(|| Uuid::now_v7().to_string()),
        }
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        Self::new(None, None, None)
    }
}
