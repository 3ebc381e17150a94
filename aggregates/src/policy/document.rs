//! The electronic policy: the canonical document a signature covers.
//!
//! The document is one JSON object, written with no whitespace, keys sorted by byte order at every
//! level, exactly these keys and no others:
//!
//! ```text
//! {"coverage":{"amount":"400000.00","currency":"RUB"},
//!  "deductible":{"amount":"0.00","currency":"RUB"},
//!  "format":"autosalon-policy/1",
//!  "holder":"<customer id, lowercase UUID>",
//!  "insurer":"SEVER",
//!  "issued_at":"2026-11-22T10:15:00.000Z",
//!  "period_end":"2027-11-22",
//!  "period_start":"2026-11-22",
//!  "policy_number":"ASL-OSAGO-2026-…",
//!  "premium":{"amount":"9720.00","currency":"RUB"},
//!  "product":"OSAGO",
//!  "vehicle_vin":"XTA210990Y2766389"}
//! ```
//!
//! (shown wrapped; the real document is one line with no spaces outside string values). Amounts are
//! decimal strings with exactly two places; `issued_at` is RFC 3339 UTC with milliseconds and `Z`;
//! dates are ISO `YYYY-MM-DD`; `period_end` is exclusive (cover ends at 00:00 of that day). The
//! signature is Ed25519 over the document's UTF-8 bytes, exactly as stored and handed to the
//! customer: tampering with any byte makes it fail.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::money::Money;
use crate::policy::tariffs::Product;

/// Names the layout above; a different set of fields would get a new format name.
pub const DOCUMENT_FORMAT: &str = "autosalon-policy/1";

/// The facts an electronic policy certifies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDocument {
    pub policy_number: String,
    pub insurer: String,
    pub product: Product,
    pub holder: Uuid,
    pub vehicle_vin: String,
    pub period_start: NaiveDate,
    /// Exclusive.
    pub period_end: NaiveDate,
    pub coverage: Money,
    pub premium: Money,
    pub deductible: Money,
    pub issued_at: DateTime<Utc>,
}

fn money(value: Money) -> Value {
    let map: BTreeMap<&str, Value> = BTreeMap::from([
        ("amount", Value::String(value.amount().to_string())),
        (
            "currency",
            Value::String(value.currency().code().to_owned()),
        ),
    ]);
    serde_json::to_value(map).unwrap_or(Value::Null)
}

impl PolicyDocument {
    /// The canonical text described in the module docs.
    pub fn canonical(&self) -> String {
        let date = |day: NaiveDate| Value::String(day.format("%Y-%m-%d").to_string());
        let fields: BTreeMap<&str, Value> = BTreeMap::from([
            ("coverage", money(self.coverage)),
            ("deductible", money(self.deductible)),
            ("format", Value::String(DOCUMENT_FORMAT.to_owned())),
            ("holder", Value::String(self.holder.to_string())),
            ("insurer", Value::String(self.insurer.clone())),
            (
                "issued_at",
                Value::String(self.issued_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ),
            ("period_end", date(self.period_end)),
            ("period_start", date(self.period_start)),
            ("policy_number", Value::String(self.policy_number.clone())),
            ("premium", money(self.premium)),
            ("product", Value::String(self.product.as_str().to_owned())),
            ("vehicle_vin", Value::String(self.vehicle_vin.clone())),
        ]);
        // A BTreeMap of strings and JSON values always serializes.
        serde_json::to_string(&fields).unwrap_or_default()
    }
}

/// The policy number a document carried, read without trusting anything else in it.
pub fn policy_number_of(document: &str) -> Option<String> {
    let value: Value = serde_json::from_str(document).ok()?;
    value.get("policy_number")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn the_canonical_document_has_sorted_keys_and_no_whitespace() {
        let rub = |units: i64| Money::from_minor_units(units, Currency::RUB);
        let document = PolicyDocument {
            policy_number: "ASL-OSAGO-2026-00000000000000000000000000000001".into(),
            insurer: "SEVER".into(),
            product: Product::Osago,
            holder: Uuid::from_u128(0xc1),
            vehicle_vin: "XTA210990Y2766389".into(),
            period_start: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            period_end: NaiveDate::from_ymd_opt(2027, 11, 22).unwrap(),
            coverage: rub(40_000_000),
            premium: rub(972_000),
            deductible: rub(0),
            issued_at: "2026-11-22T10:15:00Z".parse().unwrap(),
        };
        assert_eq!(
            document.canonical(),
            concat!(
                r#"{"coverage":{"amount":"400000.00","currency":"RUB"},"#,
                r#""deductible":{"amount":"0.00","currency":"RUB"},"format":"autosalon-policy/1","#,
                r#""holder":"00000000-0000-0000-0000-0000000000c1","insurer":"SEVER","#,
                r#""issued_at":"2026-11-22T10:15:00.000Z","period_end":"2027-11-22","#,
                r#""period_start":"2026-11-22","policy_number":"ASL-OSAGO-2026-00000000000000000000000000000001","#,
                r#""premium":{"amount":"9720.00","currency":"RUB"},"product":"OSAGO","#,
                r#""vehicle_vin":"XTA210990Y2766389"}"#
            )
        );
        assert_eq!(
            policy_number_of(&document.canonical()).as_deref(),
            Some("ASL-OSAGO-2026-00000000000000000000000000000001")
        );
    }
}
