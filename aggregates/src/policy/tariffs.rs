//! The partner insurers' tariffs: pure arithmetic from a quote request to an offer.
//!
//! Five partner insurers quote every request. Each uses the same published formulas with its own
//! base rates and the agent commission the dealership has agreed with it. Every coefficient below is
//! an exact decimal; the premium is rounded once, at the end, to kopecks by
//! [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING).
//!
//! # The insurers
//!
//! | id        | name              | OSAGO base rate, RUB | KASKO base, % of value | commission OSAGO / KASKO, % of premium |
//! |-----------|-------------------|---------------------:|-----------------------:|-----------------------------------------:|
//! | `SEVER`   | Sever Insurance   |              4500.00 |                   4.5  |                                 10 / 15  |
//! | `VOLGA`   | Volga Assurance   |              4800.00 |                   5.0  |                                  8 / 18  |
//! | `URAL`    | Ural Mutual       |              5000.00 |                   4.2  |                                  9 / 12  |
//! | `BALTIKA` | Baltika Insurance |              5200.00 |                   4.8  |                                 10 / 20  |
//! | `TAIGA`   | Taiga General     |              4950.00 |                   5.5  |                                  7 / 16  |
//!
//! OSAGO base rates sit inside the regulator's corridor for private cars (1646–7535 RUB); OSAGO
//! commission never exceeds the legal cap of 10 %.
//!
//! # OSAGO (compulsory third-party liability)
//!
//! `premium = base rate × KT × KBM × KVS × KM`, rounded to kopecks:
//! - **KT, territory** ([`Region::territory_coefficient`]): Moscow 1.8, Moscow region 1.56,
//!   Saint Petersburg 1.64, Kazan 1.6, Yekaterinburg 1.48, Novosibirsk 1.48, elsewhere 1.0.
//! - **KBM, bonus-malus** ([`bonus_malus_coefficient`]): class 0 → 2.3, 1 → 1.55, 2 → 1.4,
//!   3 → 1.0 (a new driver starts here), then 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55 and
//!   class 13 → 0.5. Classes outside 0..=13 are refused.
//! - **KVS, age and experience** ([`age_experience_coefficient`]): 22 or younger with at most 3 years
//!   of driving 1.8; older than 22 with at most 3 years 1.7; 22 or younger with more than 3 years
//!   1.6; otherwise 1.0.
//! - **KM, engine power** ([`power_coefficient`]): up to 50 hp 0.6, 51–70 1.0, 71–100 1.1,
//!   101–120 1.2, 121–150 1.4, above 150 1.6.
//!
//! The sum insured is fixed by law: 400 000.00 RUB for damage to property; no deductible.
//!
//! Worked example: a 106 hp car, Moscow, a driver aged 35 with 10 years of driving, class 3, at
//! Sever: `4500 × 1.8 × 1.0 × 1.0 × 1.2 = 9720.00` RUB; commission 10 % = 972.00 RUB.
//!
//! # KASKO (comprehensive)
//!
//! The sum insured is the vehicle's value (its current list price).
//! `premium = value × base % × car age × driver × brand × deductible`, rounded to kopecks:
//! - **car age** (quote year − model year, at least 0): 0 → 1.0, 1–3 → 1.1, 4–6 → 1.25, 7 or more
//!   → 1.5;
//! - **driver**: younger than 25 or less than 3 years of driving 1.4; less than 10 years 1.1;
//!   otherwise 1.0;
//! - **brand risk** ([`brand_coefficient`], case-insensitive): Toyota, Lexus, Land Rover, Hyundai,
//!   Kia (most stolen) 1.2; Lada, Haval, Chery 0.9; any other 1.0;
//! - **deductible** ([`DEDUCTIBLE_OPTIONS_RUB`]): none 1.0, 15 000 0.9, 30 000 0.8, 50 000 0.7; any
//!   other deductible is refused.
//!
//! Worked example: a 2024 Lada worth 1 500 000.00 RUB quoted in 2026 (age 2), the driver above, no
//! deductible, at Sever: `1 500 000 × 4.5 % × 1.1 × 1.0 × 0.9 × 1.0 = 66 825.00` RUB; commission
//! 15 % = 10 023.75 RUB.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, round_to_kopecks};

/// What is insured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Product {
    /// Compulsory motor third-party liability.
    Osago,
    /// Comprehensive cover of the vehicle itself.
    Kasko,
}

impl Product {
    /// The stable upper-case name used by the API, the read models and policy numbers.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Osago => "OSAGO",
            Product::Kasko => "KASKO",
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the vehicle is registered (the owner's region), for the OSAGO territory coefficient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Region {
    Moscow,
    MoscowRegion,
    SaintPetersburg,
    Kazan,
    Yekaterinburg,
    Novosibirsk,
    /// Anywhere else in Russia.
    Other,
}

impl Region {
    /// KT: see the module docs.
    pub fn territory_coefficient(self) -> Decimal {
        match self {
            Region::Moscow => d(180, 2),
            Region::MoscowRegion => d(156, 2),
            Region::SaintPetersburg => d(164, 2),
            Region::Kazan => d(160, 2),
            Region::Yekaterinburg | Region::Novosibirsk => d(148, 2),
            Region::Other => Decimal::ONE,
        }
    }
}

/// The driver a quote is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Driver {
    /// Full years.
    pub age: u32,
    /// Full years since the licence was issued.
    pub experience_years: u32,
    pub region: Region,
    /// OSAGO bonus-malus class, 0..=13 (3 for a new driver).
    pub bonus_malus_class: u32,
}

/// Youngest driver insured.
pub const MIN_DRIVER_AGE: u32 = 18;
/// Oldest age accepted (anything above is a typing error).
pub const MAX_DRIVER_AGE: u32 = 100;
/// Youngest age at which a licence can be held (driving experience cannot start earlier).
pub const MIN_LICENCE_AGE: u32 = 16;
/// Highest bonus-malus class.
pub const MAX_BONUS_MALUS_CLASS: u32 = 13;

impl Driver {
    /// Why the driver cannot be quoted, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if !(MIN_DRIVER_AGE..=MAX_DRIVER_AGE).contains(&self.age) {
            return Some(format!(
                "driver age must be {MIN_DRIVER_AGE} to {MAX_DRIVER_AGE}, got {}",
                self.age
            ));
        }
        if self.experience_years > self.age - MIN_LICENCE_AGE {
            return Some(format!(
                "{} years of driving is impossible at age {}",
                self.experience_years, self.age
            ));
        }
        if self.bonus_malus_class > MAX_BONUS_MALUS_CLASS {
            return Some(format!(
                "bonus-malus class must be 0 to {MAX_BONUS_MALUS_CLASS}, got {}",
                self.bonus_malus_class
            ));
        }
        None
    }
}

/// The facts about the insured vehicle a tariff uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleFacts {
    pub brand: String,
    pub model: String,
    /// Model year.
    pub year: i32,
    /// Its value: the current list price.
    pub value: Money,
    /// Engine power in horsepower, as in the registration certificate.
    pub power_hp: u32,
}

/// Everything a tariff needs to price one product for one vehicle and driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteTerms {
    pub product: Product,
    pub vehicle: VehicleFacts,
    pub driver: Driver,
    /// KASKO only: the deductible asked for (one of [`DEDUCTIBLE_OPTIONS_RUB`]); zero for OSAGO.
    pub deductible: Money,
    /// The calendar year of the quote (for the car's age).
    pub quote_year: i32,
}

/// One insurer's answer: a price for the cover asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The insurer's id, e.g. `SEVER`.
    pub insurer: String,
    pub premium: Money,
    /// Sum insured.
    pub coverage: Money,
    pub deductible: Money,
    /// The dealership's agent commission with this insurer for this product, % of the premium.
    pub commission_percent: Decimal,
}

/// One partner insurer's published parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsurerTariff {
    pub id: &'static str,
    pub name: &'static str,
    /// OSAGO base rate in roubles.
    pub osago_base_rate: Decimal,
    /// KASKO base, per cent of the vehicle's value.
    pub kasko_base_percent: Decimal,
    /// Agent commission on OSAGO premiums, per cent.
    pub osago_commission_percent: Decimal,
    /// Agent commission on KASKO premiums, per cent.
    pub kasko_commission_percent: Decimal,
}

const fn d(mantissa: i64, scale: u32) -> Decimal {
    Decimal::from_parts(mantissa as u32, 0, 0, false, scale)
}

/// The five partner insurers, as tabled in the module docs.
pub const PARTNERS: [InsurerTariff; 5] = [
    InsurerTariff {
        id: "SEVER",
        name: "Sever Insurance",
        osago_base_rate: d(4500, 0),
        kasko_base_percent: d(45, 1),
        osago_commission_percent: d(10, 0),
        kasko_commission_percent: d(15, 0),
    },
    InsurerTariff {
        id: "VOLGA",
        name: "Volga Assurance",
        osago_base_rate: d(4800, 0),
        kasko_base_percent: d(50, 1),
        osago_commission_percent: d(8, 0),
        kasko_commission_percent: d(18, 0),
    },
    InsurerTariff {
        id: "URAL",
        name: "Ural Mutual",
        osago_base_rate: d(5000, 0),
        kasko_base_percent: d(42, 1),
        osago_commission_percent: d(9, 0),
        kasko_commission_percent: d(12, 0),
    },
    InsurerTariff {
        id: "BALTIKA",
        name: "Baltika Insurance",
        osago_base_rate: d(5200, 0),
        kasko_base_percent: d(48, 1),
        osago_commission_percent: d(10, 0),
        kasko_commission_percent: d(20, 0),
    },
    InsurerTariff {
        id: "TAIGA",
        name: "Taiga General",
        osago_base_rate: d(4950, 0),
        kasko_base_percent: d(55, 1),
        osago_commission_percent: d(7, 0),
        kasko_commission_percent: d(16, 0),
    },
];

/// The partner with this id.
pub fn partner(id: &str) -> Option<&'static InsurerTariff> {
    PARTNERS.iter().find(|tariff| tariff.id == id)
}

/// The OSAGO sum insured for damage to property, in roubles (fixed by law).
pub const OSAGO_COVERAGE_RUB: i64 = 400_000;

/// The KASKO deductibles on offer, in whole roubles, with their discount coefficient.
pub const DEDUCTIBLE_OPTIONS_RUB: [(i64, Decimal); 4] = [
    (0, d(10, 1)),
    (15_000, d(9, 1)),
    (30_000, d(8, 1)),
    (50_000, d(7, 1)),
];

/// Why a tariff cannot price a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    /// The driver's facts are impossible or outside what is insured.
    #[error("{0}")]
    Driver(String),
    /// A KASKO deductible that is not one of the options.
    #[error("deductible {0} is not offered; choose 0, 15000, 30000 or 50000 RUB")]
    Deductible(Money),
    /// OSAGO and KASKO here are priced in roubles only.
    #[error("insurance is priced in RUB, not {0}")]
    Currency(Currency),
    /// The vehicle's value is zero or less, or the premium would overflow.
    #[error("the vehicle cannot be priced: {0}")]
    Vehicle(String),
}

/// KBM: see the module docs.
pub fn bonus_malus_coefficient(class: u32) -> Option<Decimal> {
    const TABLE: [Decimal; 14] = [
        d(230, 2),
        d(155, 2),
        d(140, 2),
        d(100, 2),
        d(95, 2),
        d(90, 2),
        d(85, 2),
        d(80, 2),
        d(75, 2),
        d(70, 2),
        d(65, 2),
        d(60, 2),
        d(55, 2),
        d(50, 2),
    ];
    TABLE.get(usize::try_from(class).ok()?).copied()
}

/// KVS: see the module docs.
pub fn age_experience_coefficient(age: u32, experience_years: u32) -> Decimal {
    match (age <= 22, experience_years <= 3) {
        (true, true) => d(18, 1),
        (false, true) => d(17, 1),
        (true, false) => d(16, 1),
        (false, false) => Decimal::ONE,
    }
}

/// KM: see the module docs.
pub fn power_coefficient(power_hp: u32) -> Decimal {
    match power_hp {
        0..=50 => d(6, 1),
        51..=70 => d(10, 1),
        71..=100 => d(11, 1),
        101..=120 => d(12, 1),
        121..=150 => d(14, 1),
        _ => d(16, 1),
    }
}

/// KASKO car-age coefficient: see the module docs.
pub fn car_age_coefficient(car_age_years: i32) -> Decimal {
    match car_age_years {
        i32::MIN..=0 => Decimal::ONE,
        1..=3 => d(11, 1),
        4..=6 => d(125, 2),
        _ => d(15, 1),
    }
}

/// KASKO driver coefficient: see the module docs.
pub fn kasko_driver_coefficient(driver: &Driver) -> Decimal {
    if driver.age < 25 || driver.experience_years < 3 {
        d(14, 1)
    } else if driver.experience_years < 10 {
        d(11, 1)
    } else {
        Decimal::ONE
    }
}

/// KASKO brand risk: see the module docs.
pub fn brand_coefficient(brand: &str) -> Decimal {
    let brand = brand.trim().to_lowercase();
    match brand.as_str() {
        "toyota" | "lexus" | "land rover" | "hyundai" | "kia" => d(12, 1),
        "lada" | "haval" | "chery" => d(9, 1),
        _ => Decimal::ONE,
    }
}

/// The discount coefficient of a KASKO deductible, if it is one of the options.
pub fn deductible_coefficient(deductible: Money) -> Option<Decimal> {
    DEDUCTIBLE_OPTIONS_RUB
        .iter()
        .find(|(roubles, _)| Money::new(Decimal::from(*roubles), Currency::RUB) == Ok(deductible))
        .map(|(_, coefficient)| *coefficient)
}

impl InsurerTariff {
    /// This insurer's offer for `terms`, or why it cannot make one.
    pub fn quote(&self, terms: &QuoteTerms) -> Result<Offer, TariffError> {
        if let Some(problem) = terms.driver.problem() {
            return Err(TariffError::Driver(problem));
        }
        if terms.vehicle.value.currency() != Currency::RUB {
            return Err(TariffError::Currency(terms.vehicle.value.currency()));
        }
        if terms.deductible.currency() != Currency::RUB {
            return Err(TariffError::Currency(terms.deductible.currency()));
        }
        let driver = &terms.driver;
        let (raw, coverage, deductible, commission_percent) = match terms.product {
            Product::Osago => {
                let kbm = bonus_malus_coefficient(driver.bonus_malus_class).ok_or_else(|| {
                    TariffError::Driver(format!(
                        "bonus-malus class {} is unknown",
                        driver.bonus_malus_class
                    ))
                })?;
                let factors = [
                    driver.region.territory_coefficient(),
                    kbm,
                    age_experience_coefficient(driver.age, driver.experience_years),
                    power_coefficient(terms.vehicle.power_hp),
                ];
                (
                    product(self.osago_base_rate, &factors)?,
                    Money::new(Decimal::from(OSAGO_COVERAGE_RUB), Currency::RUB)
                        .map_err(|e| TariffError::Vehicle(e.to_string()))?,
                    Money::zero(Currency::RUB),
                    self.osago_commission_percent,
                )
            }
            Product::Kasko => {
                let value = terms.vehicle.value;
                if !value.is_positive() {
                    return Err(TariffError::Vehicle("its value must be positive".into()));
                }
                let deductible_factor = deductible_coefficient(terms.deductible)
                    .ok_or(TariffError::Deductible(terms.deductible))?;
                let base = value
                    .amount()
                    .checked_mul(self.kasko_base_percent)
                    .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
                    .ok_or_else(|| TariffError::Vehicle("value too large".into()))?;
                let factors = [
                    car_age_coefficient(terms.quote_year.saturating_sub(terms.vehicle.year)),
                    kasko_driver_coefficient(driver),
                    brand_coefficient(&terms.vehicle.brand),
                    deductible_factor,
                ];
                (
                    product(base, &factors)?,
                    value,
                    terms.deductible,
                    self.kasko_commission_percent,
                )
            }
        };
        let premium = Money::new(round_to_kopecks(raw), Currency::RUB)
            .map_err(|e| TariffError::Vehicle(e.to_string()))?;
        Ok(Offer {
            insurer: self.id.to_owned(),
            premium,
            coverage,
            deductible,
            commission_percent,
        })
    }
}

fn product(base: Decimal, factors: &[Decimal]) -> Result<Decimal, TariffError> {
    factors.iter().try_fold(base, |acc, factor| {
        acc.checked_mul(*factor)
            .ok_or_else(|| TariffError::Vehicle("premium too large".into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rub(amount: &str) -> Money {
        Money::new(amount.parse().unwrap(), Currency::RUB).unwrap()
    }

    fn driver(age: u32, experience_years: u32, region: Region, class: u32) -> Driver {
        Driver {
            age,
            experience_years,
            region,
            bonus_malus_class: class,
        }
    }

    fn terms(product: Product, driver: Driver, deductible: &str) -> QuoteTerms {
        QuoteTerms {
            product,
            vehicle: VehicleFacts {
                brand: "Lada".into(),
                model: "Vesta".into(),
                year: 2024,
                value: rub("1500000"),
                power_hp: 106,
            },
            driver,
            deductible: rub(deductible),
            quote_year: 2026,
        }
    }

    fn sever() -> &'static InsurerTariff {
        partner("SEVER").unwrap()
    }

    #[test]
    fn the_osago_worked_example_costs_9720_roubles_at_sever() {
        let offer = sever()
            .quote(&terms(
                Product::Osago,
                driver(35, 10, Region::Moscow, 3),
                "0",
            ))
            .unwrap();
        assert_eq!(offer.premium, rub("9720.00"));
        assert_eq!(offer.coverage, rub("400000"));
        assert_eq!(offer.deductible, rub("0"));
        assert_eq!(offer.commission_percent, Decimal::from(10));
    }

    #[test]
    fn a_young_novice_with_a_bad_record_pays_every_surcharge() {
        // 5000 × 1.0 × 2.3 × 1.8 × 1.2 = 24840.00 at Ural, outside the big cities.
        let offer = partner("URAL")
            .unwrap()
            .quote(&terms(Product::Osago, driver(19, 1, Region::Other, 0), "0"))
            .unwrap();
        assert_eq!(offer.premium, rub("24840.00"));
    }

    #[test]
    fn the_best_bonus_malus_class_halves_the_premium() {
        // 4800 × 1.64 × 0.5 × 1.0 × 1.2 = 4723.20 at Volga, Saint Petersburg.
        let offer = partner("VOLGA")
            .unwrap()
            .quote(&terms(
                Product::Osago,
                driver(40, 20, Region::SaintPetersburg, 13),
                "0",
            ))
            .unwrap();
        assert_eq!(offer.premium, rub("4723.20"));
    }

    #[test]
    fn the_kasko_worked_example_costs_66825_roubles_at_sever() {
        let offer = sever()
            .quote(&terms(
                Product::Kasko,
                driver(35, 10, Region::Moscow, 3),
                "0",
            ))
            .unwrap();
        assert_eq!(offer.premium, rub("66825.00"));
        assert_eq!(offer.coverage, rub("1500000"));
        assert_eq!(offer.commission_percent, Decimal::from(15));
    }

    #[test]
    fn a_kasko_deductible_lowers_the_premium_and_is_recorded_in_the_offer() {
        // 1 500 000 × 5.5 % × 1.1 × 1.1 (7 years of driving) × 0.9 × 0.8 = 71 874.00 at Taiga.
        let offer = partner("TAIGA")
            .unwrap()
            .quote(&terms(
                Product::Kasko,
                driver(30, 7, Region::Kazan, 3),
                "30000",
            ))
            .unwrap();
        assert_eq!(offer.premium, rub("71874.00"));
        assert_eq!(offer.deductible, rub("30000"));
    }

    #[test]
    fn a_kasko_deductible_that_is_not_an_option_is_refused() {
        let refused = sever().quote(&terms(
            Product::Kasko,
            driver(35, 10, Region::Moscow, 3),
            "20000",
        ));
        assert_eq!(refused, Err(TariffError::Deductible(rub("20000"))));
    }

    #[test]
    fn impossible_drivers_are_refused() {
        for bad in [
            driver(17, 0, Region::Other, 3),
            driver(30, 15, Region::Other, 3),
            driver(30, 5, Region::Other, 14),
        ] {
            assert!(matches!(
                sever().quote(&terms(Product::Osago, bad, "0")),
                Err(TariffError::Driver(_))
            ));
        }
    }

    #[test]
    fn coefficients_follow_their_tables() {
        assert_eq!(power_coefficient(50), d(6, 1));
        assert_eq!(power_coefficient(151), d(16, 1));
        assert_eq!(age_experience_coefficient(22, 3), d(18, 1));
        assert_eq!(age_experience_coefficient(23, 3), d(17, 1));
        assert_eq!(age_experience_coefficient(22, 4), d(16, 1));
        assert_eq!(bonus_malus_coefficient(14), None);
        assert_eq!(car_age_coefficient(-1), Decimal::ONE);
        assert_eq!(car_age_coefficient(7), d(15, 1));
        assert_eq!(brand_coefficient(" KIA "), d(12, 1));
        assert_eq!(brand_coefficient("Volkswagen"), Decimal::ONE);
    }

    #[test]
    fn every_partner_keeps_osago_commission_within_the_legal_cap() {
        for tariff in PARTNERS {
            assert!(tariff.osago_commission_percent <= Decimal::from(10));
        }
    }
}
