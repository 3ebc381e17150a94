//! Scalars with strict input: money never travels as a JSON number, timestamps are RFC 3339 UTC,
//! dates are ISO `YYYY-MM-DD`.

use std::str::FromStr;

use aggregates::money::{Currency as DomainCurrency, Money as DomainMoney};
use async_graphql::{
    Enum, InputObject, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value,
};
use chrono::{SecondsFormat, Utc};

/// An exact decimal number as a string, e.g. `"1500000.00"`. JSON numbers are refused on input: they
/// pass through binary floating point in most clients and lose kopecks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal(pub rust_decimal::Decimal);

/// Inputs are fingerprinted as JSON for idempotency: decimals as their exact text.
impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::custom(
                "Decimal must be a string such as \"1500000.00\", not a JSON number",
            ));
        };
        parse_decimal(text)
            .map(Decimal)
            .map_err(InputValueError::custom)
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// Accepts `-?digits(.digits)?` only: no exponent, no spaces, no thousands separators.
fn parse_decimal(text: &str) -> Result<rust_decimal::Decimal, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !plain(whole) || !plain(fraction) || text.len() > 40 {
        return Err(format!(
            "{text:?} is not a decimal number like \"1500000.00\""
        ));
    }
    rust_decimal::Decimal::from_str(text)
        .map_err(|err| format!("{text:?} is not a decimal number: {err}"))
}

/// An instant, RFC 3339 in UTC with a `Z`, e.g. `"2026-11-22T10:15:00.000Z"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime(pub chrono::DateTime<Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::custom(
                "DateTime must be an RFC 3339 string",
            ));
        };
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|at| DateTime(at.with_timezone(&Utc)))
            .map_err(|err| InputValueError::custom(format!("{text:?} is not RFC 3339: {err}")))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl DateTime {
    /// From the RFC 3339 text stored in read models.
    pub fn from_stored(text: &str) -> Result<Self, crate::ApiError> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|at| DateTime(at.with_timezone(&Utc)))
            .map_err(|err| crate::ApiError::internal(format!("stored timestamp {text:?}: {err}")))
    }
}

/// A calendar date, ISO 8601 `YYYY-MM-DD` exactly (e.g. `"2026-12-31"`): due dates, payment dates.
/// Anything else (a time, a zone, `2026-1-5`, a number) is refused on input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub chrono::NaiveDate);

/// Inputs are fingerprinted as JSON for idempotency: dates as their ISO text.
impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::custom(
                "Date must be a string such as \"2026-12-31\"",
            ));
        };
        parse_date(text).map(Date).map_err(InputValueError::custom)
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

impl Date {
    /// From the ISO text stored in read models.
    pub fn from_stored(text: &str) -> Result<Self, crate::ApiError> {
        parse_date(text)
            .map(Date)
            .map_err(|err| crate::ApiError::internal(format!("stored date: {err}")))
    }
}

/// Accepts exactly `dddd-dd-dd` naming a real day.
fn parse_date(text: &str) -> Result<chrono::NaiveDate, String> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return Err(format!(
            "{text:?} is not a date like \"2026-12-31\" (YYYY-MM-DD)"
        ));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|err| format!("{text:?} is not a calendar date: {err}"))
}

/// A position in the global event log: a non-negative integer, increasing in commit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(pub i64);

#[Scalar(name = "Position")]
impl ScalarType for Position {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(number) => match number.as_i64() {
                Some(position) if position >= 0 => Ok(Position(position)),
                _ => Err(InputValueError::custom(
                    "Position must be a non-negative integer",
                )),
            },
            _ => Err(InputValueError::custom(
                "Position must be a non-negative integer",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// ISO 4217 currency.
#[derive(Enum, Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Currency {
    #[default]
    RUB,
    USD,
    EUR,
    CNY,
}

impl From<Currency> for DomainCurrency {
    fn from(currency: Currency) -> Self {
        match currency {
            Currency::RUB => DomainCurrency::RUB,
            Currency::USD => DomainCurrency::USD,
            Currency::EUR => DomainCurrency::EUR,
            Currency::CNY => DomainCurrency::CNY,
        }
    }
}

impl From<DomainCurrency> for Currency {
    fn from(currency: DomainCurrency) -> Self {
        match currency {
            DomainCurrency::RUB => Currency::RUB,
            DomainCurrency::USD => Currency::USD,
            DomainCurrency::EUR => Currency::EUR,
            DomainCurrency::CNY => Currency::CNY,
        }
    }
}

impl Currency {
    /// From the ISO code stored in read models.
    pub fn from_stored(code: &str) -> Result<Self, crate::ApiError> {
        DomainCurrency::from_str(code)
            .map(Currency::from)
            .map_err(|err| crate::ApiError::internal(format!("stored currency: {err}")))
    }
}

/// An amount of money in one currency, exact to the kopeck.
#[derive(SimpleObject, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl From<DomainMoney> for Money {
    fn from(money: DomainMoney) -> Self {
        Money {
            amount: Decimal(money.amount()),
            currency: money.currency().into(),
        }
    }
}

impl Money {
    /// From a read model's minor units (kopecks) and currency code.
    pub fn from_stored(minor_units: i64, currency: &str) -> Result<Self, crate::ApiError> {
        Ok(
            DomainMoney::from_minor_units(minor_units, Currency::from_stored(currency)?.into())
                .into(),
        )
    }
}

/// Money on input: an exact decimal string and a currency (RUB unless stated).
#[derive(InputObject, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MoneyInput {
    pub amount: Decimal,
    #[graphql(default_with = "Currency::RUB")]
    pub currency: Currency,
}

impl MoneyInput {
    /// Validates precision (at most two decimal places) and builds domain money.
    pub fn to_domain(self) -> Result<DomainMoney, crate::ApiError> {
        DomainMoney::new(self.amount.0, self.currency.into())
            .map_err(|err| crate::ApiError::validation(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_accepted_only_as_plain_strings() {
        assert_eq!(
            parse_decimal("1500000.00").unwrap().to_string(),
            "1500000.00"
        );
        assert_eq!(parse_decimal("-0.5").unwrap().to_string(), "-0.5");
        for bad in ["", "1e5", "1,000", " 1", "1.", ".5", "abc", "1.2.3", "--1"] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Decimal::parse(Value::from(12.5)).is_err());
        assert!(Decimal::parse(Value::from(12)).is_err());
    }

    #[test]
    fn dates_are_accepted_only_as_iso_calendar_days() {
        let date = Date::parse(Value::String("2028-02-29".into())).unwrap();
        assert_eq!(date.to_value(), Value::String("2028-02-29".into()));
        for bad in [
            "2027-02-29",
            "2026-1-05",
            "2026-01-05T00:00:00Z",
            "05.01.2026",
            "+2026-01-05",
            " 2026-01-05",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Date::parse(Value::from(20260105)).is_err());
    }

    #[test]
    fn timestamps_are_written_in_utc_with_a_z() {
        let at = DateTime::parse(Value::String("2026-11-22T13:15:00+03:00".into())).unwrap();
        assert_eq!(
            at.to_value(),
            Value::String("2026-11-22T10:15:00.000Z".into())
        );
    }
}
