//! T+1 reconciliation over two real providers' fakes (Polygon, then iTick, in configured
//! order) with planted differences: `finql reconcile` finds exactly them (no false positive on
//! equal data, nor on a difference within the tolerance), writes the report a server serves to
//! tenant admins (`reconciliation(date:)`), says which source failed, and the daily schedule
//! runs once across replicas.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, PATIENCE, error_code, poll, shared_db::SharedDatabase},
    sources::{
        itick::fake_rest::{FakeItick, TOKEN},
        polygon::fake_rest::{FakePolygon, KEY},
    },
};

/// A Monday on which the fakes hold only the bars a test plants.
fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 11, 3).unwrap()
}

/// Both fakes, with the day's bars planted: AAPL equal; JPM's close 40 bps apart (within the
/// default 50); MSFT's high and close 1% apart; NVDA at Polygon only. Every other instrument
/// has no bar at either.
async fn planted() -> (FakePolygon, FakeItick) {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let day = monday();
    polygon.plant_day("AAPL", day, ["100", "101", "99", "100.5", "1000"]);
    itick.plant_day("AAPL", day, ["100", "101", "99", "100.5", "1000"]);
    polygon.plant_day("JPM", day, ["250", "252", "249", "250", "300"]);
    itick.plant_day("JPM", day, ["250", "252", "249", "251", "300"]);
    polygon.plant_day("MSFT", day, ["200", "202", "198", "201", "500"]);
    itick.plant_day("MSFT", day, ["200", "204.02", "198", "203.01", "500"]);
    polygon.plant_day("NVDA", day, ["50", "51", "49", "50.5", "800"]);
    (polygon, itick)
}

/// A database, with both fakes as the configured sources (Polygon first), for servers and
/// the binary alike.
async fn shared(backend: Backend, polygon: &FakePolygon, itick: &FakeItick) -> Option<SharedDatabase> {
    let mut db = SharedDatabase::new(backend).await?;
    let vars = [
        ("FINQL_MARKET_SOURCE", "polygon,itick".to_owned()),
        ("POLYGON_BASE_URL", polygon.base_url()),
        ("POLYGON_API_KEY", KEY.to_owned()),
        ("POLYGON_MAX_RETRIES", "0".to_owned()),
        ("ITICK_BASE_URL", itick.base_url()),
        ("ITICK_TOKEN", TOKEN.to_owned()),
        ("ITICK_MAX_RETRIES", "0".to_owned()),
    ];
    db.vars.extend(vars.map(|(k, v)| (k.to_owned(), v)));
    Some(db)
}

/// `finql reconcile --date <day> --market US --format json`, parsed.
async fn reconcile_json(db: &SharedDatabase, day: &str) -> Value {
    let output = db.finql("reconcile", &["--date", day, "--market", "us", "--format", "json"]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

crate::each_backend!(planted_differences_are_found_exactly);

async fn planted_differences_are_found_exactly(backend: Backend) {
    let (polygon, itick) = planted().await;
    let Some(db) = shared(backend, &polygon, &itick).await else { return };
    let report = reconcile_json(&db, "2025-11-03").await;
    assert_eq!(report["sources"], json!(["polygon", "itick"]));
    assert_eq!(report["toleranceBps"], 50);
    assert_eq!((report["matched"].clone(), report["different"].clone()), (json!(2), json!(1)), "{report:#}");
    assert_eq!((report["missing"].clone(), report["unavailable"].clone()), (json!(1), json!(0)), "{report:#}");
    let us_instruments = report["instruments"].as_u64().unwrap();
    assert!(us_instruments > 50, "every US instrument of the catalog: {us_instruments}");
    // Only what differs is listed: the rest matched, or neither source had a bar.
    let item = |field: &str, value: &str, reference: &str, bps: Option<&str>| {
        json!({ "field": field, "source": "itick", "value": value, "reference": "polygon",
                "referenceValue": reference, "bps": bps })
    };
    assert_eq!(
        report["items"],
        json!([
            { "symbol": "MSFT.US", "verdict": "DIFFERENT", "differences": [
                item("high", "204.02", "202", Some("100.00")),
                item("close", "203.01", "201", Some("100.00")),
            ] },
            { "symbol": "NVDA.US", "verdict": "MISSING", "differences": [
                { "field": "bar", "source": "itick", "value": null, "reference": "polygon",
                  "referenceValue": "50.5", "bps": null },
            ] },
        ]),
        "{report:#}"
    );

    // A corporate action one source has and the other not: Polygon's 7:1 split of AAPL in
    // 2014 is not in the iTick fake (which has AAPL's 2020 split, as Polygon does: equal).
    let report = reconcile_json(&db, "2014-06-09").await;
    assert_eq!(
        report["items"],
        json!([{ "symbol": "AAPL.US", "verdict": "DIFFERENT", "differences": [
            { "field": "split", "source": "itick", "value": null, "reference": "polygon",
              "referenceValue": "7:1", "bps": null },
        ] }]),
        "{report:#}"
    );
    let report = reconcile_json(&db, "2020-08-31").await;
    assert_eq!(report["items"], json!([]), "AAPL's 4:1 at both is no difference: {report:#}");

    // CSV: a line per difference, then the summary.
    let output = db.finql("reconcile", &["--date", "2025-11-03", "--market", "US"]).await;
    let csv = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "symbol,verdict,field,source,value,reference,reference_value,bps");
    assert_eq!(lines[1], "MSFT.US,DIFFERENT,high,itick,204.02,polygon,202,100.00");
    assert_eq!(lines[3], "NVDA.US,MISSING,bar,itick,,polygon,50.5,");
    assert!(lines[4].contains("2 matched, 1 different, 1 missing, 0 unavailable"), "{csv}");

    // The report, served to tenant admins.
    let app = db.spawn(backend, &[]).await;
    let admin = app.tenant_key("ops", "pro", "market,admin").await;
    let query = r#"query($d: Date!, $m: String) { reconciliation(date: $d, market: $m) {
        date market sources toleranceBps instruments matched different missing unavailable
        items(verdicts: [DIFFERENT, MISSING], first: 1) {
            edges { cursor node { symbol verdict differences { field source value reference referenceValue bps } } }
            pageInfo { hasNextPage endCursor } } } }"#;
    let (_, _, body) = app.gql_key(&admin, query, json!({ "d": "2025-11-03", "m": "US" })).await;
    let run = &body["data"]["reconciliation"];
    assert_eq!((run["date"].clone(), run["market"].clone()), (json!("2025-11-03"), json!("US")), "{body}");
    assert_eq!(run["instruments"], us_instruments);
    let edges = &run["items"]["edges"];
    assert_eq!(edges[0]["node"]["symbol"], "MSFT.US", "{body}");
    assert_eq!(edges[0]["node"]["differences"][1]["bps"], "100.00");
    assert_eq!(run["items"]["pageInfo"], json!({ "hasNextPage": true, "endCursor": "MSFT.US" }));
    let (_, _, body) = app.gql_key(&admin, query, json!({ "d": "2025-11-04", "m": "US" })).await;
    assert_eq!(body["data"]["reconciliation"], Value::Null, "no run that day: {body}");
    let (_, _, body) = app.gql_key(&admin, query, json!({ "d": "2025-11-03", "m": "MARS" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let reader = app.tenant_key("ops", "pro", "market").await;
    let (_, _, body) = app.gql_key(&reader, query, json!({ "d": "2025-11-03" })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "tenant admins only: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_makes_its_instruments_unavailable_not_different() {
    let (polygon, itick) = planted().await;
    let Some(db) = shared(Backend::Sqlite, &polygon, &itick).await else { return };
    polygon.fail_next(100_000, 503);
    let report = reconcile_json(&db, "2025-11-03").await;
    assert_eq!(report["unavailable"], report["instruments"], "{report:#}");
    assert_eq!((report["different"].clone(), report["missing"].clone()), (json!(0), json!(0)));
    let aapl = report["items"].as_array().unwrap().iter().find(|i| i["symbol"] == "AAPL.US").unwrap();
    assert_eq!(aapl["verdict"], "UNAVAILABLE");
    let why = aapl["differences"][0]["value"].as_str().unwrap();
    assert!(why == "polygon: unavailable" || why == "polygon: down", "{why}");

    // A day not over yet, or an unknown market, is refused before anything is asked.
    let today = chrono::Utc::now().date_naive().to_string();
    let output = db.finql("reconcile", &["--date", &today]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("has not ended yet"));
    let output = db.finql("reconcile", &["--date", "2025-11-03", "--market", "MARS"]).await;
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown market `MARS`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_runs_each_day_once_across_replicas() {
    let (polygon, itick) = planted().await;
    let Some(db) = shared(Backend::Sqlite, &polygon, &itick).await else { return };
    // 00:00 has passed today: each replica runs yesterday at start, unless another has claimed it.
    let schedule = [("FINQL_RECONCILE_AT", "00:00")];
    let (first, second) = (db.spawn(Backend::Sqlite, &schedule).await, db.spawn(Backend::Sqlite, &schedule).await);
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    let admin = first.tenant_key("ops", "pro", "market,admin").await;
    let query = "query($d: Date!) { reconciliation(date: $d) { instruments sources } }";
    let mut run = Value::Null;
    let done = poll(PATIENCE * 6, async || {
        let (_, _, body) = first.gql_key(&admin, query, json!({ "d": yesterday })).await;
        run = body["data"]["reconciliation"].clone();
        !run.is_null()
    })
    .await;
    assert!(done.is_some(), "the scheduled run did not finish");
    assert_eq!(run["sources"], json!(["polygon", "itick"]));
    let url = db.vars.iter().find(|(k, _)| k == "DATABASE_URL").unwrap().1.clone();
    let conn = sea_orm::Database::connect(url).await.unwrap();
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &conn,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            format!("SELECT claim FROM reconciliation_runs WHERE day = '{yesterday}'"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "one run for the day, whichever replica claimed it");
    assert_eq!(rows[0].try_get::<String>("", "claim").unwrap(), format!("schedule:{yesterday}:*"));
    drop(second);
}
