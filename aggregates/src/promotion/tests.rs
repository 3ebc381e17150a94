//! Given/when/then tests of the promotion's rules.

use cqrs_es::test::TestFramework;

use super::*;

fn at() -> DateTime<Utc> {
    "2026-11-02T09:00:00Z".parse().unwrap()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn terms() -> PromotionTerms {
    PromotionTerms {
        code: "SPRING-26".into(),
        name: "Spring".into(),
        discount: Discount::Percentage {
            percent: Decimal::new(5, 0),
        },
        valid_from: date("2026-11-01"),
        valid_until: date("2026-11-30"),
        brands: vec!["Lada".into()],
        models: vec![],
        conditions: vec![Condition::New],
        total_uses: 2,
        uses_per_customer: 1,
    }
}

fn created() -> PromotionEvent {
    PromotionEvent::PromotionCreated {
        terms: terms(),
        created_at: at(),
    }
}

fn lada() -> EligibleVehicle {
    EligibleVehicle {
        brand: "LADA".into(),
        model: "Vesta".into(),
        condition: Condition::New,
    }
}

fn redeem(order: u128, customer: u128, on: &str) -> PromotionCommand {
    PromotionCommand::Redeem {
        order_id: Uuid::from_u128(order),
        customer_id: Uuid::from_u128(customer),
        vehicle: lada(),
        business_date: date(on),
        redeemed_at: at(),
    }
}

fn redeemed(order: u128, customer: u128, uses: u32) -> PromotionEvent {
    PromotionEvent::PromoCodeRedeemed {
        order_id: Uuid::from_u128(order),
        customer_id: Uuid::from_u128(customer),
        uses,
        redeemed_at: at(),
    }
}

#[test]
fn a_code_is_stored_trimmed_and_upper_cased_and_its_id_follows_from_it() {
    let mut lower = terms();
    lower.code = "  spring-26 ".into();
    TestFramework::<Promotion>::with(())
        .given_no_previous_events()
        .when(PromotionCommand::Create {
            terms: lower,
            created_at: at(),
        })
        .then_expect_events(vec![created()]);
    assert_eq!(
        promotion_id(&normalise_code(" spring-26").unwrap()),
        promotion_id("SPRING-26")
    );
    assert_eq!(normalise_code("ab"), None);
    assert_eq!(normalise_code("SPRING 26"), None);
}

#[test]
fn a_taken_code_is_refused_for_other_terms_and_a_retry_writes_nothing() {
    let mut other = terms();
    other.name = "Other".into();
    TestFramework::<Promotion>::with(())
        .given(vec![created()])
        .when(PromotionCommand::Create {
            terms: other,
            created_at: at(),
        })
        .then_expect_error(PromotionError::CodeTaken {
            code: "SPRING-26".into(),
        });
    let mut retry = terms();
    retry.code = "spring-26".into();
    TestFramework::<Promotion>::with(())
        .given(vec![created()])
        .when(PromotionCommand::Create {
            terms: retry,
            created_at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn impossible_terms_are_refused() {
    for broken in [
        PromotionTerms {
            valid_until: date("2026-10-01"),
            ..terms()
        },
        PromotionTerms {
            total_uses: 0,
            ..terms()
        },
        PromotionTerms {
            uses_per_customer: 3,
            ..terms()
        },
        PromotionTerms {
            discount: Discount::Percentage {
                percent: Decimal::new(101, 0),
            },
            ..terms()
        },
        PromotionTerms {
            name: " ".into(),
            ..terms()
        },
    ] {
        let refused = TestFramework::<Promotion>::with(())
            .given_no_previous_events()
            .when(PromotionCommand::Create {
                terms: broken,
                created_at: at(),
            })
            .inspect_result();
        assert!(matches!(refused, Err(PromotionError::InvalidTerms(_))));
    }
}

#[test]
fn the_last_use_goes_to_one_order_and_the_next_is_exhausted() {
    TestFramework::<Promotion>::with(())
        .given(vec![created(), redeemed(1, 10, 1)])
        .when(redeem(2, 20, "2026-11-30"))
        .then_expect_events(vec![redeemed(2, 20, 2)]);
    TestFramework::<Promotion>::with(())
        .given(vec![created(), redeemed(1, 10, 1), redeemed(2, 20, 2)])
        .when(redeem(3, 30, "2026-11-15"))
        .then_expect_error(PromotionError::Exhausted { total_uses: 2 });
}

#[test]
fn one_customer_holds_at_most_its_limit() {
    TestFramework::<Promotion>::with(())
        .given(vec![created(), redeemed(1, 10, 1)])
        .when(redeem(2, 10, "2026-11-15"))
        .then_expect_error(PromotionError::CustomerLimitReached {
            uses_per_customer: 1,
        });
}

#[test]
fn redeeming_again_for_the_same_order_is_a_no_op() {
    TestFramework::<Promotion>::with(())
        .given(vec![created(), redeemed(1, 10, 1), redeemed(2, 20, 2)])
        .when(redeem(1, 10, "2026-11-15"))
        .then_expect_events(vec![]);
}

#[test]
fn outside_the_window_or_after_the_end_the_code_is_expired() {
    for day in ["2026-10-31", "2026-12-01"] {
        TestFramework::<Promotion>::with(())
            .given(vec![created()])
            .when(redeem(1, 10, day))
            .then_expect_error(PromotionError::Expired { date: date(day) });
    }
    TestFramework::<Promotion>::with(())
        .given(vec![
            created(),
            PromotionEvent::PromotionEnded {
                reason: "budget spent".into(),
                ended_at: at(),
            },
        ])
        .when(redeem(1, 10, "2026-11-15"))
        .then_expect_error(PromotionError::Expired {
            date: date("2026-11-15"),
        });
}

#[test]
fn another_brand_or_a_used_car_is_not_eligible() {
    let used = PromotionCommand::Redeem {
        order_id: Uuid::from_u128(1),
        customer_id: Uuid::from_u128(10),
        vehicle: EligibleVehicle {
            condition: Condition::Used,
            ..lada()
        },
        business_date: date("2026-11-15"),
        redeemed_at: at(),
    };
    let kia = PromotionCommand::Redeem {
        order_id: Uuid::from_u128(1),
        customer_id: Uuid::from_u128(10),
        vehicle: EligibleVehicle {
            brand: "Kia".into(),
            ..lada()
        },
        business_date: date("2026-11-15"),
        redeemed_at: at(),
    };
    for command in [used, kia] {
        let refused = TestFramework::<Promotion>::with(())
            .given(vec![created()])
            .when(command)
            .inspect_result();
        assert!(matches!(refused, Err(PromotionError::NotEligible { .. })));
    }
}

#[test]
fn a_released_use_can_be_taken_again_and_releasing_twice_writes_nothing() {
    let released = PromotionEvent::PromoCodeReleased {
        order_id: Uuid::from_u128(2),
        customer_id: Uuid::from_u128(20),
        uses: 1,
        released_at: at(),
    };
    let release = PromotionCommand::Release {
        order_id: Uuid::from_u128(2),
        released_at: at(),
    };
    TestFramework::<Promotion>::with(())
        .given(vec![created(), redeemed(1, 10, 1), redeemed(2, 20, 2)])
        .when(release.clone())
        .then_expect_events(vec![released.clone()]);
    TestFramework::<Promotion>::with(())
        .given(vec![
            created(),
            redeemed(1, 10, 1),
            redeemed(2, 20, 2),
            released.clone(),
        ])
        .when(release)
        .then_expect_events(vec![]);
    TestFramework::<Promotion>::with(())
        .given(vec![
            created(),
            redeemed(1, 10, 1),
            redeemed(2, 20, 2),
            released,
        ])
        .when(redeem(3, 30, "2026-11-15"))
        .then_expect_events(vec![redeemed(3, 30, 2)]);
}

#[test]
fn an_unknown_code_is_not_found() {
    TestFramework::<Promotion>::with(())
        .given_no_previous_events()
        .when(redeem(1, 10, "2026-11-15"))
        .then_expect_error(PromotionError::NotFound);
}
