//! `policies`: insurance quotes with their offers, policies, and claims.
//!
//! Tables `insurance_quotes`, `insurance_offers`, `policies`, `insurance_claims` (see
//! docs/read-models.md). The commission columns of `policies` feed the monthly settlement with the
//! insurers: `SELECT insurer, sum(commission_minor) FROM policies WHERE issued_at >= '2026-11' AND
//! issued_at < '2026-12' GROUP BY insurer`.

use aggregates::money::Money;
use aggregates::policy::claims::ClaimStatus;
use aggregates::policy::tariffs::Region;
use aggregates::policy::{PolicyEvent, PolicyStatus};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Policies;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS insurance_quotes (
        quote_id                text    PRIMARY KEY,
        product                 text    NOT NULL,
        customer_id             text    NOT NULL,
        vehicle_id              text    NOT NULL,
        vehicle_vin             text    NOT NULL,
        vehicle_value           text    NOT NULL,
        vehicle_value_minor     integer NOT NULL,
        power_hp                integer NOT NULL,
        driver_age              integer NOT NULL,
        driver_experience_years integer NOT NULL,
        region                  text    NOT NULL,
        bonus_malus_class       integer NOT NULL,
        currency                text    NOT NULL,
        deductible              text    NOT NULL,
        deductible_minor        integer NOT NULL,
        unanswered_insurers     text    NOT NULL,
        requested_at            text    NOT NULL,
        updated_at              text    NOT NULL,
        last_position           integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS insurance_offers (
        quote_id           text    NOT NULL,
        insurer            text    NOT NULL,
        currency           text    NOT NULL,
        premium            text    NOT NULL,
        premium_minor      integer NOT NULL,
        coverage           text    NOT NULL,
        coverage_minor     integer NOT NULL,
        deductible         text    NOT NULL,
        deductible_minor   integer NOT NULL,
        commission_percent text    NOT NULL,
        PRIMARY KEY (quote_id, insurer)
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS policies (
        policy_id           text    PRIMARY KEY,
        policy_number       text    NOT NULL UNIQUE,
        product             text    NOT NULL,
        insurer             text    NOT NULL,
        customer_id         text    NOT NULL,
        vehicle_id          text    NOT NULL,
        vehicle_vin         text    NOT NULL,
        period_start        text    NOT NULL,
        period_end          text    NOT NULL,
        status              text    NOT NULL,
        currency            text    NOT NULL,
        coverage            text    NOT NULL,
        coverage_minor      integer NOT NULL,
        premium             text    NOT NULL,
        premium_minor       integer NOT NULL,
        deductible          text    NOT NULL,
        deductible_minor    integer NOT NULL,
        commission_percent  text    NOT NULL,
        commission          text    NOT NULL,
        commission_minor    integer NOT NULL,
        claims_paid         text    NOT NULL,
        claims_paid_minor   integer NOT NULL,
        refund              text,
        refund_minor        integer,
        cancellation_reason text,
        cancelled_on        text,
        expired_on          text,
        premium_paid_at     text,
        issued_at           text    NOT NULL,
        document            text    NOT NULL,
        signature           text    NOT NULL,
        key_id              text    NOT NULL,
        updated_at          text    NOT NULL,
        last_position       integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS policies_customer ON policies (customer_id)",
    "CREATE INDEX IF NOT EXISTS policies_vehicle ON policies (vehicle_id)",
    "CREATE INDEX IF NOT EXISTS policies_insurer_issued ON policies (insurer, issued_at)",
    "CREATE TABLE IF NOT EXISTS insurance_claims (
        policy_id        text    NOT NULL,
        claim_id         text    NOT NULL,
        incident_date    text    NOT NULL,
        description      text    NOT NULL,
        status           text    NOT NULL,
        currency         text    NOT NULL,
        claimed          text    NOT NULL,
        claimed_minor    integer NOT NULL,
        approved         text,
        approved_minor   integer,
        rejection_reason text,
        filed_at         text    NOT NULL,
        review_started_at text,
        decided_at       text,
        paid_at          text,
        updated_at       text    NOT NULL,
        last_position    integer NOT NULL,
        PRIMARY KEY (policy_id, claim_id)
    ) STRICT",
];

impl Projector for Policies {
    fn name(&self) -> &'static str {
        "policies"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "insurance_quotes",
            "insurance_offers",
            "policies",
            "insurance_claims",
        ]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Policy"])
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

/// The stable name of a region in read models and the API.
pub fn region_name(region: Region) -> &'static str {
    match region {
        Region::Moscow => "MOSCOW",
        Region::MoscowRegion => "MOSCOW_REGION",
        Region::SaintPetersburg => "SAINT_PETERSBURG",
        Region::Kazan => "KAZAN",
        Region::Yekaterinburg => "YEKATERINBURG",
        Region::Novosibirsk => "NOVOSIBIRSK",
        Region::Other => "OTHER",
    }
}

fn text(money: Money) -> String {
    money.amount().to_string()
}

async fn apply(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    if event.aggregate_type != "Policy" {
        return Ok(());
    }
    let id = event.aggregate_id.as_str();
    let at = crate::rfc3339(event.recorded_at);
    let rows = match event.decode::<PolicyEvent>()? {
        PolicyEvent::QuoteRequested {
            customer_id,
            vehicle_id,
            vehicle_vin,
            terms,
            offers,
            unanswered,
            requested_at,
        } => {
            let unanswered = serde_json::to_string(&unanswered)
                .map_err(|err| crate::inconsistent(event, err.to_string()))?;
            let done = sqlx::query(
                "INSERT INTO insurance_quotes (quote_id, product, customer_id, vehicle_id, vehicle_vin, vehicle_value,
                    vehicle_value_minor, power_hp, driver_age, driver_experience_years, region, bonus_malus_class,
                    currency, deductible, deductible_minor, unanswered_insurers, requested_at, updated_at, last_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            )
            .bind(id)
            .bind(terms.product.as_str())
            .bind(customer_id.to_string())
            .bind(vehicle_id.to_string())
            .bind(&vehicle_vin)
            .bind(text(terms.vehicle.value))
            .bind(terms.vehicle.value.minor_units())
            .bind(i64::from(terms.vehicle.power_hp))
            .bind(i64::from(terms.driver.age))
            .bind(i64::from(terms.driver.experience_years))
            .bind(region_name(terms.driver.region))
            .bind(i64::from(terms.driver.bonus_malus_class))
            .bind(terms.deductible.currency().code())
            .bind(text(terms.deductible))
            .bind(terms.deductible.minor_units())
            .bind(unanswered)
            .bind(crate::rfc3339(requested_at))
            .bind(&at)
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
            for offer in offers {
                sqlx::query(
                    "INSERT INTO insurance_offers (quote_id, insurer, currency, premium, premium_minor, coverage,
                        coverage_minor, deductible, deductible_minor, commission_percent)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id)
                .bind(&offer.insurer)
                .bind(offer.premium.currency().code())
                .bind(text(offer.premium))
                .bind(offer.premium.minor_units())
                .bind(text(offer.coverage))
                .bind(offer.coverage.minor_units())
                .bind(text(offer.deductible))
                .bind(offer.deductible.minor_units())
                .bind(offer.commission_percent.to_string())
                .execute(&mut *conn)
                .await?;
            }
            done.rows_affected()
        }
        PolicyEvent::PolicyIssued {
            policy_number,
            insurer,
            product,
            holder,
            vehicle_id,
            vehicle_vin,
            period_start,
            period_end,
            coverage,
            premium,
            deductible,
            commission_percent,
            commission,
            issued_at,
            document,
            signature,
            key_id,
        } => sqlx::query(
            "INSERT INTO policies (policy_id, policy_number, product, insurer, customer_id, vehicle_id, vehicle_vin,
                period_start, period_end, status, currency, coverage, coverage_minor, premium, premium_minor,
                deductible, deductible_minor, commission_percent, commission, commission_minor, claims_paid,
                claims_paid_minor, refund, refund_minor, cancellation_reason, cancelled_on, expired_on,
                premium_paid_at, issued_at, document, signature, key_id, updated_at, last_position)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                '0.00', 0, NULL, NULL, NULL, NULL, NULL, NULL, $21, $22, $23, $24, $25, $26)",
        )
        .bind(id)
        .bind(policy_number)
        .bind(product.as_str())
        .bind(insurer)
        .bind(holder.to_string())
        .bind(vehicle_id.to_string())
        .bind(vehicle_vin)
        .bind(period_start.to_string())
        .bind(period_end.to_string())
        .bind(PolicyStatus::Issued.as_str())
        .bind(premium.currency().code())
        .bind(text(coverage))
        .bind(coverage.minor_units())
        .bind(text(premium))
        .bind(premium.minor_units())
        .bind(text(deductible))
        .bind(deductible.minor_units())
        .bind(commission_percent.to_string())
        .bind(text(commission))
        .bind(commission.minor_units())
        .bind(crate::rfc3339(issued_at))
        .bind(document)
        .bind(signature)
        .bind(key_id)
        .bind(&at)
        .bind(event.position)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::PolicyPremiumPaid { paid_at, .. } => sqlx::query(
            "UPDATE policies SET status = $1, premium_paid_at = $2, updated_at = $3, last_position = $4
              WHERE policy_id = $5",
        )
        .bind(PolicyStatus::Active.as_str())
        .bind(crate::rfc3339(paid_at))
        .bind(&at)
        .bind(event.position)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::PolicyCancelled {
            reason,
            cancelled_on,
            refund,
            ..
        } => sqlx::query(
            "UPDATE policies SET status = $1, cancellation_reason = $2, cancelled_on = $3, refund = $4,
                refund_minor = $5, updated_at = $6, last_position = $7
              WHERE policy_id = $8",
        )
        .bind(PolicyStatus::Cancelled.as_str())
        .bind(reason)
        .bind(cancelled_on.to_string())
        .bind(text(refund))
        .bind(refund.minor_units())
        .bind(&at)
        .bind(event.position)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::PolicyExpired { expired_on } => sqlx::query(
            "UPDATE policies SET status = $1, expired_on = $2, updated_at = $3, last_position = $4
              WHERE policy_id = $5",
        )
        .bind(PolicyStatus::Expired.as_str())
        .bind(expired_on.to_string())
        .bind(&at)
        .bind(event.position)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::ClaimFiled {
            claim_id,
            incident_on,
            description,
            claimed,
            filed_at,
        } => sqlx::query(
            "INSERT INTO insurance_claims (policy_id, claim_id, incident_date, description, status, currency,
                claimed, claimed_minor, approved, approved_minor, rejection_reason, filed_at, review_started_at,
                decided_at, paid_at, updated_at, last_position)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, NULL, NULL, NULL, $10, $11)",
        )
        .bind(id)
        .bind(claim_id.to_string())
        .bind(incident_on.to_string())
        .bind(description)
        .bind(ClaimStatus::Filed.as_str())
        .bind(claimed.currency().code())
        .bind(text(claimed))
        .bind(claimed.minor_units())
        .bind(crate::rfc3339(filed_at))
        .bind(&at)
        .bind(event.position)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::ClaimReviewStarted { claim_id, at: when } => sqlx::query(
            "UPDATE insurance_claims SET status = $1, review_started_at = $2, updated_at = $3, last_position = $4
              WHERE policy_id = $5 AND claim_id = $6",
        )
        .bind(ClaimStatus::UnderReview.as_str())
        .bind(crate::rfc3339(when))
        .bind(&at)
        .bind(event.position)
        .bind(id)
        .bind(claim_id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::ClaimApproved {
            claim_id,
            amount,
            at: when,
        } => sqlx::query(
            "UPDATE insurance_claims SET status = $1, approved = $2, approved_minor = $3, decided_at = $4,
                updated_at = $5, last_position = $6
              WHERE policy_id = $7 AND claim_id = $8",
        )
        .bind(ClaimStatus::Approved.as_str())
        .bind(text(amount))
        .bind(amount.minor_units())
        .bind(crate::rfc3339(when))
        .bind(&at)
        .bind(event.position)
        .bind(id)
        .bind(claim_id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::ClaimRejected {
            claim_id,
            reason,
            at: when,
        } => sqlx::query(
            "UPDATE insurance_claims SET status = $1, rejection_reason = $2, decided_at = $3, updated_at = $4,
                last_position = $5
              WHERE policy_id = $6 AND claim_id = $7",
        )
        .bind(ClaimStatus::Rejected.as_str())
        .bind(reason)
        .bind(crate::rfc3339(when))
        .bind(&at)
        .bind(event.position)
        .bind(id)
        .bind(claim_id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PolicyEvent::ClaimPaid {
            claim_id,
            amount,
            at: when,
        } => {
            let claim = sqlx::query(
                "UPDATE insurance_claims SET status = $1, paid_at = $2, updated_at = $3, last_position = $4
                  WHERE policy_id = $5 AND claim_id = $6",
            )
            .bind(ClaimStatus::Paid.as_str())
            .bind(crate::rfc3339(when))
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .bind(claim_id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            crate::expect_one_row(event, claim)?;
            // Kopecks add exactly; the decimal text is derived from them here, as every other money
            // text is (SQL has no number formatting both backends share).
            let paid_before: Option<i64> =
                sqlx::query_scalar("SELECT claims_paid_minor FROM policies WHERE policy_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            match paid_before {
                // No policy row: reported below as an update that found nothing.
                None => 0,
                Some(paid_before) => {
                    let paid = Money::from_minor_units(
                        paid_before + amount.minor_units(),
                        amount.currency(),
                    );
                    sqlx::query(
                        "UPDATE policies SET claims_paid_minor = $1, claims_paid = $2,
                            updated_at = $3, last_position = $4
                          WHERE policy_id = $5",
                    )
                    .bind(paid.minor_units())
                    .bind(text(paid))
                    .bind(&at)
                    .bind(event.position)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                }
            }
        }
    };
    crate::expect_one_row(event, rows)
}
