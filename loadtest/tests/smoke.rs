//! The smoke profile against the whole platform in this process: every journey runs for about
//! twenty seconds, and the run fails on any failed request or any inconsistency.

use std::time::Duration;

use shop_loadtest::{AdminLogin, Options, Profile, consistency};
use shop_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_profile_runs_without_errors_and_leaves_the_platform_consistent() {
    let app = TestApp::start().await;
    app.seed_products(1_000).await;
    // As `shop up` starts: zones to ship to, a welcome code, free shipping over a threshold.
    app.seed_pricing().await;
    let (email, password, totp_secret) = app.create_admin().await;
    let mut options = Options::new(app.base.clone(), Profile::smoke(), AdminLogin { email, password, totp_secret });
    options.hot_products = 50;
    options.settle = Duration::from_secs(30);
    let (report, shared) = shop_loadtest::run_keeping(options).await.expect("the load test runs");
    println!("{}", report.render());

    assert_eq!(report.total.errors, 0, "failed requests: {:?}", report.error_kinds);
    assert!(report.consistency.consistent(), "{:?}", report.consistency.problems);
    // Every journey ran, and orders went every way the saga goes.
    for step in [
        "category page",
        "product",
        "search filtered",
        "guest cart add",
        "sign in",
        "shipping methods",
        "choose shipping",
        "enter code",
        "checkout",
        "admin restock",
    ] {
        assert!(report.steps.iter().any(|l| l.step == step && l.requests > 0), "{step} never ran");
    }
    assert_eq!(shared.catalog.codes, ["WELCOME10"], "the demo's welcome code is entered");
    assert!(report.orders_completed > 0, "no order completed");
    assert!(report.consistency.orders.get("payment_failed").is_some_and(|n| *n > 0), "no declined payment");
    assert_eq!(report.consistency.confirmed, report.consistency.captured);
    assert!(report.consistency.skus_scanned >= 1_000, "the whole catalog's stock is read");

    // The check notices stock that changed behind the run's back.
    let sku = shared.catalog.hot.last().expect("hot products").sku.clone();
    let admin = app.admin_token().await;
    let adjusted = app
        .request(reqwest::Method::POST, &format!("/admin/v1/inventory/{sku}/adjust"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"delta": 7, "reason": "unrecorded"}))
        .send()
        .await
        .unwrap();
    assert!(adjusted.status().is_success());
    let again = consistency::check(&shared, Duration::from_secs(5)).await;
    assert!(
        again.problems.iter().any(|p| p.starts_with(&format!("{sku}: on hand"))),
        "an unrecorded change of stock is found: {:?}",
        again.problems
    );
}

/// The smoke profile against the fleet (`scripts/fleet-e2e` starts it and runs this): the five
/// service binaries over SQS behind nginx, on the catalog the fleet was seeded with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a fleet: scripts/fleet-e2e starts one and runs it"]
async fn fleet_the_smoke_profile_runs_without_errors_and_leaves_the_fleet_consistent() {
    assert!(std::env::var("SHOP_TEST_FLEET_URL").is_ok(), "SHOP_TEST_FLEET_URL names the fleet to load");
    let app = TestApp::start().await;
    let (email, password, totp_secret) = app.create_admin().await;
    let mut options = Options::new(app.base.clone(), Profile::smoke(), AdminLogin { email, password, totp_secret });
    // The fleet's seeded catalog is small.
    options.hot_products = 20;
    options.settle = Duration::from_secs(60);
    let report = shop_loadtest::run(options).await.expect("the load test runs");
    println!("{}", report.render());

    assert_eq!(report.total.errors, 0, "failed requests: {:?}", report.error_kinds);
    assert!(report.consistency.consistent(), "{:?}", report.consistency.problems);
    for step in ["category page", "search filtered", "guest cart add", "checkout", "admin restock"] {
        assert!(report.steps.iter().any(|l| l.step == step && l.requests > 0), "{step} never ran");
    }
    assert!(report.orders_completed > 0, "no order completed");
    // No count of captures against confirmed orders here: the fleet's catalog holds the other
    // tests' products, free ones among them (an order of nothing to pay is kept without a payment);
    // the check judges each order's payments against its total.
}
