//! What a scenario is made of: stories, one per car, each with the customer who buys it (or does
//! not), its money, its financing, its insurance and its visits to the workshop; and the proptest
//! strategy that generates them.
//!
//! A plan is pure data chosen up front; amounts the dealership decides (a loan's schedule) are
//! learnt while the scenario runs, everything else follows from the plan.

use proptest::prelude::*;

/// The whole dealership's story over a few months.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub stories: Vec<Story>,
}

/// One car and the customer around it.
#[derive(Clone, Debug)]
pub struct Story {
    /// Day (from the scenario's first day) the story begins.
    pub start_day: u32,
    /// Minutes after 06:00 UTC at which its same-day steps begin, so stories interleave.
    pub stagger_minutes: u32,
    /// Its steps come late in the evening instead (from 20:30 UTC): past 21:00 UTC the Moscow
    /// business day is already the next one.
    pub late_evening: bool,
    /// A customer of an earlier story comes back (index into the earlier stories, modulo).
    pub returning_customer: Option<usize>,
    pub changes_contact_details: bool,
    pub vehicle: VehiclePlan,
    pub fate: Fate,
    /// One policy, or two (OSAGO and KASKO).
    pub insurance: Vec<InsurancePlan>,
    pub bookings: Vec<BookingPlan>,
    /// An account for the story's customer or for a member of staff, and what happens to it.
    pub account: Option<AccountPlan>,
    /// An API key for a partner insurer.
    pub partner_key: Option<PartnerKeyPlan>,
}

#[derive(Clone, Debug)]
pub struct VehiclePlan {
    /// CNY instead of RUB (insurance is sold in roubles only, so such a car is not insured).
    pub yuan: bool,
    pub price_minor: i64,
    pub brand: usize,
    pub year: i32,
    pub used_mileage_km: Option<u32>,
    /// A new list price before anyone orders it.
    pub repriced_minor: Option<i64>,
    pub relocated: bool,
}

pub const BRANDS: [&str; 8] = [
    "Lada", "Haval", "Kia", "Toyota", "Chery", "Skoda", "Hyundai", "Geely",
];

#[derive(Clone, Debug)]
pub enum Fate {
    /// Stocked and left on sale.
    Unsold,
    /// Taken off sale.
    Withdrawn,
    /// An order that is cancelled.
    Cancelled(CancelPlan),
    /// An order that is paid (and usually handed over).
    Sold(SalePlan),
}

#[derive(Clone, Debug)]
pub enum Discount {
    Percent(u32),
    /// Kopecks off (at most a fifth of the price).
    Fixed(i64),
    /// A promo code of its own promotion (created for the story) for this percentage; the
    /// promotion is ended afterwards when `ended`. Once a code's discount is in force, every
    /// later discount of the order is refused (codes do not stack).
    Code {
        percent: u32,
        ended: bool,
    },
}

#[derive(Clone, Debug)]
pub struct CancelPlan {
    pub discount: Option<Discount>,
    /// Confirmed (the car reserved) before the cancellation.
    pub confirmed: bool,
    /// A deposit paid and then refunded in full, so the confirmed order may be cancelled.
    pub deposit: Option<PaymentPlan>,
    /// The car is then withdrawn from sale.
    pub then_withdrawn: bool,
}

#[derive(Clone, Debug)]
pub struct SalePlan {
    /// Discounts applied in turn (a later one replaces the earlier).
    pub discounts: Vec<Discount>,
    pub loan: Option<LoanPlan>,
    /// How the part not financed is paid: shares (per mille, normalised) and how.
    pub payments: Vec<PaymentPlan>,
    /// After the order is paid: refund part of one payment (index; the loan's CREDIT payment when
    /// past the end), then perhaps pay it again.
    pub refund: Option<RefundPlan>,
    pub handed_over: bool,
    /// Another order is drafted for the same car while it is reserved: its confirmation is refused
    /// and it is cancelled.
    pub rival_order: bool,
    /// Expected refusals tried along the way: an overpayment, a handover before payment.
    pub refusals: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Method {
    Card,
    BankTransfer,
    Cash,
}

/// What goes wrong with a payment attempt before the one that succeeds.
#[derive(Clone, Copy, Debug)]
pub enum Mishap {
    FailedPending,
    FailedProcessing,
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct PaymentPlan {
    pub share: u32,
    pub method: Method,
    pub mishap: Option<Mishap>,
}

#[derive(Clone, Debug)]
pub struct RefundPlan {
    pub payment: usize,
    /// Per cent of what the payment still contributes (1..=100).
    pub percent: u32,
    pub paid_again: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoanType {
    CarLoan,
    Leasing,
    Instalment,
}

impl LoanType {
    pub fn graphql(self) -> &'static str {
        match self {
            LoanType::CarLoan => "CAR_LOAN",
            LoanType::Leasing => "LEASING",
            LoanType::Instalment => "INSTALMENT",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Decision {
    /// Approved by the credit policy (a good score, income to spare).
    Approved,
    /// Refused by the credit policy (a score below 580): the rest is paid by bank transfer.
    RefusedByPolicy,
    /// Rejected by hand after submission: the rest is paid by bank transfer.
    RejectedByStaff,
}

#[derive(Clone, Debug)]
pub struct LoanPlan {
    pub kind: LoanType,
    pub term_months: u32,
    /// The term is changed while the application is a draft.
    pub changed_term_months: Option<u32>,
    /// Per cent of the order's total paid up front (0 only for the instalment plan).
    pub down_percent: u32,
    pub differentiated: bool,
    pub credit_score: u32,
    pub decision: Decision,
    /// Instalments repaid on their due dates.
    pub on_time: u32,
    /// The next instalment is missed and arrears are assessed; then it is paid late (`false`), or
    /// the loan defaults (`true`) and nothing more happens.
    pub arrears: Option<bool>,
    pub ending: LoanEnding,
}

#[derive(Clone, Debug)]
pub enum LoanEnding {
    /// Nothing more: the loan stays active.
    Active,
    /// Part of the principal paid early (per cent of it, 1..=60), then perhaps the next instalment.
    PartialEarly {
        percent: u32,
        lower_payment: bool,
        then_next_instalment: bool,
    },
    /// The payoff, this many days into the current period.
    PaidOff { days_in: u32 },
    /// One repayment of everything outstanding.
    RepaidAtOnce,
}

#[derive(Clone, Debug)]
pub struct InsurancePlan {
    pub kasko: bool,
    pub insurer: usize,
    pub driver: super::tariffs::Driver,
    pub power_hp: u32,
    pub deductible: usize,
    /// Days after the issue day the cover starts (0 = today).
    pub start_delay_days: u32,
    pub premium_paid: bool,
    pub then: PolicyEnding,
    /// A premium of the wrong amount is tried first (refused).
    pub wrong_premium_first: bool,
}

#[derive(Clone, Debug)]
pub enum PolicyEnding {
    Kept,
    /// Cancelled this many days after the start (a negative number: before it starts).
    Cancelled {
        days_after_start: i32,
    },
    /// Claims, then perhaps a cancellation (no refund while claims exist) or the expiry.
    Claims {
        claims: Vec<ClaimPlan>,
        then_cancelled: bool,
        then_expired: bool,
    },
    Expired,
}

#[derive(Clone, Debug)]
pub struct ClaimPlan {
    /// Days after the start of cover of the incident.
    pub incident_day: u32,
    /// Per mille of what is left of the limit that is claimed (1..=300).
    pub claimed_per_mille: u32,
    pub outcome: ClaimOutcome,
}

#[derive(Clone, Debug)]
pub enum ClaimOutcome {
    LeftFiled,
    LeftUnderReview,
    Rejected,
    /// Approved for this per cent (1..=100) of the claim; paid or not yet.
    Approved {
        percent: u32,
        paid: bool,
    },
}

#[derive(Clone, Debug)]
pub struct BookingPlan {
    /// Days after the story's third day that the booking is made.
    pub booked_day: u32,
    /// The slot: days after booking (1..), start in half hours after 05:00 UTC (08:00 Moscow),
    /// length in half hours.
    pub slot_in_days: u32,
    pub slot_start_half_hours: u32,
    pub slot_half_hours: u32,
    pub repair: bool,
    /// Moved once to a slot this many days later (same half hours).
    pub rescheduled_by_days: Option<u32>,
    pub outcome: BookingOutcome,
    /// A second booking for the same mechanic and an overlapping slot is tried (refused).
    pub double_booked: bool,
}

#[derive(Clone, Debug)]
pub enum BookingOutcome {
    Scheduled,
    Started,
    Completed { cost_minor: i64 },
    Cancelled,
    NoShow,
}

/// The staff roles an account may be created with or granted (GraphQL names).
pub const STAFF_ROLES: [&str; 6] = [
    "SALES",
    "FINANCE",
    "INSURANCE",
    "SERVICE",
    "AUDITOR",
    "ANALYST",
];

#[derive(Clone, Debug)]
pub struct AccountPlan {
    /// The story's customer's own account (`CLIENT`), else a member of staff's.
    pub client: bool,
    /// The staff role it is created with (index into [`STAFF_ROLES`]).
    pub role: usize,
    /// Another staff role granted later (for a client's account: tried, and refused, since the
    /// roles do not mix).
    pub granted: Option<usize>,
    /// After the grant, the first role is revoked (staff only: the account keeps a role).
    pub revoked: bool,
    /// An admin sets a new password (the holder lost theirs).
    pub password_reset: bool,
    /// The holder signs in and changes the password.
    pub password_changed: bool,
    /// Wrong passwords until the account is locked out.
    pub locked_out: bool,
    pub disabled: bool,
}

#[derive(Clone, Debug)]
pub struct PartnerKeyPlan {
    pub insurer: usize,
    pub revoked: bool,
}

fn account() -> impl Strategy<Value = AccountPlan> {
    (
        proptest::bool::weighted(0.3),
        0usize..STAFF_ROLES.len(),
        proptest::option::weighted(0.5, 1usize..STAFF_ROLES.len()),
        (
            any::<bool>(),
            proptest::bool::weighted(0.4),
            proptest::bool::weighted(0.4),
            proptest::bool::weighted(0.3),
            proptest::bool::weighted(0.3),
        ),
    )
        .prop_map(
            |(client, role, granted, (revoked, reset, changed, locked_out, disabled))| {
                // A role other than the first.
                let granted = granted.map(|n| (role + n) % STAFF_ROLES.len());
                AccountPlan {
                    client,
                    role,
                    granted,
                    revoked: revoked && granted.is_some() && !client,
                    password_reset: reset,
                    password_changed: changed,
                    locked_out,
                    disabled,
                }
            },
        )
}

fn partner_key() -> impl Strategy<Value = PartnerKeyPlan> {
    (0usize..5, any::<bool>()).prop_map(|(insurer, revoked)| PartnerKeyPlan { insurer, revoked })
}

fn discount() -> impl Strategy<Value = Discount> {
    prop_oneof![
        (1u32..=30).prop_map(Discount::Percent),
        (1i64..=20_000_000).prop_map(Discount::Fixed),
        (1u32..=25, any::<bool>()).prop_map(|(percent, ended)| Discount::Code { percent, ended }),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Card),
        Just(Method::BankTransfer),
        Just(Method::Cash)
    ]
}

fn payment() -> impl Strategy<Value = PaymentPlan> {
    (
        1u32..=1000,
        method(),
        proptest::option::weighted(
            0.25,
            prop_oneof![
                Just(Mishap::FailedPending),
                Just(Mishap::FailedProcessing),
                Just(Mishap::Cancelled)
            ],
        ),
    )
        .prop_map(|(share, method, mishap)| PaymentPlan {
            share,
            method,
            mishap,
        })
}

fn loan() -> impl Strategy<Value = LoanPlan> {
    let kind = prop_oneof![
        3 => Just(LoanType::CarLoan),
        1 => Just(LoanType::Leasing),
        2 => Just(LoanType::Instalment),
    ];
    let ending = prop_oneof![
        1 => Just(LoanEnding::Active),
        3 => (1u32..=60, any::<bool>(), any::<bool>()).prop_map(|(percent, lower_payment, then_next_instalment)| {
            LoanEnding::PartialEarly { percent, lower_payment, then_next_instalment }
        }),
        3 => (0u32..=27).prop_map(|days_in| LoanEnding::PaidOff { days_in }),
        2 => Just(LoanEnding::RepaidAtOnce),
    ];
    let decision = prop_oneof![
        4 => Just(Decision::Approved),
        1 => Just(Decision::RefusedByPolicy),
        1 => Just(Decision::RejectedByStaff),
    ];
    (
        kind,
        (0u32..1000, proptest::option::weighted(0.5, 0u32..1000)),
        (0u32..=60, any::<bool>(), 0u32..1000),
        decision,
        (
            0u32..=4,
            proptest::option::weighted(0.4, any::<bool>()),
            ending,
        ),
    )
        .prop_map(
            |(
                kind,
                (term, changed),
                (down, differentiated, score),
                decision,
                (on_time, arrears, ending),
            )| {
                // Terms and down payments inside each type's limits (see loan::credit).
                let terms = match kind {
                    LoanType::CarLoan => (12, 60),
                    LoanType::Leasing => (12, 48),
                    LoanType::Instalment => (3, 12),
                };
                let pick_term = |n: u32| terms.0 + n % (terms.1 - terms.0 + 1);
                let down_percent = match kind {
                    LoanType::CarLoan => 15 + down % 46,
                    LoanType::Leasing => 20 + down % 41,
                    LoanType::Instalment => down % 51,
                };
                let credit_score = match (&decision, kind) {
                    (Decision::RefusedByPolicy, _) => 300 + score % 280,
                    (_, LoanType::Instalment) => 670 + score % 181,
                    _ => 580 + score % 271,
                };
                let term_months = pick_term(term);
                LoanPlan {
                    kind,
                    term_months,
                    changed_term_months: changed.map(pick_term).filter(|t| *t != term_months),
                    down_percent,
                    differentiated,
                    credit_score,
                    decision,
                    on_time,
                    arrears,
                    ending,
                }
            },
        )
}

fn sale() -> impl Strategy<Value = SalePlan> {
    (
        proptest::collection::vec(discount(), 0..=2),
        proptest::option::weighted(0.65, loan()),
        proptest::collection::vec(payment(), 1..=3),
        proptest::option::weighted(
            0.3,
            (0usize..4, 1u32..=100, proptest::bool::weighted(0.7)).prop_map(
                |(payment, percent, paid_again)| RefundPlan {
                    payment,
                    percent,
                    paid_again,
                },
            ),
        ),
        proptest::bool::weighted(0.9),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.25),
    )
        .prop_map(
            |(discounts, loan, payments, refund, handed_over, rival_order, refusals)| SalePlan {
                discounts,
                loan,
                payments,
                refund,
                handed_over,
                rival_order,
                refusals,
            },
        )
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        1 => Just(Fate::Unsold),
        1 => Just(Fate::Withdrawn),
        3 => (
            proptest::option::of(discount()),
            proptest::bool::weighted(0.75),
            proptest::option::of(payment()),
            any::<bool>()
        )
            .prop_map(|(discount, confirmed, deposit, then_withdrawn)| Fate::Cancelled(CancelPlan {
                discount,
                confirmed,
                deposit: deposit.filter(|_| confirmed),
                then_withdrawn,
            })),
        8 => sale().prop_map(Fate::Sold),
    ]
}

fn driver() -> impl Strategy<Value = super::tariffs::Driver> {
    (18u32..=75, 0u32..=40, 0usize..7, 0usize..14).prop_map(|(age, experience, region, class)| {
        super::tariffs::Driver {
            age,
            experience_years: experience.min(age - 16),
            region,
            bonus_malus_class: class,
        }
    })
}

fn claim() -> impl Strategy<Value = ClaimPlan> {
    (
        0u32..=200,
        1u32..=300,
        prop_oneof![
            1 => Just(ClaimOutcome::LeftFiled),
            1 => Just(ClaimOutcome::LeftUnderReview),
            2 => Just(ClaimOutcome::Rejected),
            4 => (1u32..=100, proptest::bool::weighted(0.75))
                .prop_map(|(percent, paid)| ClaimOutcome::Approved { percent, paid }),
        ],
    )
        .prop_map(|(incident_day, claimed_per_mille, outcome)| ClaimPlan {
            incident_day,
            claimed_per_mille,
            outcome,
        })
}

fn policy_ending() -> impl Strategy<Value = PolicyEnding> {
    prop_oneof![
        1 => Just(PolicyEnding::Kept),
        3 => (-30i32..=364).prop_map(|days_after_start| PolicyEnding::Cancelled { days_after_start }),
        4 => (proptest::collection::vec(claim(), 1..=2), proptest::bool::weighted(0.2), proptest::bool::weighted(0.3))
            .prop_map(|(mut claims, then_cancelled, then_expired)| {
                claims.sort_by_key(|c| c.incident_day);
                PolicyEnding::Claims { claims, then_cancelled, then_expired: then_expired && !then_cancelled }
            }),
        1 => Just(PolicyEnding::Expired),
    ]
}

fn insurance() -> impl Strategy<Value = InsurancePlan> {
    (
        (any::<bool>(), 0usize..5, driver(), 40u32..=300, 0usize..4),
        (
            prop_oneof![3 => Just(0u32), 1 => 1u32..=60],
            proptest::bool::weighted(0.9),
            policy_ending(),
            proptest::bool::weighted(0.1),
        ),
    )
        .prop_map(
            |(
                (kasko, insurer, driver, power_hp, deductible),
                (start_delay_days, premium_paid, then, wrong_premium_first),
            )| InsurancePlan {
                kasko,
                insurer,
                driver,
                power_hp,
                deductible,
                start_delay_days,
                premium_paid,
                then,
                wrong_premium_first,
            },
        )
}

fn booking() -> impl Strategy<Value = BookingPlan> {
    (
        (0u32..=20, 1u32..=14, 0u32..24, 1u32..=6, any::<bool>()),
        (
            proptest::option::weighted(0.2, 1u32..=10),
            prop_oneof![
                1 => Just(BookingOutcome::Scheduled),
                1 => Just(BookingOutcome::Started),
                5 => prop_oneof![1 => Just(0i64), 6 => 100_000i64..=5_000_000]
                    .prop_map(|cost_minor| BookingOutcome::Completed { cost_minor }),
                2 => Just(BookingOutcome::Cancelled),
                2 => Just(BookingOutcome::NoShow),
            ],
            proptest::bool::weighted(0.15),
        ),
    )
        .prop_map(
            |(
                (booked_day, slot_in_days, start, length, repair),
                (rescheduled_by_days, outcome, double_booked),
            )| BookingPlan {
                booked_day,
                slot_in_days,
                // 05:00 to 17:00 UTC is 08:00 to 20:00 in Moscow: the slot must end by 17:00.
                slot_start_half_hours: start.min(24 - length),
                slot_half_hours: length,
                repair,
                rescheduled_by_days,
                outcome,
                double_booked,
            },
        )
}

fn vehicle() -> impl Strategy<Value = VehiclePlan> {
    (
        proptest::bool::weighted(0.15),
        50_000_000i64..=600_000_000,
        0usize..BRANDS.len(),
        2018i32..=2031,
        proptest::option::weighted(0.4, 1_000u32..=150_000),
        proptest::option::weighted(0.25, 40_000_000i64..=600_000_000),
        proptest::bool::weighted(0.3),
    )
        .prop_map(|(yuan, price, brand, year, used, repriced, relocated)| {
            // A yuan price is about a twelfth of the rouble one.
            let scale = |minor: i64| if yuan { minor / 12 } else { minor };
            VehiclePlan {
                yuan,
                price_minor: scale(price),
                brand,
                year,
                used_mileage_km: used,
                repriced_minor: repriced.map(scale),
                relocated,
            }
        })
}

fn story() -> impl Strategy<Value = Story> {
    (
        (
            (0u32..=45, 0u32..=90, proptest::bool::weighted(0.2)),
            proptest::option::weighted(0.3, any::<usize>()),
            proptest::bool::weighted(0.2),
        ),
        vehicle(),
        fate(),
        prop_oneof![1 => Just(0usize), 2 => Just(1usize), 2 => Just(2usize)],
        proptest::collection::vec(insurance(), 2),
        proptest::collection::vec(booking(), 0..=2),
        (
            proptest::option::weighted(0.35, account()),
            proptest::option::weighted(0.2, partner_key()),
        ),
    )
        .prop_map(
            |(
                ((start_day, stagger, late), returning, contact),
                vehicle,
                fate,
                policies,
                mut insurance,
                bookings,
                (account, partner_key),
            )| Story {
                start_day,
                stagger_minutes: stagger,
                late_evening: late,
                returning_customer: returning,
                changes_contact_details: contact,
                insurance: {
                    // Insurance is sold in roubles only.
                    insurance.truncate(if vehicle.yuan { 0 } else { policies });
                    insurance
                },
                vehicle,
                fate,
                bookings,
                account,
                partner_key,
            },
        )
}

/// Scenarios of `stories` stories, ordered by the day they begin. The policies of a scenario take
/// the ten pairs of insurer and product in turn from a random start, so a story's two policies are
/// of both products and a few scenarios insure with every insurer both ways.
pub fn scenario(stories: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Scenario> {
    (proptest::collection::vec(story(), stories), 0usize..10).prop_map(|(mut stories, first)| {
        stories.sort_by_key(|story| story.start_day);
        for story in &mut stories {
            // A car off sale cannot be insured through the dealership.
            let withdrawn = match &story.fate {
                Fate::Withdrawn => true,
                Fate::Cancelled(cancel) => cancel.then_withdrawn,
                _ => false,
            };
            if withdrawn {
                story.insurance.clear();
            }
        }
        let pairs = stories
            .iter_mut()
            .flat_map(|story| story.insurance.iter_mut());
        for (n, policy) in pairs.enumerate() {
            let pair = (first + n) % 10;
            policy.insurer = pair / 2;
            policy.kasko = pair % 2 == 1;
        }
        Scenario { stories }
    })
}
