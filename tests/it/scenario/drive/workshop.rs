//! The workshop: bookings, their slots, and the services recorded.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::super::shadow::*;
use super::timeline::*;
use super::*;

#[derive(Clone, Debug)]
pub(super) struct BookingBook {
    id: String,
    mechanic: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Run<'_> {
    pub(super) async fn workshop(&mut self, step: &Step, action: WorkshopStep) {
        let k = step.story;
        let key = Self::key(step, "k");
        let kind = action.clone();
        match action {
            WorkshopStep::Book(n, booking) => {
                let slot_day =
                    self.now().date_naive() + TimeDelta::days(i64::from(booking.slot_in_days));
                let start = slot_day.and_hms_opt(5, 0, 0).unwrap().and_utc()
                    + TimeDelta::minutes(30 * i64::from(booking.slot_start_half_hours));
                let end = start + TimeDelta::minutes(30 * i64::from(booking.slot_half_hours));
                let book = BookingBook {
                    id: id(k, 8, n),
                    mechanic: format!("M-{k:03}-{n}"),
                    start,
                    end,
                };
                let state = &mut self.states[k];
                if state.bookings.len() <= n {
                    state.bookings.resize(n + 1, None);
                }
                state.bookings[n] = Some(book.clone());
                let input = json!({
                    "id": book.id, "customerId": state.customer, "vehicleId": state.vehicle, "mechanicId": book.mechanic,
                    "kind": if booking.repair { "REPAIR" } else { "MAINTENANCE" },
                    "start": start.to_rfc3339(), "end": end.to_rfc3339(), "notes": "first visit",
                });
                self.ok(
                    step,
                    &mutation(
                        "bookService",
                        &[("input", "BookServiceInput!"), ("idempotencyKey", "String")],
                    ),
                    json!({ "input": input, "idempotencyKey": key }),
                )
                .await;
            }
            WorkshopStep::DoubleBook(n) => {
                let state = &self.states[k];
                let book = state.bookings[n].clone().unwrap();
                let input = json!({
                    "id": id(k, 8, 90 + n), "customerId": state.customer, "vehicleId": state.vehicle,
                    "mechanicId": book.mechanic, "kind": "REPAIR",
                    "start": book.start.to_rfc3339(), "end": (book.start + TimeDelta::minutes(30)).to_rfc3339(),
                });
                self.refused(
                    step,
                    &mutation(
                        "bookService",
                        &[("input", "BookServiceInput!"), ("idempotencyKey", "String")],
                    ),
                    json!({ "input": input, "idempotencyKey": key }),
                    "MECHANIC_BUSY",
                )
                .await;
            }
            WorkshopStep::Reschedule(n, by_days) => {
                let book = self.states[k].bookings[n].as_mut().unwrap();
                book.start += TimeDelta::days(i64::from(by_days));
                book.end += TimeDelta::days(i64::from(by_days));
                let book = book.clone();
                self.ok(
                    step,
                    &mutation("rescheduleBooking", &[("id", "UUID!"), ("mechanicId", "String!"), ("start", "DateTime!"), ("end", "DateTime!"), ("idempotencyKey", "String")]),
                    json!({ "id": book.id, "mechanicId": book.mechanic, "start": book.start.to_rfc3339(),
                            "end": book.end.to_rfc3339(), "idempotencyKey": key }),
                )
                .await;
            }
            WorkshopStep::StartBooking(n)
            | WorkshopStep::CancelBooking(n)
            | WorkshopStep::MarkNoShow(n) => {
                let book = self.states[k].bookings[n].clone().unwrap();
                let (query, variables) = match kind {
                    WorkshopStep::StartBooking(_) => (
                        mutation(
                            "startBooking",
                            &[("id", "UUID!"), ("idempotencyKey", "String")],
                        ),
                        json!({ "id": book.id, "idempotencyKey": key }),
                    ),
                    WorkshopStep::MarkNoShow(_) => (
                        mutation(
                            "markBookingNoShow",
                            &[("id", "UUID!"), ("idempotencyKey", "String")],
                        ),
                        json!({ "id": book.id, "idempotencyKey": key }),
                    ),
                    _ => (
                        mutation(
                            "cancelBooking",
                            &[
                                ("id", "UUID!"),
                                ("reason", "String!"),
                                ("idempotencyKey", "String"),
                            ],
                        ),
                        json!({ "id": book.id, "reason": "customer is away", "idempotencyKey": key }),
                    ),
                };
                self.ok(step, &query, variables).await;
            }
            WorkshopStep::CompleteBooking(n, cost) => {
                let book = self.states[k].bookings[n].clone().unwrap();
                self.states[k].mileage_km += 500;
                let mileage = self.states[k].mileage_km;
                self.ok(
                    step,
                    &mutation("completeBooking", &[("id", "UUID!"), ("input", "CompleteBookingInput!"), ("idempotencyKey", "String!")]),
                    json!({ "id": book.id, "input": { "mileageKm": mileage, "work": ["oil change", "filters"],
                            "cost": money(cost, "RUB") }, "idempotencyKey": key }),
                )
                .await;
                let (day, customer) = (self.business_day(), self.states[k].customer.clone());
                self.shadow.post(
                    "Booking",
                    &book.id,
                    "BookingCompleted",
                    day,
                    &customer,
                    "RUB",
                    |p| {
                        p.debit(CUSTOMER_RECEIVABLES, cost, Some(&customer)).credit(
                            SERVICE_REVENUE,
                            cost,
                            None,
                        )
                    },
                );
            }
        }
    }
}
