//! The five partner insurers' published tariffs, written again here from their documentation
//! (`aggregates::policy::tariffs` module docs), so the scenario knows what a premium and a
//! commission must be without asking the application.

use rust_decimal::{Decimal, RoundingStrategy};

/// Kopeck rounding as the documentation names it: half away from zero.
pub fn kopecks(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Minor units of a decimal amount of whole kopecks.
pub fn minor_of(amount: Decimal) -> i64 {
    let minor = amount * Decimal::ONE_HUNDRED;
    assert_eq!(
        minor.fract(),
        Decimal::ZERO,
        "{amount} is not whole kopecks"
    );
    minor
        .trunc()
        .try_into()
        .expect("an amount within i64 kopecks")
}

pub struct Insurer {
    pub id: &'static str,
    /// OSAGO base rate, roubles.
    osago_base: Decimal,
    /// KASKO base, per cent of the vehicle's value.
    kasko_base_percent: Decimal,
    osago_commission_percent: Decimal,
    kasko_commission_percent: Decimal,
}

const fn d(units: i64, scale: u32) -> Decimal {
    Decimal::from_parts(units as u32, 0, 0, false, scale)
}

pub const INSURERS: [Insurer; 5] = [
    Insurer {
        id: "SEVER",
        osago_base: d(4500, 0),
        kasko_base_percent: d(45, 1),
        osago_commission_percent: d(10, 0),
        kasko_commission_percent: d(15, 0),
    },
    Insurer {
        id: "VOLGA",
        osago_base: d(4800, 0),
        kasko_base_percent: d(50, 1),
        osago_commission_percent: d(8, 0),
        kasko_commission_percent: d(18, 0),
    },
    Insurer {
        id: "URAL",
        osago_base: d(5000, 0),
        kasko_base_percent: d(42, 1),
        osago_commission_percent: d(9, 0),
        kasko_commission_percent: d(12, 0),
    },
    Insurer {
        id: "BALTIKA",
        osago_base: d(5200, 0),
        kasko_base_percent: d(48, 1),
        osago_commission_percent: d(10, 0),
        kasko_commission_percent: d(20, 0),
    },
    Insurer {
        id: "TAIGA",
        osago_base: d(4950, 0),
        kasko_base_percent: d(55, 1),
        osago_commission_percent: d(7, 0),
        kasko_commission_percent: d(16, 0),
    },
];

/// The GraphQL names of the regions and their OSAGO territory coefficient (KT).
pub const REGIONS: [(&str, Decimal); 7] = [
    ("MOSCOW", d(180, 2)),
    ("MOSCOW_REGION", d(156, 2)),
    ("SAINT_PETERSBURG", d(164, 2)),
    ("KAZAN", d(160, 2)),
    ("YEKATERINBURG", d(148, 2)),
    ("NOVOSIBIRSK", d(148, 2)),
    ("OTHER", d(100, 2)),
];

/// KBM by bonus-malus class 0..=13.
const BONUS_MALUS: [Decimal; 14] = [
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

/// KASKO deductibles on offer (roubles) and their coefficient.
pub const DEDUCTIBLES: [(i64, Decimal); 4] = [
    (0, d(10, 1)),
    (15_000, d(9, 1)),
    (30_000, d(8, 1)),
    (50_000, d(7, 1)),
];

/// OSAGO's fixed sum insured, roubles.
pub const OSAGO_COVERAGE_RUB: i64 = 400_000;

#[derive(Clone, Debug)]
pub struct Driver {
    pub age: u32,
    pub experience_years: u32,
    pub region: usize,
    pub bonus_malus_class: usize,
}

/// What the insurer quotes: premium and commission in kopecks, coverage and deductible in kopecks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    pub premium_minor: i64,
    pub commission_minor: i64,
    pub coverage_minor: i64,
    pub deductible_minor: i64,
}

impl Insurer {
    pub fn osago(&self, driver: &Driver, power_hp: u32) -> Quote {
        let kvs = match (driver.age <= 22, driver.experience_years <= 3) {
            (true, true) => d(18, 1),
            (false, true) => d(17, 1),
            (true, false) => d(16, 1),
            (false, false) => Decimal::ONE,
        };
        let km = match power_hp {
            0..=50 => d(6, 1),
            51..=70 => d(10, 1),
            71..=100 => d(11, 1),
            101..=120 => d(12, 1),
            121..=150 => d(14, 1),
            _ => d(16, 1),
        };
        let premium = kopecks(
            self.osago_base
                * REGIONS[driver.region].1
                * BONUS_MALUS[driver.bonus_malus_class]
                * kvs
                * km,
        );
        Quote {
            premium_minor: minor_of(premium),
            commission_minor: minor_of(kopecks(
                premium * self.osago_commission_percent / Decimal::ONE_HUNDRED,
            )),
            coverage_minor: OSAGO_COVERAGE_RUB * 100,
            deductible_minor: 0,
        }
    }

    /// `value_minor`: the vehicle's current list price; `car_age`: quote year − model year.
    pub fn kasko(
        &self,
        driver: &Driver,
        value_minor: i64,
        car_age: i32,
        brand: &str,
        deductible: usize,
    ) -> Quote {
        let age = match car_age {
            i32::MIN..=0 => Decimal::ONE,
            1..=3 => d(11, 1),
            4..=6 => d(125, 2),
            _ => d(15, 1),
        };
        let driver_factor = if driver.age < 25 || driver.experience_years < 3 {
            d(14, 1)
        } else if driver.experience_years < 10 {
            d(11, 1)
        } else {
            Decimal::ONE
        };
        let brand_factor = match brand.to_lowercase().as_str() {
            "toyota" | "lexus" | "land rover" | "hyundai" | "kia" => d(12, 1),
            "lada" | "haval" | "chery" => d(9, 1),
            _ => Decimal::ONE,
        };
        let value = Decimal::new(value_minor, 2);
        let premium = kopecks(
            value * self.kasko_base_percent / Decimal::ONE_HUNDRED
                * age
                * driver_factor
                * brand_factor
                * DEDUCTIBLES[deductible].1,
        );
        Quote {
            premium_minor: minor_of(premium),
            commission_minor: minor_of(kopecks(
                premium * self.kasko_commission_percent / Decimal::ONE_HUNDRED,
            )),
            coverage_minor: value_minor,
            deductible_minor: DEDUCTIBLES[deductible].0 * 100,
        }
    }
}

#[test]
fn the_documented_worked_examples_hold() {
    let driver = Driver {
        age: 35,
        experience_years: 10,
        region: 0,
        bonus_malus_class: 3,
    };
    // "4500 × 1.8 × 1.0 × 1.0 × 1.2 = 9720.00 RUB; commission 10 % = 972.00 RUB."
    let osago = INSURERS[0].osago(&driver, 106);
    assert_eq!(
        (osago.premium_minor, osago.commission_minor),
        (972_000, 97_200)
    );
    // "1 500 000 × 4.5 % × 1.1 × 1.0 × 0.9 × 1.0 = 66 825.00 RUB; commission 15 % = 10 023.75 RUB."
    let kasko = INSURERS[0].kasko(&driver, 150_000_000, 2, "Lada", 0);
    assert_eq!(
        (kasko.premium_minor, kasko.commission_minor),
        (6_682_500, 1_002_375)
    );
}
