//! Who is asking, and which rows they may see.
//!
//! The HTTP layer verifies a token or partner API key and puts one [`Identity`] into every
//! request; nothing else a client sends claims who it is. Which *operations* each role may run is
//! decided once, before any resolver runs, by the server's permission matrix (docs/security.md).
//! Which *rows* an allowed operation may show is decided here, and every resolver that reads
//! records belonging to a customer or an insurer asks [`can_see_customer`], [`can_see_policy`] or
//! [`customer_filter`]: a client sees only its own customer's records, a partner only its
//! insurer's policies. A row that may not be seen is answered exactly like one that does not
//! exist (`NOT_FOUND`, or left out of a list), so nobody learns that another customer's id exists.
//!
//! Deny by default: a request without an identity sees no owned rows at all.

use std::collections::BTreeSet;

use async_graphql::{Context, Enum};
use uuid::Uuid;

/// A role as the API names it: the account roles, and `PARTNER` for partner API keys.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Client,
    Sales,
    Finance,
    Insurance,
    Service,
    Admin,
    Auditor,
    Analyst,
    Partner,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Client,
        Role::Sales,
        Role::Finance,
        Role::Insurance,
        Role::Service,
        Role::Admin,
        Role::Auditor,
        Role::Analyst,
        Role::Partner,
    ];

    pub fn as_str(self) -> &'static str {
        self.account_role().map_or("partner", |role| role.as_str())
    }

    /// The account role this is (partners hold keys, not accounts).
    pub fn account_role(self) -> Option<aggregates::user::Role> {
        use aggregates::user::Role as A;
        Some(match self {
            Role::Client => A::Client,
            Role::Sales => A::Sales,
            Role::Finance => A::Finance,
            Role::Insurance => A::Insurance,
            Role::Service => A::Service,
            Role::Admin => A::Admin,
            Role::Auditor => A::Auditor,
            Role::Analyst => A::Analyst,
            Role::Partner => return None,
        })
    }

    /// Staff see every customer's records (within the operations the matrix gives them).
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Client | Role::Partner)
    }
}

impl From<aggregates::user::Role> for Role {
    fn from(role: aggregates::user::Role) -> Self {
        use aggregates::user::Role as A;
        match role {
            A::Client => Role::Client,
            A::Sales => Role::Sales,
            A::Finance => Role::Finance,
            A::Insurance => Role::Insurance,
            A::Service => Role::Service,
            A::Admin => Role::Admin,
            A::Auditor => Role::Auditor,
            A::Analyst => Role::Analyst,
        }
    }
}

/// How the caller proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// No credentials were sent.
    Anonymous,
    /// An account of this ledger, by an access token this server (or one sharing its key) issued.
    Account {
        user_id: Uuid,
        /// The sign-in session the token belongs to (`logout` ends it).
        session_id: Uuid,
        /// The customer a `client` account belongs to.
        customer_id: Option<Uuid>,
    },
    /// An account of the operator's OpenID Connect provider, by a token it signed.
    External { subject: String },
    /// A partner insurer, by one of its API keys.
    Partner { key_id: Uuid, insurer: String },
}

/// The verified caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub principal: Principal,
    pub roles: BTreeSet<Role>,
}

impl Identity {
    pub fn anonymous() -> Self {
        Self {
            principal: Principal::Anonymous,
            roles: BTreeSet::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal == Principal::Anonymous
    }

    /// The actor recorded in event metadata: `user:<id>`, `oidc:<subject>`, `partner-key:<id>` or
    /// `anonymous`.
    pub fn actor_id(&self) -> String {
        match &self.principal {
            Principal::Anonymous => "anonymous".into(),
            Principal::Account { user_id, .. } => format!("user:{user_id}"),
            Principal::External { subject } => format!("oidc:{subject}"),
            Principal::Partner { key_id, .. } => format!("partner-key:{key_id}"),
        }
    }

    /// The roles recorded in event metadata, comma-separated (`anonymous` without any).
    pub fn actor_role(&self) -> String {
        if self.roles.is_empty() {
            return "anonymous".into();
        }
        self.roles
            .iter()
            .map(|role| role.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_staff(&self) -> bool {
        self.roles.iter().any(|role| role.is_staff())
    }

    /// Which owned rows this caller may see.
    pub fn scope(&self) -> Scope {
        if self.is_staff() {
            return Scope::Everything;
        }
        match &self.principal {
            Principal::Account {
                customer_id: Some(customer),
                ..
            } if self.has(Role::Client) => Scope::Customer(*customer),
            Principal::Partner { insurer, .. } if self.has(Role::Partner) => {
                Scope::Insurer(insurer.clone())
            }
            _ => Scope::Nothing,
        }
    }

    /// Analysts read customers with their personal data masked, unless another role they hold
    /// needs it in the clear.
    pub fn masks_personal_data(&self) -> bool {
        self.has(Role::Analyst)
            && !self
                .roles
                .iter()
                .any(|role| role.is_staff() && *role != Role::Analyst)
    }
}

/// Which customer- and insurer-owned rows a caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Staff: every row.
    Everything,
    /// A client: its own customer's rows only.
    Customer(Uuid),
    /// A partner: its insurer's policies and their claims only.
    Insurer(String),
    /// Nobody's rows.
    Nothing,
}

/// The caller of this request (anonymous when the server put none in, which never happens over
/// HTTP: deny by default all the same).
pub fn identity<'a>(ctx: &Context<'a>) -> std::borrow::Cow<'a, Identity> {
    match ctx.data_opt::<Identity>() {
        Some(identity) => std::borrow::Cow::Borrowed(identity),
        None => std::borrow::Cow::Owned(Identity::anonymous()),
    }
}

pub fn scope(ctx: &Context<'_>) -> Scope {
    identity(ctx).scope()
}

/// Whether the caller may see records of `customer_id` (customers, orders, payments, loans,
/// quotes, bookings, history, statements).
pub fn can_see_customer(ctx: &Context<'_>, customer_id: Uuid) -> bool {
    match scope(ctx) {
        Scope::Everything => true,
        Scope::Customer(own) => own == customer_id,
        Scope::Insurer(_) | Scope::Nothing => false,
    }
}

/// Whether the caller may see a policy (and its claims) held by `customer_id` with `insurer`.
pub fn can_see_policy(ctx: &Context<'_>, customer_id: Uuid, insurer: &str) -> bool {
    match scope(ctx) {
        Scope::Everything => true,
        Scope::Customer(own) => own == customer_id,
        Scope::Insurer(own) => own == insurer,
        Scope::Nothing => false,
    }
}

/// The customer filter a list runs with: `requested` for staff, the caller's own customer for a
/// client (`None` — an empty list — when a client asks for another customer's), and `None` for
/// callers who see no customer's records.
pub fn customer_filter(ctx: &Context<'_>, requested: Option<Uuid>) -> Option<Option<Uuid>> {
    match scope(ctx) {
        Scope::Everything => Some(requested),
        Scope::Customer(own) => match requested {
            Some(other) if other != own => None,
            _ => Some(Some(own)),
        },
        Scope::Insurer(_) | Scope::Nothing => None,
    }
}

/// Whether customers' personal data is masked for this caller (see [`Identity::masks_personal_data`]).
pub fn masks_personal_data(ctx: &Context<'_>) -> bool {
    identity(ctx).masks_personal_data()
}

/// What a masked personal field shows instead of its value.
pub const MASKED: &str = "***";

/// `value`, or [`MASKED`] for callers who see personal data masked.
pub fn personal(ctx: &Context<'_>, value: &str) -> String {
    if masks_personal_data(ctx) {
        MASKED.to_owned()
    } else {
        value.to_owned()
    }
}
