//! The README's tour runs, block by block and exactly as written, against a fresh server.

use serde_json::json;

use crate::helpers::*;

/// The ```graphql blocks of the README, in order.
fn tour_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```graphql") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The `AUTOSALON_BOOTSTRAP_ADMIN='email:password'` the tour's shell block starts the server with.
fn tour_admin() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|line| line.starts_with("AUTOSALON_BOOTSTRAP_ADMIN="))
        .expect("the tour starts the server with a first admin");
    let value = line["AUTOSALON_BOOTSTRAP_ADMIN=".len()..]
        .split_once(" cargo")
        .expect("then runs the server")
        .0;
    value.trim_matches('\'').to_owned()
}

#[tokio::test]
async fn the_readme_tour_runs_as_written() {
    let blocks = tour_blocks();
    assert!(
        blocks.len() >= 7,
        "the tour has its blocks: {}",
        blocks.len()
    );
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.bootstrap_admin = Some(autosalon::config::BootstrapAdmin(tour_admin()));
    let app = spawn_with(settings).await;
    // The first block signs in, as anonymous; every later one runs with its access token.
    let signed_in = app.graphql_as(None, &blocks[0], json!({})).await;
    let token = signed_in["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("the tour's first block signs in: {signed_in:#}"))
        .to_owned();
    let mut answers = Vec::new();
    for block in &blocks[1..] {
        let response = app.graphql_as(Some(&token), block, json!({})).await;
        assert!(
            response.get("errors").is_none(),
            "README block failed:\n{block}\n{response:#}"
        );
        answers.push(response["data"].clone());
    }
    let sale = answers
        .iter()
        .find(|a| a.get("confirmOrder").is_some())
        .unwrap();
    assert_eq!(sale["confirmOrder"]["order"]["status"], "CONFIRMED");
    assert_eq!(
        sale["applyOrderDiscount"]["order"]["total"]["amount"],
        "1425000.00"
    );
    let catalog = answers
        .iter()
        .find(|a| a.get("vehicles").is_some())
        .unwrap();
    assert_eq!(catalog["vehicles"]["totalCount"], 1);
    let cancel = answers
        .iter()
        .find(|a| a.get("cancelOrder").is_some())
        .unwrap();
    assert_eq!(
        cancel["cancelOrder"]["order"]["vehicle"]["status"],
        "AVAILABLE"
    );
    let credit = answers
        .iter()
        .find(|a| a.get("handOverOrder").is_some())
        .unwrap();
    assert_eq!(credit["handOverOrder"]["order"]["status"], "COMPLETED");
    assert_eq!(
        credit["handOverOrder"]["order"]["vehicle"]["status"],
        "SOLD"
    );
    let insured = answers
        .iter()
        .find(|a| a.get("payPolicyPremium").is_some())
        .unwrap();
    assert_eq!(insured["payPolicyPremium"]["policy"]["status"], "ACTIVE");
    let audit = answers.iter().find(|a| a.get("events").is_some()).unwrap();
    assert!(audit["events"]["totalCount"].as_i64().unwrap() >= 8);
    app.stop().await;
}
