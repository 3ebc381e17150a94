//! Money: an exact decimal amount in one ISO 4217 currency, always to the kopeck (two places).
//!
//! Invariants, enforced by [`Money::new`] and by deserialization (so a stored event can never hold
//! an amount the domain would refuse):
//! - the amount has exactly two decimal places (`10.50`, never `10.5` or `10.505`); an input with
//!   more significant places is refused with [`MoneyError::TooPrecise`], never rounded silently;
//! - the amount in minor units (kopecks, cents) fits an `i64`, so [`Money::minor_units`] is exact
//!   and sums either succeed exactly or fail with [`MoneyError::Overflow`];
//! - amounts in different currencies are never combined ([`MoneyError::CurrencyMismatch`]).
//!
//! Rounding happens only where the domain computes a share of an amount ([`Money::percentage`]),
//! and only by the one rule [`KOPECK_ROUNDING`]. There is no floating point here.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Decimal places every amount carries: money is kept to the kopeck (or cent, or fen).
pub const MONEY_SCALE: u32 = 2;

/// The one rounding rule for money: to kopecks, half away from zero (`0.005` becomes `0.01`,
/// `-0.005` becomes `-0.01`), the commercial rounding Russian accounting uses.
///
/// `Decimal::round_dp` rounds half to even (banker's rounding), which is not this rule; always
/// round with [`round_to_kopecks`].
pub const KOPECK_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Rounds `value` to kopecks by [`KOPECK_ROUNDING`].
pub fn round_to_kopecks(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(MONEY_SCALE, KOPECK_ROUNDING)
}

/// An ISO 4217 currency the dealership trades in. Serialized as its code (`"RUB"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Currency {
    /// Russian rouble, the dealership's home currency and the default.
    #[default]
    RUB,
    /// US dollar.
    USD,
    /// Euro.
    EUR,
    /// Chinese yuan renminbi.
    CNY,
}

impl Currency {
    /// Every supported currency, in declaration order.
    pub const ALL: [Currency; 4] = [Currency::RUB, Currency::USD, Currency::EUR, Currency::CNY];

    /// The ISO 4217 alphabetic code, e.g. `"RUB"`.
    pub fn code(self) -> &'static str {
        match self {
            Currency::RUB => "RUB",
            Currency::USD => "USD",
            Currency::EUR => "EUR",
            Currency::CNY => "CNY",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Parses an ISO 4217 code; surrounding whitespace and letter case are ignored.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let code = input.trim();
        Currency::ALL
            .into_iter()
            .find(|currency| currency.code().eq_ignore_ascii_case(code))
            .ok_or_else(|| MoneyError::UnknownCurrency {
                code: code.to_owned(),
            })
    }
}

/// Why an amount of money was refused or an operation on it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount has fractions of a kopeck. The caller asks for an amount in whole kopecks; the
    /// domain never guesses how to round it.
    #[error("amount {amount} has more than two decimal places; money is kept to the kopeck")]
    TooPrecise { amount: Decimal },
    /// Two amounts in different currencies were combined. The caller converts one of them first
    /// (conversion is a business decision with a rate and a date, never implicit).
    #[error("cannot combine an amount in {left} with an amount in {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    /// The amount is beyond what the ledger can hold (about 92 quadrillion). The caller treats it
    /// as invalid input.
    #[error("amount is too large")]
    Overflow,
    /// The currency code is not one the dealership trades in. The caller asks for one of RUB,
    /// USD, EUR or CNY.
    #[error("unknown currency \"{code}\"; use one of RUB, USD, EUR, CNY")]
    UnknownCurrency { code: String },
}

/// An exact amount of money in one currency, with exactly two decimal places.
///
/// Serialized as `{"amount": "1500000.00", "currency": "RUB"}`: the amount is a string so no JSON
/// reader turns it into a float. Deserializing goes through [`Money::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr")]
pub struct Money {
    /// Always at scale [`MONEY_SCALE`], and within `i64` minor units.
    amount: Decimal,
    currency: Currency,
}

/// The unvalidated wire form of [`Money`], so deserialization can refuse what `new` refuses.
#[derive(Deserialize)]
struct MoneyRepr {
    amount: Decimal,
    currency: Currency,
}

impl TryFrom<MoneyRepr> for Money {
    type Error = MoneyError;

    fn try_from(repr: MoneyRepr) -> Result<Self, Self::Error> {
        Money::new(repr.amount, repr.currency)
    }
}

impl Money {
    /// An amount of `currency`. Refuses fractions of a kopeck ([`MoneyError::TooPrecise`]) and
    /// amounts beyond `i64` minor units ([`MoneyError::Overflow`]). Trailing zeros are fine
    /// (`10.500` is `10.50`); the result always has exactly two decimal places.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        if amount.normalize().scale() > MONEY_SCALE {
            return Err(MoneyError::TooPrecise { amount });
        }
        let mut scaled = amount;
        scaled.rescale(MONEY_SCALE);
        // `rescale` falls back to a smaller scale when the mantissa cannot grow: such an amount is
        // far beyond the i64 range anyway.
        if scaled.scale() != MONEY_SCALE || i64::try_from(scaled.mantissa()).is_err() {
            return Err(MoneyError::Overflow);
        }
        Ok(Money {
            amount: scaled,
            currency,
        })
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money::from_minor_units(0, currency)
    }

    /// `units` kopecks (cents, fen) of `currency`; exact.
    pub fn from_minor_units(units: i64, currency: Currency) -> Money {
        Money {
            amount: Decimal::new(units, MONEY_SCALE),
            currency,
        }
    }

    /// The amount, with exactly two decimal places.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_positive(&self) -> bool {
        self.minor_units() > 0
    }

    pub fn is_negative(&self) -> bool {
        self.minor_units() < 0
    }

    pub fn is_zero(&self) -> bool {
        self.minor_units() == 0
    }

    /// The amount in kopecks (cents, fen): `amount * 100`, exact.
    pub fn minor_units(&self) -> i64 {
        // The invariant (scale 2, mantissa within i64) makes the mantissa the minor units.
        i64::try_from(self.amount.mantissa()).unwrap_or_else(|_| {
            debug_assert!(false, "Money invariant broken: {self:?}");
            0
        })
    }

    /// `self + other`, exact. Refuses different currencies and results beyond the range.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let units = self
            .minor_units()
            .checked_add(other.minor_units())
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor_units(units, currency))
    }

    /// `self - other`, exact. Refuses different currencies and results beyond the range.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let units = self
            .minor_units()
            .checked_sub(other.minor_units())
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor_units(units, currency))
    }

    /// `percent` per cent of this amount, rounded to kopecks by [`KOPECK_ROUNDING`].
    ///
    /// For `percent` within `0..=100` the result never exceeds the amount.
    ///
    /// # Panics
    ///
    /// If the result is beyond the range of [`Money`], which needs a percentage far above 100 of
    /// an amount near the limit. Use [`Money::checked_percentage`] where `percent` is not bounded.
    pub fn percentage(self, percent: Decimal) -> Money {
        self.checked_percentage(percent)
            .unwrap_or_else(|error| panic!("{percent}% of {self}: {error}"))
    }

    /// Like [`Money::percentage`], but reports an out-of-range result as [`MoneyError::Overflow`].
    pub fn checked_percentage(self, percent: Decimal) -> Result<Money, MoneyError> {
        let share = self
            .amount
            .checked_mul(percent)
            .and_then(|product| product.checked_div(Decimal::ONE_HUNDRED))
            .ok_or(MoneyError::Overflow)?;
        Money::new(round_to_kopecks(share), self.currency)
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    /// `1500000.00 RUB`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(literal: &str) -> Decimal {
        literal.parse().unwrap()
    }

    fn rub(amount: Decimal) -> Money {
        Money::new(amount, Currency::RUB).unwrap()
    }

    #[test]
    fn an_amount_always_carries_two_decimal_places() {
        assert_eq!(rub(d("10.5")).to_string(), "10.50 RUB");
        assert_eq!(rub(d("1500000")).to_string(), "1500000.00 RUB");
        assert_eq!(rub(d("10.500")).amount().scale(), 2);
    }

    #[test]
    fn fractions_of_a_kopeck_are_refused_not_rounded() {
        assert_eq!(
            Money::new(d("10.505"), Currency::RUB),
            Err(MoneyError::TooPrecise {
                amount: d("10.505")
            })
        );
    }

    #[test]
    fn amounts_beyond_i64_kopecks_are_refused() {
        assert_eq!(
            Money::new(Decimal::MAX, Currency::RUB),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(d("92233720368547758.08"), Currency::RUB),
            Err(MoneyError::Overflow)
        );
        assert!(Money::new(d("92233720368547758.07"), Currency::RUB).is_ok());
    }

    #[test]
    fn currencies_parse_from_their_iso_codes() {
        assert_eq!("RUB".parse(), Ok(Currency::RUB));
        assert_eq!(" usd ".parse(), Ok(Currency::USD));
        assert_eq!(
            "GBP".parse::<Currency>(),
            Err(MoneyError::UnknownCurrency { code: "GBP".into() })
        );
        assert_eq!(Currency::default(), Currency::RUB);
        assert_eq!(Currency::CNY.to_string(), "CNY");
    }

    #[test]
    fn adding_different_currencies_is_refused() {
        let usd = Money::zero(Currency::USD);
        assert_eq!(
            rub(d("1")).checked_add(usd),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::RUB,
                right: Currency::USD
            })
        );
        assert_eq!(
            Money::from_minor_units(i64::MIN, Currency::USD)
                .checked_sub(Money::from_minor_units(1, Currency::USD)),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn percentages_round_half_away_from_zero() {
        // 12.5% of 0.20 is 0.025: banker's rounding would give 0.02.
        assert_eq!(rub(d("0.20")).percentage(d("12.5")), rub(d("0.03")));
        assert_eq!(rub(d("-0.20")).percentage(d("12.5")), rub(d("-0.03")));
        assert_eq!(rub(d("1500000")).percentage(d("7")), rub(d("105000")));
        assert_eq!(round_to_kopecks(d("2.345")), d("2.35"));
    }

    #[test]
    fn money_serializes_with_the_amount_as_a_string() {
        let json = serde_json::to_value(rub(d("1500000"))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount": "1500000.00", "currency": "RUB"})
        );
        assert_eq!(
            serde_json::from_value::<Money>(json).unwrap(),
            rub(d("1500000"))
        );
    }

    #[test]
    fn a_stored_amount_with_fractions_of_a_kopeck_does_not_deserialize() {
        let json = serde_json::json!({"amount": "1.005", "currency": "RUB"});
        assert!(serde_json::from_value::<Money>(json).is_err());
        let json = serde_json::json!({"amount": "1.00", "currency": "GBP"});
        assert!(serde_json::from_value::<Money>(json).is_err());
    }

    fn percent() -> impl Strategy<Value = Decimal> {
        (0..=10_000i64).prop_map(|hundredths| Decimal::new(hundredths, 2))
    }

    proptest! {
        #[test]
        fn minor_units_round_trip(units in any::<i64>()) {
            let money = Money::from_minor_units(units, Currency::EUR);
            prop_assert_eq!(money.minor_units(), units);
            prop_assert_eq!(Money::new(money.amount(), Currency::EUR), Ok(money));
        }

        #[test]
        fn checked_add_is_commutative(a in any::<i64>(), b in any::<i64>()) {
            let (a, b) = (Money::from_minor_units(a, Currency::RUB), Money::from_minor_units(b, Currency::RUB));
            prop_assert_eq!(a.checked_add(b), b.checked_add(a));
        }

        #[test]
        fn subtracting_undoes_adding(a in any::<i32>(), b in any::<i32>()) {
            let (a, b) = (Money::from_minor_units(a.into(), Currency::RUB), Money::from_minor_units(b.into(), Currency::RUB));
            prop_assert_eq!(a.checked_add(b).and_then(|sum| sum.checked_sub(b)), Ok(a));
        }

        #[test]
        fn a_percentage_up_to_100_never_exceeds_the_amount(units in any::<i64>(), percent in percent()) {
            let money = Money::from_minor_units(units, Currency::RUB);
            let share = money.percentage(percent);
            prop_assert!(share.minor_units().unsigned_abs() <= units.unsigned_abs());
            prop_assert!(share.is_zero() || share.is_negative() == (units < 0), "sign flipped");
            prop_assert_eq!(share.amount().scale(), MONEY_SCALE);
        }

        #[test]
        fn money_survives_a_json_round_trip(units in any::<i64>()) {
            let money = Money::from_minor_units(units, Currency::CNY);
            let json = serde_json::to_string(&money).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        }
    }
}
