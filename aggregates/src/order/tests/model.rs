//! The order's reference model: its rules from the module docs, money in plain kopecks.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::*;
use super::{at, customer, payment, percent, refund_id, rub, vehicle};
use crate::test_support::{Model, assert_reached, reached, run_against_model, run_alone};

use OrderStatus::{Cancelled, Completed, Confirmed, Draft, NotDrafted, Paid};

/// `numerator / denominator` rounded to a whole number, halves away from zero: the kopeck rule,
/// worked out on integers.
fn round_half_away(numerator: i128, denominator: i128) -> i128 {
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    if 2 * remainder.abs() >= denominator.abs() {
        quotient + numerator.signum() * denominator.signum()
    } else {
        quotient
    }
}

/// `percent`% of `kopecks`, rounded to kopecks.
fn percent_of(kopecks: i64, percent: Decimal) -> i64 {
    let scale = 10i128.pow(percent.scale());
    let exact = round_half_away(i128::from(kopecks) * percent.mantissa(), 100 * scale);
    i64::try_from(exact).expect("a share of at most 100% fits")
}

#[derive(Clone, Debug, Default)]
struct OrderModel {
    status: OrderStatus,
    /// Customer, vehicle and price, from the draft.
    drafted: Option<(Uuid, Uuid, Money)>,
    discount: Option<Discount>,
    /// The promotion whose code gave the discount in force.
    promotion: Option<Uuid>,
    total_minor: i64,
    paid_minor: i64,
    /// What each recorded payment still contributes, kopecks.
    payments: BTreeMap<Uuid, i64>,
    /// Payment and amount of each recorded refund.
    refunds: BTreeMap<Uuid, (Uuid, Money)>,
}

impl OrderModel {
    fn currency(&self) -> Currency {
        self.drafted
            .map(|(_, _, price)| price.currency())
            .unwrap_or_default()
    }

    fn money(&self, minor: i64) -> Money {
        Money::from_minor_units(minor, self.currency())
    }

    fn refuse(&self, action: &'static str) -> OrderError {
        match self.status {
            NotDrafted => OrderError::NotDrafted,
            from => OrderError::InvalidTransition { from, action },
        }
    }

    /// A payment or refund amount: positive and in the order's currency.
    fn check_amount(&self, amount: Money) -> Result<(), OrderError> {
        if amount.minor_units() <= 0 {
            return Err(OrderError::NonPositiveAmount);
        }
        if amount.currency() != self.currency() {
            return Err(OrderError::CurrencyMismatch {
                expected: self.currency(),
                found: amount.currency(),
            });
        }
        Ok(())
    }

    fn discount(
        &mut self,
        discount: &Discount,
        promotion: Option<Uuid>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        if self.status != Draft {
            return Err(self.refuse("apply a discount"));
        }
        if self.discount.as_ref() == Some(discount) && self.promotion == promotion {
            return Ok(vec![]);
        }
        // No stacking: a code's discount, once in force, is the order's discount.
        if let Some(promotion_id) = self.promotion {
            return Err(OrderError::PromoCodeApplied { promotion_id });
        }
        let price = self.drafted.expect("a draft has a price").2;
        let off = match discount {
            Discount::Percentage { percent } => {
                if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                    return Err(OrderError::InvalidPercentage { percent: *percent });
                }
                percent_of(price.minor_units(), *percent)
            }
            Discount::Fixed { amount } => {
                if amount.minor_units() <= 0 {
                    return Err(OrderError::NonPositiveDiscount);
                }
                if amount.currency() != price.currency() {
                    return Err(OrderError::CurrencyMismatch {
                        expected: price.currency(),
                        found: amount.currency(),
                    });
                }
                if amount.minor_units() > price.minor_units() {
                    return Err(OrderError::DiscountExceedsPrice {
                        discount: *amount,
                        price,
                    });
                }
                amount.minor_units()
            }
        };
        self.discount = Some(discount.clone());
        self.promotion = promotion;
        self.total_minor = price.minor_units() - off;
        Ok(vec![OrderEvent::DiscountApplied {
            discount: discount.clone(),
            discount_amount: self.money(off),
            total: self.money(self.total_minor),
            promotion_id: promotion,
        }])
    }

    fn pay(
        &mut self,
        payment_id: Uuid,
        amount: Money,
        method: PaymentMethodKind,
        recorded_at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        if self.status != NotDrafted && self.payments.contains_key(&payment_id) {
            return Ok(vec![]);
        }
        if self.status != Confirmed {
            return Err(self.refuse("record a payment"));
        }
        self.check_amount(amount)?;
        let balance = self.total_minor - self.paid_minor;
        if amount.minor_units() > balance {
            return Err(OrderError::PaymentExceedsBalance {
                amount,
                balance: self.money(balance),
            });
        }
        self.paid_minor += amount.minor_units();
        self.payments.insert(payment_id, amount.minor_units());
        let mut events = vec![OrderEvent::OrderPaymentRecorded {
            payment_id,
            amount,
            method,
            paid_total: self.money(self.paid_minor),
            recorded_at,
        }];
        if self.paid_minor == self.total_minor {
            self.status = Paid;
            events.push(OrderEvent::OrderPaid {
                paid_at: recorded_at,
            });
        }
        Ok(events)
    }

    fn refund(
        &mut self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Money,
        recorded_at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        if let Some(recorded) = self.refunds.get(&refund_id) {
            if *recorded == (payment_id, amount) {
                return Ok(vec![]);
            }
            return Err(OrderError::RefundIdReused { refund_id });
        }
        if !matches!(self.status, Confirmed | Paid) {
            return Err(self.refuse("record a refund"));
        }
        let Some(&contributes) = self.payments.get(&payment_id) else {
            return Err(OrderError::PaymentNotRecorded { payment_id });
        };
        self.check_amount(amount)?;
        if amount.minor_units() > contributes {
            return Err(OrderError::RefundExceedsPaid {
                amount,
                recorded: self.money(contributes),
            });
        }
        self.paid_minor -= amount.minor_units();
        self.payments
            .insert(payment_id, contributes - amount.minor_units());
        self.refunds.insert(refund_id, (payment_id, amount));
        let mut events = vec![OrderEvent::OrderRefundRecorded {
            payment_id,
            refund_id,
            amount,
            paid_total: self.money(self.paid_minor),
            recorded_at,
        }];
        if self.status == Paid {
            self.status = Confirmed;
            events.push(OrderEvent::OrderBalanceReopened {
                reopened_at: recorded_at,
            });
        }
        Ok(events)
    }
}

/// A generated step; amounts that depend on the order are resolved against the model, like a
/// cashier who reads the balance off the screen.
#[derive(Clone, Debug)]
pub(super) enum Step {
    Do(OrderCommand),
    /// Record payment `n` for this much of the balance due.
    Pay(u128, Share),
    /// Record refund `r` of payment `n` for this much of what it still contributes.
    Refund(u128, u128, Share),
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Share {
    Fixed(Money),
    All,
    Half,
    OneKopeckMore,
}

impl Share {
    fn of(self, minor: i64, currency: Currency) -> Money {
        match self {
            Share::Fixed(amount) => amount,
            Share::All => Money::from_minor_units(minor, currency),
            Share::Half => Money::from_minor_units(minor / 2, currency),
            Share::OneKopeckMore => Money::from_minor_units(minor + 1, currency),
        }
    }
}

impl Model<Order> for OrderModel {
    type Step = Step;

    fn command(&self, step: &Step) -> OrderCommand {
        match step {
            Step::Do(command) => command.clone(),
            Step::Pay(n, share) => OrderCommand::RecordPayment {
                payment_id: payment(*n),
                amount: share.of(self.total_minor - self.paid_minor, self.currency()),
                method: PaymentMethodKind::Card,
                recorded_at: at("2024-03-04T10:00:00Z"),
            },
            Step::Refund(n, r, share) => OrderCommand::RecordRefund {
                payment_id: payment(*n),
                refund_id: refund_id(*r),
                amount: share.of(
                    self.payments.get(&payment(*n)).copied().unwrap_or(100),
                    self.currency(),
                ),
                recorded_at: at("2024-03-05T10:00:00Z"),
            },
        }
    }

    fn step(&mut self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        let event = match command {
            OrderCommand::Draft {
                customer_id,
                vehicle_id,
                price,
                drafted_at,
            } => {
                if self.status != NotDrafted {
                    return Err(OrderError::AlreadyDrafted);
                }
                if price.minor_units() <= 0 {
                    return Err(OrderError::NonPositivePrice);
                }
                self.status = Draft;
                self.drafted = Some((*customer_id, *vehicle_id, *price));
                self.total_minor = price.minor_units();
                OrderEvent::OrderDrafted {
                    customer_id: *customer_id,
                    vehicle_id: *vehicle_id,
                    price: *price,
                    drafted_at: *drafted_at,
                }
            }
            OrderCommand::ApplyDiscount {
                discount,
                promotion_id,
            } => return self.discount(discount, *promotion_id),
            OrderCommand::Confirm { confirmed_at } => {
                if self.status != Draft {
                    return Err(self.refuse("confirm"));
                }
                self.status = Confirmed;
                OrderEvent::OrderConfirmed {
                    confirmed_at: *confirmed_at,
                }
            }
            OrderCommand::Cancel {
                reason,
                cancelled_at,
            } => {
                match self.status {
                    NotDrafted | Completed | Cancelled => return Err(self.refuse("cancel")),
                    _ if self.paid_minor > 0 => {
                        return Err(OrderError::RefundsRequired {
                            paid_total: self.money(self.paid_minor),
                        });
                    }
                    // Unreachable: a paid order holds its total, which is above zero.
                    Paid => return Err(self.refuse("cancel")),
                    Draft | Confirmed => {}
                }
                if reason.trim().is_empty() {
                    return Err(OrderError::EmptyReason);
                }
                self.status = Cancelled;
                OrderEvent::OrderCancelled {
                    reason: reason.trim().to_owned(),
                    cancelled_at: *cancelled_at,
                }
            }
            OrderCommand::RecordPayment {
                payment_id,
                amount,
                method,
                recorded_at,
            } => return self.pay(*payment_id, *amount, *method, *recorded_at),
            OrderCommand::RecordRefund {
                payment_id,
                refund_id,
                amount,
                recorded_at,
            } => return self.refund(*payment_id, *refund_id, *amount, *recorded_at),
            OrderCommand::HandOver { handed_over_at } => {
                if self.status != Paid {
                    return Err(self.refuse("hand over"));
                }
                self.status = Completed;
                OrderEvent::OrderHandedOver {
                    handed_over_at: *handed_over_at,
                }
            }
        };
        Ok(vec![event])
    }

    fn check(&self, order: &Order) -> Result<(), TestCaseError> {
        let drafted = self.drafted;
        let money = |minor| drafted.map(|_| self.money(minor));
        prop_assert_eq!(order.status(), self.status);
        prop_assert_eq!(order.customer_id(), drafted.map(|d| d.0));
        prop_assert_eq!(order.vehicle_id(), drafted.map(|d| d.1));
        prop_assert_eq!(order.price(), drafted.map(|d| d.2));
        prop_assert_eq!(order.discount(), self.discount.as_ref());
        prop_assert_eq!(order.promotion_id(), self.promotion);
        prop_assert_eq!(order.total(), money(self.total_minor));
        prop_assert_eq!(order.paid_total(), money(self.paid_minor));
        prop_assert_eq!(
            order.balance_due(),
            money(self.total_minor - self.paid_minor)
        );
        for n in 0..4 {
            prop_assert_eq!(
                order.recorded_payment(payment(n)),
                self.payments
                    .get(&payment(n))
                    .map(|&minor| self.money(minor))
            );
        }
        for r in 0..5 {
            prop_assert_eq!(
                order.has_refund(refund_id(r)),
                self.refunds.contains_key(&refund_id(r))
            );
        }
        // The checks the command layer makes before money moves say what recording would.
        for (n, amount) in [(0, rub("0.01")), (3, rub("500000"))] {
            let recorded = self.clone().pay(
                payment(n),
                amount,
                PaymentMethodKind::Cash,
                at("2024-03-04T10:00:00Z"),
            );
            prop_assert_eq!(order.check_payment(payment(n), amount), recorded.map(drop));
        }
        for (n, r, amount) in [(0, 0, rub("0.01")), (1, 4, rub("500000"))] {
            let recorded =
                self.clone()
                    .refund(payment(n), refund_id(r), amount, at("2024-03-05T10:00:00Z"));
            prop_assert_eq!(
                order.check_refund(payment(n), refund_id(r), amount),
                recorded.map(drop)
            );
        }
        Ok(())
    }
}

fn draft_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => prop::sample::select(vec!["1500000", "1000000.20", "0.01"]).prop_map(rub),
        1 => prop::sample::select(vec!["0", "-1"]).prop_map(rub),
        1 => Just(Money::from_minor_units(2_000_000, Currency::USD)),
    ]
    .prop_map(|price| {
        Step::Do(OrderCommand::Draft {
            customer_id: customer(),
            vehicle_id: vehicle(),
            price,
            drafted_at: at("2024-03-01T10:00:00Z"),
        })
    })
}

fn share() -> impl Strategy<Value = Share> {
    prop_oneof![
        3 => Just(Share::All),
        3 => Just(Share::Half),
        1 => Just(Share::OneKopeckMore),
        2 => prop::sample::select(vec![rub("0.01"), rub("500000"), rub("0"), Money::from_minor_units(100, Currency::USD)])
            .prop_map(Share::Fixed),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let discount = prop_oneof![
        prop::sample::select(vec![
            "-5", "0", "10", "10.0", "12.5", "33.333", "0.005", "100", "100.01"
        ])
        .prop_map(percent),
        prop_oneof![
            prop::sample::select(vec![
                "0",
                "0.01",
                "50000",
                "1000000.20",
                "1500000",
                "1500000.01"
            ])
            .prop_map(rub),
            Just(Money::from_minor_units(10_000, Currency::USD)),
        ]
        .prop_map(|amount| Discount::Fixed { amount }),
    ];
    let command = |command: OrderCommand| Step::Do(command);
    prop_oneof![
        1 => draft_step(),
        2 => (discount, prop::option::of(0..2u128)).prop_map(move |(discount, promotion)| {
            command(OrderCommand::ApplyDiscount {
                discount,
                promotion_id: promotion.map(Uuid::from_u128),
            })
        }),
        3 => Just(command(OrderCommand::Confirm { confirmed_at: at("2024-03-02T10:00:00Z") })),
        1 => prop::sample::select(vec!["  changed mind ", " "]).prop_map(move |reason| command(OrderCommand::Cancel {
            reason: reason.to_owned(),
            cancelled_at: at("2024-03-03T10:00:00Z"),
        })),
        5 => (0..4u128, share()).prop_map(|(n, share)| Step::Pay(n, share)),
        4 => (0..4u128, 0..5u128, share()).prop_map(|(n, r, share)| Step::Refund(n, r, share)),
        2 => Just(command(OrderCommand::HandOver { handed_over_at: at("2024-03-06T10:00:00Z") })),
    ]
}

/// Most cases start with a draft, so the rest of the sequence has an order to work on.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    (
        prop::option::weighted(0.9, draft_step()),
        prop::collection::vec(step(), 0..40),
    )
        .prop_map(|(first, rest)| first.into_iter().chain(rest).collect())
}

proptest! {
    /// Every decision and everything the order shows (totals, balance, what each payment still
    /// contributes, the checks made before money moves) equal the model's. Guards (each checked by
    /// changing the aggregate so, and seeing this fail): a percentage discount rounded half to
    /// even, a discount computed from the discounted total instead of the price, a payment retry
    /// recorded twice, `OrderPaid` missing when a payment covers the total, a refund of a paid
    /// order that leaves it `Paid`, cancelling a confirmed order that still holds money, `apply`
    /// adding a refund instead of subtracting it, confirming a cancelled order.
    #[test]
    fn an_order_decides_and_shows_what_the_model_does(steps in steps()) {
        run_against_model::<Order, _>(OrderModel::default(), &steps)?;
    }

    /// The money always adds up, read from the aggregate alone: `total = price − discount ≥ 0`,
    /// `0 ≤ paid ≤ total`, the paid total is the payments recorded less the refunds recorded (read
    /// off the events, not the state), the order is paid exactly when the paid total is the
    /// (non-zero) total, and a cancelled order holds nothing. Guards: a discount computed from the
    /// discounted total, `OrderPaid` missing when a payment covers the total, a refund that leaves
    /// the order `Paid`, cancelling an order that holds money, `apply` adding a refund instead of
    /// subtracting it.
    #[test]
    fn an_orders_money_always_adds_up(steps in steps()) {
        let outcomes = run_alone::<Order, _>(OrderModel::default(), &steps);
        let (mut paid_in, mut paid_back, mut discount_off) = (0i64, 0i64, 0i64);
        for outcome in outcomes {
            for event in outcome.result.as_deref().unwrap_or_default() {
                match event {
                    OrderEvent::DiscountApplied { discount_amount, .. } => discount_off = discount_amount.minor_units(),
                    OrderEvent::OrderPaymentRecorded { amount, .. } => paid_in += amount.minor_units(),
                    OrderEvent::OrderRefundRecorded { amount, .. } => paid_back += amount.minor_units(),
                    _ => {}
                }
            }
            let order = outcome.after;
            let (Some(price), Some(total), Some(paid)) = (order.price(), order.total(), order.paid_total()) else {
                continue;
            };
            let (price, total, paid) = (price.minor_units(), total.minor_units(), paid.minor_units());
            prop_assert_eq!(total, price - discount_off);
            prop_assert!(0 <= total && total <= price, "total {} of price {}", total, price);
            prop_assert!(0 <= paid && paid <= total, "paid {} of total {}", paid, total);
            prop_assert_eq!(paid, paid_in - paid_back);
            match order.status() {
                Paid | Completed => prop_assert_eq!(paid, total),
                // A zero total (a 100% discount) can never be paid: it stays confirmed at 0 of 0.
                Confirmed => prop_assert!(paid < total || total == 0, "confirmed with {} of {} paid", paid, total),
                Cancelled | Draft => prop_assert_eq!(paid, 0),
                NotDrafted => prop_assert!(false, "an order with a price is drafted"),
            }
        }
    }
}

/// The generator reaches every event and every refusal, so the properties above compare them all.
#[test]
fn the_generated_commands_reach_every_event_and_refusal() {
    let seen = reached::<Order, _, _>(OrderModel::default(), steps(), 256);
    assert_reached(
        &seen,
        &[
            "OrderDrafted",
            "DiscountApplied",
            "OrderConfirmed",
            "OrderCancelled",
            "OrderPaymentRecorded",
            "OrderPaid",
            "OrderRefundRecorded",
            "OrderBalanceReopened",
            "OrderHandedOver",
            "NotDrafted",
            "AlreadyDrafted",
            "NonPositivePrice",
            "InvalidPercentage",
            "NonPositiveDiscount",
            "DiscountExceedsPrice",
            "CurrencyMismatch",
            "EmptyReason",
            "InvalidTransition",
            "NonPositiveAmount",
            "PaymentExceedsBalance",
            "PaymentNotRecorded",
            "RefundExceedsPaid",
            "RefundIdReused",
            "RefundsRequired",
            "PromoCodeApplied",
        ],
    );
}
