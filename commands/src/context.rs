//! Who is asking: the verified identity of the HTTP request, written into every event's metadata.

use queries::access::Identity;
use uuid::Uuid;

/// The longest correlation id accepted from a client; a longer (or otherwise unfit) one is
/// replaced by a fresh id.
pub const MAX_CORRELATION_ID_CHARS: usize = 128;

/// The caller of one GraphQL request, as event metadata records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    /// The verified caller ([`Identity::actor_id`]); never taken from a header.
    pub actor_id: String,
    /// Its roles ([`Identity::actor_role`]).
    pub actor_role: String,
    /// Shared by every command of this request (and by the client's own tracing, if it sent one).
    /// It claims nothing about who the caller is, so a client may choose it.
    pub correlation_id: String,
}

impl RequestContext {
    /// The context of a request made by `identity`, with the client's correlation id if it is a
    /// plausible one: 1 to 128 printable ASCII characters without spaces (anything else could
    /// forge log lines or bloat every event).
    pub fn of(identity: &Identity, correlation_id: Option<&str>) -> Self {
        Self {
            actor_id: identity.actor_id(),
            actor_role: identity.actor_role(),
            correlation_id: correlation_id
                .map(str::trim)
                .filter(|id| {
                    !id.is_empty()
                        && id.len() <= MAX_CORRELATION_ID_CHARS
                        && id.bytes().all(|b| b.is_ascii_graphic())
                })
                .map(str::to_string)
                .unwrap_or_else(|| Uuid::now_v7().to_string()),
        }
    }

    /// Work the server does on its own behalf (`system:<what>`), e.g. creating the first admin or
    /// recording a sign-in lock-out.
    pub fn system(what: &str) -> Self {
        Self {
            actor_id: format!("system:{what}"),
            actor_role: "system".into(),
            correlation_id: Uuid::now_v7().to_string(),
        }
    }
}

/// The TCP peer's address of the request (for sign-in limits; `X-Forwarded-For` is not trusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);

/// An anonymous caller with a fresh correlation id (tests that send commands directly).
impl Default for RequestContext {
    fn default() -> Self {
        Self::of(&Identity::anonymous(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correlation_id_is_kept_only_when_it_is_short_printable_ascii() {
        let anonymous = Identity::anonymous();
        assert_eq!(
            RequestContext::of(&anonymous, Some("req-17")).correlation_id,
            "req-17"
        );
        for bad in ["", "two words", "line\nbreak", "Привет", &"x".repeat(129)] {
            let kept = RequestContext::of(&anonymous, Some(bad)).correlation_id;
            assert_ne!(kept, bad);
            assert!(Uuid::parse_str(&kept).is_ok(), "replaced by a fresh id");
        }
    }
}
