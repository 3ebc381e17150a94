//! Customers, cars, orders, payments and refunds.

use chrono::Datelike;
use rust_decimal::Decimal;
use serde_json::json;

use super::super::plan::*;
use super::super::shadow::*;
use super::super::tariffs::{kopecks, minor_of};
use super::timeline::*;
use super::*;

impl Run<'_> {
    pub(super) async fn sale(&mut self, step: &Step, action: SaleStep) {
        let k = step.story;
        let stories = self.stories;
        let plan = &stories[k];
        let key = Self::key(step, "k");
        let kind = action.clone();
        match action {
            SaleStep::RegisterCustomer => {
                let customer = id(k, 1, 0);
                self.ok(
                    step,
                    &mutation(
                        "registerCustomer",
                        &[
                            ("input", "RegisterCustomerInput!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "input": { "id": customer, "fullName": format!("Customer {k}"),
                            "email": format!("c{k}@example.ru"), "phone": format!("+7916{:07}", k),
                            "address": "Moscow" }, "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::ChangeContactDetails => {
                let customer = self.customer_of(k);
                self.ok(
                    step,
                    &mutation("changeCustomerContactDetails", &[("id", "UUID!"), ("input", "ContactDetailsInput!"), ("idempotencyKey", "String")]),
                    json!({ "id": customer, "input": { "email": format!("moved{k}@example.ru"), "address": "Kazan" },
                            "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::StockVehicle => {
                let customer = self.customer_of(k);
                let vehicle = &plan.vehicle;
                let state = &mut self.states[k];
                state.customer = customer;
                state.vehicle = id(k, 2, 0);
                state.currency = if vehicle.yuan { "CNY" } else { "RUB" };
                state.list_price = vehicle.price_minor;
                state.mileage_km = vehicle.used_mileage_km.unwrap_or(0);
                // At most next year's model (the wall clock is not the scenario's year).
                state.year = vehicle.year.min(self.time.now().year() + 1);
                let input = json!({
                    "id": state.vehicle, "vin": format!("XTA{:014}", 1_000 + k), "brand": BRANDS[vehicle.brand],
                    "model": "Model", "year": state.year, "trim": "Base", "colour": "grey",
                    "mileageKm": state.mileage_km,
                    "condition": if vehicle.used_mileage_km.is_some() { "USED" } else { "NEW" },
                    "location": "Showroom", "listPrice": money(vehicle.price_minor, state.currency),
                });
                self.ok(
                    step,
                    &mutation(
                        "stockVehicle",
                        &[
                            ("input", "StockVehicleInput!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "input": input, "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::RepriceVehicle => {
                let price = plan.vehicle.repriced_minor.unwrap();
                let state = &mut self.states[k];
                state.list_price = price;
                let (vehicle, currency) = (state.vehicle.clone(), state.currency);
                self.ok(
                    step,
                    &mutation("repriceVehicle", &[("id", "UUID!"), ("price", "MoneyInput!"), ("idempotencyKey", "String")]),
                    json!({ "id": vehicle, "price": money(price, currency), "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::RelocateVehicle => {
                let vehicle = self.states[k].vehicle.clone();
                self.ok(
                    step,
                    &mutation(
                        "relocateVehicle",
                        &[
                            ("id", "UUID!"),
                            ("location", "String!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "id": vehicle, "location": "Lot 7", "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::WithdrawVehicle => {
                let vehicle = self.states[k].vehicle.clone();
                self.ok(
                    step,
                    &mutation(
                        "withdrawVehicle",
                        &[
                            ("id", "UUID!"),
                            ("reason", "String!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "id": vehicle, "reason": "hail damage", "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::DraftOrder | SaleStep::DraftRivalOrder => {
                let rival = matches!(kind, SaleStep::DraftRivalOrder);
                let state = &mut self.states[k];
                let order = id(k, 3, usize::from(rival));
                if !rival {
                    state.order = order.clone();
                    state.price = state.list_price;
                    state.total = state.list_price;
                }
                let (customer, vehicle) = (state.customer.clone(), state.vehicle.clone());
                self.ok(
                    step,
                    &mutation("draftOrder", &[("input", "DraftOrderInput!"), ("idempotencyKey", "String")]),
                    json!({ "input": { "id": order, "customerId": customer, "vehicleId": vehicle }, "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::ApplyDiscount(Discount::Code { percent, ended }) => {
                let state = &mut self.states[k];
                state.promotions += 1;
                let code = format!("STORY-{k}-{}", state.promotions);
                let off = minor_of(kopecks(
                    Decimal::new(state.price, 2) * Decimal::from(percent) / Decimal::ONE_HUNDRED,
                ));
                let (order, stacked) = (state.order.clone(), state.code_in_force);
                if !stacked {
                    state.total = state.price - off;
                    state.code_in_force = true;
                }
                self.ok(
                    step,
                    &mutation(
                        "createPromotion",
                        &[
                            ("input", "CreatePromotionInput!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "input": {
                        "code": code, "title": format!("Story {k}'s promotion"),
                        "discount": { "percent": percent.to_string() },
                        "validFrom": "2000-01-01", "validUntil": "2999-12-31",
                        "totalUses": 1, "usesPerCustomer": 1
                    }, "idempotencyKey": Self::key(step, "p") }),
                )
                .await;
                let apply = mutation(
                    "applyPromoCode",
                    &[
                        ("orderId", "UUID!"),
                        ("code", "String!"),
                        ("idempotencyKey", "String"),
                    ],
                );
                let variables = json!({ "orderId": order, "code": code, "idempotencyKey": key });
                if stacked {
                    self.refused(step, &apply, variables, "PROMO_CODE_ALREADY_APPLIED")
                        .await;
                } else {
                    self.ok(step, &apply, variables).await;
                }
                if ended {
                    self.ok(
                        step,
                        &mutation(
                            "endPromotion",
                            &[
                                ("code", "String!"),
                                ("reason", "String!"),
                                ("idempotencyKey", "String"),
                            ],
                        ),
                        json!({ "code": code, "reason": "the story's offer is over",
                                "idempotencyKey": Self::key(step, "e") }),
                    )
                    .await;
                }
            }
            SaleStep::ApplyDiscount(discount) if self.states[k].code_in_force => {
                // The desk's discount after a code's: refused, the code's price stands.
                let discount_input = match discount {
                    Discount::Percent(p) => json!({ "percent": p.to_string() }),
                    _ => json!({ "percent": "1" }),
                };
                let order = self.states[k].order.clone();
                self.refused(
                    step,
                    &mutation(
                        "applyOrderDiscount",
                        &[
                            ("id", "UUID!"),
                            ("discount", "DiscountInput!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "id": order, "discount": discount_input, "idempotencyKey": key }),
                    "PROMO_CODE_ALREADY_APPLIED",
                )
                .await;
            }
            SaleStep::ApplyDiscount(discount) => {
                let state = &mut self.states[k];
                let (discount_input, off) = match discount {
                    Discount::Percent(p) => (
                        json!({ "percent": p.to_string() }),
                        minor_of(kopecks(
                            Decimal::new(state.price, 2) * Decimal::from(p) / Decimal::ONE_HUNDRED,
                        )),
                    ),
                    Discount::Fixed(minor) => {
                        let minor = minor.min(state.price / 5).max(1);
                        (json!({ "amount": money(minor, state.currency) }), minor)
                    }
                    Discount::Code { .. } => unreachable!("handled above"),
                };
                state.total = state.price - off;
                let order = state.order.clone();
                self.ok(
                    step,
                    &mutation(
                        "applyOrderDiscount",
                        &[
                            ("id", "UUID!"),
                            ("discount", "DiscountInput!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "id": order, "discount": discount_input, "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::ConfirmOrder => {
                self.plan_amounts(k);
                let order = self.states[k].order.clone();
                self.ok(
                    step,
                    &mutation(
                        "confirmOrder",
                        &[("id", "UUID!"), ("idempotencyKey", "String")],
                    ),
                    json!({ "id": order, "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::ConfirmRivalOrder => {
                self.refused(
                    step,
                    &mutation(
                        "confirmOrder",
                        &[("id", "UUID!"), ("idempotencyKey", "String")],
                    ),
                    json!({ "id": id(k, 3, 1), "idempotencyKey": key }),
                    "VEHICLE_NOT_AVAILABLE",
                )
                .await;
            }
            SaleStep::CancelOrder | SaleStep::CancelRivalOrder => {
                let order = match kind {
                    SaleStep::CancelOrder => self.states[k].order.clone(),
                    _ => id(k, 3, 1),
                };
                self.ok(
                    step,
                    &mutation(
                        "cancelOrder",
                        &[
                            ("id", "UUID!"),
                            ("reason", "String!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "id": order, "reason": "changed mind", "idempotencyKey": key }),
                )
                .await;
            }
            SaleStep::Overpay => {
                let state = &self.states[k];
                let due = state.total - state.paid_total;
                let variables = json!({
                    "input": { "id": id(k, 4, 99), "orderId": state.order, "amount": money(due + 1, state.currency),
                               "method": "CASH" },
                    "idempotencyKey": key,
                });
                self.refused(
                    step,
                    &mutation(
                        "initiatePayment",
                        &[
                            ("input", "InitiatePaymentInput!"),
                            ("idempotencyKey", "String!"),
                        ],
                    ),
                    variables,
                    "PAYMENT_EXCEEDS_BALANCE",
                )
                .await;
            }
            SaleStep::HandOverTooEarly => {
                let order = self.states[k].order.clone();
                self.refused(
                    step,
                    &mutation(
                        "handOverOrder",
                        &[("id", "UUID!"), ("idempotencyKey", "String!")],
                    ),
                    json!({ "id": order, "idempotencyKey": key }),
                    "INVALID_ORDER_TRANSITION",
                )
                .await;
            }
            SaleStep::Pay(payment, n) => {
                let Some(amount) = self.states[k].parts.get(n).copied().filter(|a| *a > 0) else {
                    return;
                };
                self.pay(step, amount, payment.method, payment.mishap).await;
            }
            SaleStep::PayWithoutLoan => {
                let amount = self.states[k].financed;
                self.pay(step, amount, Method::BankTransfer, None).await;
            }
            SaleStep::PayRefundedAgain => {
                let amount = self.states[k].refunded;
                self.pay(step, amount, Method::Cash, None).await;
            }
            SaleStep::RefundDeposit => {
                let paid = self.states[k].completed[0].clone();
                self.refund(step, &paid.id, paid.amount).await;
            }
            SaleStep::RefundPart(refund) => {
                let state = &self.states[k];
                let payment = state.completed[refund.payment % state.completed.len()].clone();
                let left = payment.amount - payment.refunded;
                let amount = (left * i64::from(refund.percent) / 100).max(1);
                self.states[k].refunded = amount;
                self.refund(step, &payment.id, amount).await;
            }
            SaleStep::HandOver => {
                let state = &self.states[k];
                let (order, customer, currency) =
                    (state.order.clone(), state.customer.clone(), state.currency);
                let (price, total) = (state.price, state.total);
                assert_eq!(state.paid_total, total, "story {k}: the order is paid");
                self.ok(
                    step,
                    &mutation(
                        "handOverOrder",
                        &[("id", "UUID!"), ("idempotencyKey", "String!")],
                    ),
                    json!({ "id": order, "idempotencyKey": key }),
                )
                .await;
                let day = self.business_day();
                self.shadow.post(
                    "Order",
                    &order,
                    "OrderHandedOver",
                    day,
                    &customer,
                    currency,
                    |p| {
                        p.debit(CUSTOMER_ADVANCES, total, Some(&customer))
                            .debit(SALES_DISCOUNTS, price - total, None)
                            .credit(VEHICLE_SALES, price, None)
                    },
                );
            }
        }
    }

    /// Splits what the customer pays (the whole total, or what the loan leaves) into the planned
    /// parts, once the order's total is final.
    fn plan_amounts(&mut self, k: usize) {
        let stories = self.stories;
        let plan = &stories[k];
        let state = &mut self.states[k];
        let (up_front, shares): (i64, Vec<u32>) = match &plan.fate {
            Fate::Sold(sale) => {
                let financed = sale.loan.as_ref().map_or(0, |loan| {
                    // At least the documented minimum share of the price up front, rounded up.
                    let down = (state.total * i64::from(loan.down_percent) + 99) / 100;
                    state.total - down
                });
                state.financed = financed;
                (
                    state.total - financed,
                    sale.payments.iter().map(|p| p.share).collect(),
                )
            }
            Fate::Cancelled(cancel) => (
                state.total,
                cancel.deposit.iter().map(|p| p.share.min(500)).collect(),
            ),
            _ => (0, vec![]),
        };
        let parts: Vec<i64> = match &plan.fate {
            // A deposit is its share of the total, per mille.
            Fate::Cancelled(_) => shares
                .iter()
                .map(|s| (up_front * i64::from(*s) / 1000).max(1))
                .collect(),
            _ => {
                let sum: i64 = shares.iter().map(|s| i64::from(*s)).sum();
                let mut parts: Vec<i64> = shares
                    .iter()
                    .map(|s| up_front * i64::from(*s) / sum)
                    .collect();
                let rest = up_front - parts.iter().sum::<i64>();
                *parts.last_mut().unwrap() += rest;
                parts
            }
        };
        state.parts = parts;
    }

    /// One payment towards the story's order: perhaps an attempt that goes wrong, then one that
    /// completes.
    async fn pay(&mut self, step: &Step, amount: i64, method: Method, mishap: Option<Mishap>) {
        let k = step.story;
        if let Some(mishap) = mishap {
            let payment = self.next_payment_id(k);
            self.initiate(step, &payment, amount, method, "a").await;
            let (field, processing) = match mishap {
                Mishap::FailedPending => ("failPayment", false),
                Mishap::FailedProcessing => ("failPayment", true),
                Mishap::Cancelled => ("cancelPayment", false),
            };
            if processing {
                self.process(step, &payment, method, "a").await;
            }
            self.ok(
                step,
                &mutation(field, &[("id", "UUID!"), ("reason", "String!"), ("idempotencyKey", "String!")]),
                json!({ "id": payment, "reason": "declined by the bank", "idempotencyKey": Self::key(step, "a-end") }),
            )
            .await;
        }
        let payment = self.next_payment_id(k);
        self.initiate(step, &payment, amount, method, "b").await;
        self.process(step, &payment, method, "b").await;
        self.ok(
            step,
            &mutation(
                "completePayment",
                &[("id", "UUID!"), ("idempotencyKey", "String!")],
            ),
            json!({ "id": payment, "idempotencyKey": Self::key(step, "b-done") }),
        )
        .await;
        let day = self.business_day();
        let state = &mut self.states[k];
        state.paid_total += amount;
        state.completed.push(Paid {
            id: payment.clone(),
            amount,
            refunded: 0,
        });
        let (customer, currency) = (state.customer.clone(), state.currency);
        self.shadow.post(
            "Payment",
            &payment,
            "PaymentCompleted",
            day,
            &customer,
            currency,
            |p| {
                p.debit(CASH, amount, None)
                    .credit(CUSTOMER_ADVANCES, amount, Some(&customer))
            },
        );
    }

    fn next_payment_id(&mut self, k: usize) -> String {
        let state = &mut self.states[k];
        state.payments_made += 1;
        id(k, 4, state.payments_made)
    }

    async fn initiate(
        &mut self,
        step: &Step,
        payment: &str,
        amount: i64,
        method: Method,
        what: &str,
    ) {
        let state = &self.states[step.story];
        let mut input = json!({
            "id": payment, "orderId": state.order, "amount": money(amount, state.currency),
            "method": match method { Method::Card => "CARD", Method::BankTransfer => "BANK_TRANSFER", Method::Cash => "CASH" },
        });
        if matches!(method, Method::Card) {
            input["cardLast4"] = json!("4242");
        }
        self.ok(
            step,
            &mutation(
                "initiatePayment",
                &[
                    ("input", "InitiatePaymentInput!"),
                    ("idempotencyKey", "String!"),
                ],
            ),
            json!({ "input": input, "idempotencyKey": Self::key(step, &format!("{what}-init")) }),
        )
        .await;
    }

    /// Card and bank-transfer payments go through the gateway before they complete.
    async fn process(&mut self, step: &Step, payment: &str, method: Method, what: &str) {
        if matches!(method, Method::Cash) {
            return;
        }
        // Free text with a Luhn-valid run of 13 to 19 digits, dashes allowed between groups, is
        // refused as a card number, and the scenario's ids are nearly all decimal digits: the
        // gateway's id keeps the payment's groups apart with slashes.
        let gateway_id = format!("gw/{}", payment.replace('-', "/"));
        self.ok(
            step,
            &mutation(
                "startPaymentProcessing",
                &[
                    ("id", "UUID!"),
                    ("gatewayTransactionId", "String!"),
                    ("idempotencyKey", "String!"),
                ],
            ),
            json!({ "id": payment, "gatewayTransactionId": gateway_id,
                    "idempotencyKey": Self::key(step, &format!("{what}-gw")) }),
        )
        .await;
    }

    async fn refund(&mut self, step: &Step, payment: &str, amount: i64) {
        let k = step.story;
        let currency = self.states[k].currency;
        let refund_id = id(k, 9, step.seq);
        self.ok(
            step,
            &mutation("refundPayment", &[("input", "RefundPaymentInput!"), ("idempotencyKey", "String!")]),
            json!({ "input": { "paymentId": payment, "refundId": refund_id, "amount": money(amount, currency),
                    "reason": "goodwill" }, "idempotencyKey": Self::key(step, "refund") }),
        )
        .await;
        let day = self.business_day();
        let state = &mut self.states[k];
        state.paid_total -= amount;
        let paid = state
            .completed
            .iter_mut()
            .find(|p| p.id == payment)
            .unwrap();
        paid.refunded += amount;
        let customer = state.customer.clone();
        self.shadow.post(
            "Payment",
            payment,
            "PaymentRefunded",
            day,
            &customer,
            currency,
            |p| {
                p.debit(CUSTOMER_ADVANCES, amount, Some(&customer))
                    .credit(CASH, amount, None)
            },
        );
    }
}
