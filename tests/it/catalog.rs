//! The catalog's statements are built from the filters given, and every main filter shape is served
//! by an index: the planner's own report (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL)
//! never shows a full scan of `catalog_vehicles`, and counts come from the projector's small
//! `catalog_counts` table (one row per brand, model, condition and status) whenever the filter is one
//! it keeps. On PostgreSQL the plans are taken with `enable_seqscan = off`
//! (`queries::vehicles::query_plans`): a handful of test rows would make a sequential scan the
//! cheapest plan for any table, so the question asked is whether an index *applies*; a `Seq Scan` on
//! `catalog_vehicles` under that setting means none does.

use queries::scalars::Decimal;
use queries::vehicles::{CatalogGrouping, Condition, QueryPlan, VehicleFilter, VehicleStatus};
use serde_json::json;

use crate::helpers::*;

fn brand(name: &str) -> Option<queries::input::Brand> {
    Some(queries::input::Brand::new(name).unwrap())
}

fn model(name: &str) -> Option<queries::input::Model> {
    Some(queries::input::Model::new(name).unwrap())
}

/// The main filter shapes, each with the indexes a page of it may be read by.
fn shapes() -> Vec<(&'static str, VehicleFilter, &'static [&'static str])> {
    let any = VehicleFilter::default;
    vec![
        ("no filter", any(), &["catalog_vehicles_arrival"]),
        (
            "status",
            VehicleFilter {
                status: Some(VehicleStatus::Available),
                ..any()
            },
            &["catalog_vehicles_status_arrival"],
        ),
        (
            "condition",
            VehicleFilter {
                condition: Some(Condition::Used),
                ..any()
            },
            &["catalog_vehicles_condition_arrival"],
        ),
        (
            "brand",
            VehicleFilter {
                brand: brand("LADA"),
                ..any()
            },
            &[
                "catalog_vehicles_brand_arrival",
                "catalog_vehicles_model_arrival",
            ],
        ),
        (
            "brand and model",
            VehicleFilter {
                brand: brand("Lada"),
                model: model("vesta"),
                ..any()
            },
            &["catalog_vehicles_model_arrival"],
        ),
        (
            "brand, model and status",
            VehicleFilter {
                brand: brand("Lada"),
                model: model("Vesta"),
                status: Some(VehicleStatus::Available),
                ..any()
            },
            &[
                "catalog_vehicles_model_arrival",
                "catalog_vehicles_status_arrival",
            ],
        ),
        (
            "years",
            VehicleFilter {
                year_from: Some(2020),
                year_to: Some(2023),
                ..any()
            },
            &["catalog_vehicles_year"],
        ),
        (
            "price range",
            VehicleFilter {
                price_from: Some(Decimal("1000000".parse().unwrap())),
                price_to: Some(Decimal("2000000".parse().unwrap())),
                ..any()
            },
            &["catalog_vehicles_price"],
        ),
        (
            "status and price",
            VehicleFilter {
                status: Some(VehicleStatus::Available),
                price_to: Some(Decimal("2000000".parse().unwrap())),
                ..any()
            },
            &["catalog_vehicles_price", "catalog_vehicles_status_arrival"],
        ),
    ]
}

/// Whether a plan line reads `catalog_vehicles` whole: SQLite's `SCAN catalog_vehicles` without an
/// index, PostgreSQL's `Seq Scan on catalog_vehicles`.
fn full_scan(line: &str) -> bool {
    (line.contains("SCAN catalog_vehicles") && !line.contains("INDEX"))
        || line.contains("Seq Scan on catalog_vehicles")
}

fn reads_vehicles(plan: &QueryPlan) -> bool {
    plan.sql.contains("FROM catalog_vehicles")
}

#[tokio::test]
async fn every_main_filter_shape_is_served_by_an_index_and_counts_never_scan_the_vehicles() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let pool = app.db.pool();
    for (shape, filter, page_indexes) in shapes() {
        let plans = queries::vehicles::query_plans(pool, &filter, CatalogGrouping::BrandAndModel)
            .await
            .unwrap();
        let countable = filter.year_from.is_none()
            && filter.year_to.is_none()
            && filter.price_from.is_none()
            && filter.price_to.is_none();
        let [count, first_page, next_page, grouped] = plans.as_slice() else {
            panic!("{shape}: four statements, got {plans:#?}");
        };
        for plan in &plans {
            assert!(
                !plan.plan.iter().any(|line| full_scan(line)),
                "{shape}: a full scan of the vehicles in {plan:#?}"
            );
        }
        for counting in [count, grouped] {
            assert_eq!(
                !reads_vehicles(counting),
                countable,
                "{shape}: counts come from catalog_counts exactly when it keeps the filter: {counting:#?}"
            );
            if reads_vehicles(counting) {
                let index = page_indexes[0];
                assert!(
                    counting.plan.iter().any(|line| line.contains(index)),
                    "{shape}: counted over {index}: {counting:#?}"
                );
            }
        }
        for page in [first_page, next_page] {
            assert!(
                page.plan
                    .iter()
                    .any(|line| page_indexes.iter().any(|index| line.contains(index))),
                "{shape}: a page is read by one of {page_indexes:?}: {page:#?}"
            );
        }
    }
    app.stop().await;
}

const COUNTS: &str = "query($filter: VehicleFilter) {
  vehicles(filter: $filter, first: 1) { totalCount }
  byModel: vehicleCounts(filter: $filter, groupBy: BRAND_AND_MODEL) { brand model count }
  byBrand: vehicleCounts(filter: $filter, groupBy: BRAND) { brand model count }
}";

#[tokio::test]
async fn counts_kept_by_the_projector_follow_every_status_change_and_match_case_insensitively() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let stock = [
        (
            "0193a4b0-0000-7000-8000-0000000ca001",
            "XTA210990Y2766501",
            "Vesta",
        ),
        (
            "0193a4b0-0000-7000-8000-0000000ca002",
            "XTA210990Y2766502",
            "Vesta",
        ),
        (
            "0193a4b0-0000-7000-8000-0000000ca003",
            "XTA212140K1234503",
            "Niva",
        ),
    ];
    for (id, vin, model) in stock {
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(id, vin, model, "1500000.00") }),
        )
        .await;
    }
    app.ok(
        "mutation($id: UUID!) { withdrawVehicle(id: $id, reason: \"hail damage\") { position } }",
        json!({ "id": stock[1].0 }),
    )
    .await;

    let available = app
        .ok(COUNTS, json!({ "filter": { "status": "AVAILABLE" } }))
        .await;
    assert_eq!(available["vehicles"]["totalCount"], 2);
    assert_eq!(
        available["byModel"],
        json!([
            { "brand": "Lada", "model": "Niva", "count": 1 },
            { "brand": "Lada", "model": "Vesta", "count": 1 },
        ])
    );
    assert_eq!(
        available["byBrand"],
        json!([{ "brand": "Lada", "model": null, "count": 2 }])
    );
    let withdrawn = app
        .ok(
            COUNTS,
            json!({ "filter": { "status": "WITHDRAWN", "brand": "lAdA", "model": "VESTA" } }),
        )
        .await;
    assert_eq!(withdrawn["vehicles"]["totalCount"], 1);
    assert_eq!(
        withdrawn["byModel"],
        json!([{ "brand": "Lada", "model": "Vesta", "count": 1 }])
    );
    let everything = app.ok(COUNTS, json!({ "filter": {} })).await;
    assert_eq!(everything["vehicles"]["totalCount"], 3);
    assert_eq!(
        everything["byModel"],
        json!([
            { "brand": "Lada", "model": "Niva", "count": 1 },
            { "brand": "Lada", "model": "Vesta", "count": 2 },
        ])
    );
    // Nothing sold: an empty group is not listed.
    let sold = app
        .ok(COUNTS, json!({ "filter": { "status": "SOLD" } }))
        .await;
    assert_eq!(sold["vehicles"]["totalCount"], 0);
    assert_eq!(sold["byBrand"], json!([]));
    // A range the counts table does not keep is counted over the vehicles, with the same answer.
    let priced = app
        .ok(
            COUNTS,
            json!({ "filter": { "status": "AVAILABLE", "priceTo": "1500000" } }),
        )
        .await;
    assert_eq!(priced["vehicles"]["totalCount"], 2);
    assert_eq!(priced["byBrand"], available["byBrand"]);
    app.stop().await;
}
