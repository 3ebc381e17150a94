//! The insurers a quote asks, each behind one trait, asked concurrently with a bounded wait each.
//!
//! What ships are built-in tariff models of five insurers: each prices with its published tariff
//! ([`aggregates::policy::tariffs`]: the formulas, coefficients and each insurer's base rates and
//! commission are tabled there), computed in-process by [`PartnerInsurer`], so it answers at once
//! and never fails or times out. No insurer is reached over the network today; one that is would
//! implement the same [`Insurer`] trait. [`InsurerPanel::quote`] asks all of them at once and waits
//! at most its timeout (default [`DEFAULT_INSURER_TIMEOUT`]) for each: an insurer that fails,
//! answers nonsense or is too slow is left out and named in `unanswered`; the others still make the
//! quote. Tests plug in slow and failing insurers to show that behaviour.

use std::sync::Arc;
use std::time::Duration;

use aggregates::money::Currency;
use aggregates::policy::tariffs::{InsurerTariff, Offer, PARTNERS, QuoteTerms};
use futures::future::{BoxFuture, join_all};

/// How long one insurer may take to answer before it is left out.
pub const DEFAULT_INSURER_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an insurer made no offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsurerError {
    /// The insurer will not cover this risk.
    #[error("declined: {0}")]
    Declined(String),
    /// The insurer could not be reached or failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// One partner insurer that prices quote requests.
pub trait Insurer: Send + Sync {
    /// Its stable id, e.g. `SEVER` (the offer's `insurer`).
    fn id(&self) -> &str;

    /// Its offer for `terms`. Boxed so insurers of different kinds can sit in one panel.
    fn quote<'a>(&'a self, terms: &'a QuoteTerms) -> BoxFuture<'a, Result<Offer, InsurerError>>;
}

/// A partner pricing with its published tariff.
pub struct PartnerInsurer {
    tariff: &'static InsurerTariff,
}

impl PartnerInsurer {
    pub fn new(tariff: &'static InsurerTariff) -> Self {
        Self { tariff }
    }
}

impl Insurer for PartnerInsurer {
    fn id(&self) -> &str {
        self.tariff.id
    }

    fn quote<'a>(&'a self, terms: &'a QuoteTerms) -> BoxFuture<'a, Result<Offer, InsurerError>> {
        Box::pin(async move {
            self.tariff
                .quote(terms)
                .map_err(|err| InsurerError::Declined(err.to_string()))
        })
    }
}

/// What the panel heard back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelAnswer {
    pub offers: Vec<Offer>,
    /// Insurers that failed, answered nonsense, or were too slow.
    pub unanswered: Vec<String>,
}

/// The insurers a quote asks, and how long each may take.
#[derive(Clone)]
pub struct InsurerPanel {
    insurers: Vec<Arc<dyn Insurer>>,
    timeout: Duration,
}

impl InsurerPanel {
    pub fn new(insurers: Vec<Arc<dyn Insurer>>, timeout: Duration) -> Self {
        Self { insurers, timeout }
    }

    /// The five partners with their published tariffs.
    pub fn partners(timeout: Duration) -> Self {
        Self::new(Self::partner_tariffs(), timeout)
    }

    /// The built-in tariff models of the five partners, one [`Insurer`] each.
    pub fn partner_tariffs() -> Vec<Arc<dyn Insurer>> {
        PARTNERS
            .iter()
            .map(|tariff| Arc::new(PartnerInsurer::new(tariff)) as Arc<dyn Insurer>)
            .collect()
    }

    /// Asks every insurer concurrently; each answer is awaited at most `timeout`.
    pub async fn quote(&self, terms: &QuoteTerms) -> PanelAnswer {
        let answers = join_all(self.insurers.iter().map(|insurer| async move {
            let answer = tokio::time::timeout(self.timeout, insurer.quote(terms)).await;
            (insurer.id().to_owned(), answer)
        }))
        .await;
        let mut offers = Vec::new();
        let mut unanswered = Vec::new();
        for (id, answer) in answers {
            match answer {
                Ok(Ok(offer)) if sane(&id, &offer) => offers.push(offer),
                Ok(Ok(offer)) => {
                    tracing::warn!(insurer = %id, ?offer, "insurer answered an unusable offer");
                    unanswered.push(id);
                }
                Ok(Err(err)) => {
                    tracing::info!(insurer = %id, error = %err, "insurer made no offer");
                    unanswered.push(id);
                }
                Err(_) => {
                    tracing::warn!(insurer = %id, timeout_ms = self.timeout.as_millis() as u64, "insurer did not answer in time");
                    unanswered.push(id);
                }
            }
        }
        PanelAnswer { offers, unanswered }
    }
}

/// An offer the dealership can sell: from the insurer that made it, in roubles, a positive premium
/// and coverage, a deductible below the coverage, and a commission between 0 and 100 %.
fn sane(id: &str, offer: &Offer) -> bool {
    let rub = |m: &aggregates::money::Money| m.currency() == Currency::RUB;
    offer.insurer == id
        && rub(&offer.premium)
        && rub(&offer.coverage)
        && rub(&offer.deductible)
        && offer.premium.is_positive()
        && offer.coverage.is_positive()
        && !offer.deductible.is_negative()
        && offer.deductible.amount() < offer.coverage.amount()
        && offer.commission_percent >= rust_decimal::Decimal::ZERO
        && offer.commission_percent <= rust_decimal::Decimal::ONE_HUNDRED
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregates::money::Money;
    use aggregates::policy::tariffs::{Driver, Product, Region, VehicleFacts};

    fn terms() -> QuoteTerms {
        QuoteTerms {
            product: Product::Osago,
            vehicle: VehicleFacts {
                brand: "Lada".into(),
                model: "Vesta".into(),
                year: 2024,
                value: Money::from_minor_units(150_000_000, Currency::RUB),
                power_hp: 106,
            },
            driver: Driver {
                age: 35,
                experience_years: 10,
                region: Region::Moscow,
                bonus_malus_class: 3,
            },
            deductible: Money::zero(Currency::RUB),
            quote_year: 2026,
        }
    }

    struct Failing;

    impl Insurer for Failing {
        fn id(&self) -> &str {
            "BROKEN"
        }

        fn quote<'a>(&'a self, _: &'a QuoteTerms) -> BoxFuture<'a, Result<Offer, InsurerError>> {
            Box::pin(async { Err(InsurerError::Unavailable("503".into())) })
        }
    }

    struct Hanging;

    impl Insurer for Hanging {
        fn id(&self) -> &str {
            "SLOW"
        }

        fn quote<'a>(&'a self, _: &'a QuoteTerms) -> BoxFuture<'a, Result<Offer, InsurerError>> {
            Box::pin(futures::future::pending())
        }
    }

    #[tokio::test]
    async fn all_five_partners_make_an_offer() {
        let answer = InsurerPanel::partners(DEFAULT_INSURER_TIMEOUT)
            .quote(&terms())
            .await;
        assert_eq!(answer.offers.len(), 5);
        assert!(answer.unanswered.is_empty());
        assert_eq!(answer.offers[0].insurer, "SEVER");
        assert_eq!(
            answer.offers[0].premium,
            Money::from_minor_units(972_000, Currency::RUB)
        );
    }

    #[tokio::test]
    async fn a_failing_and_a_hanging_insurer_are_left_out_and_named() {
        let mut insurers: Vec<Arc<dyn Insurer>> = vec![Arc::new(Failing), Arc::new(Hanging)];
        insurers.push(Arc::new(PartnerInsurer::new(&PARTNERS[0])));
        let started = std::time::Instant::now();
        let answer = InsurerPanel::new(insurers, Duration::from_millis(100))
            .quote(&terms())
            .await;
        assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");
        assert_eq!(answer.offers.len(), 1);
        assert_eq!(answer.unanswered, vec!["BROKEN", "SLOW"]);
    }
}
