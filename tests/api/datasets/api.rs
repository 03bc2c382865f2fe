//! The datasets API over HTTP: loads through `loadDataset`, typed reads with aliases and pages,
//! one clear error for a bad selection, entitlements and loaders, the audit.

use serde_json::{Value, json};

use super::{Fixture, RATINGS_CSV, load};
use crate::helpers::{Backend, PATIENCE, TestApp, error_code, poll};

crate::each_backend!(loaded_rows_are_read_with_typed_fields, a_rejected_load_writes_nothing_and_leaves_the_old_rows);

const POINTS: &str = r#"query($s: String!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
    security(symbol: $s) { dataset(name: "analyst_ratings") { name
        points(from: $from, to: $to, first: $first, after: $after) {
            edges { cursor node { symbol time
                rating: text(field: "rating") target: decimal(field: "target_price")
                analysts: integer(field: "analysts") up: boolean(field: "upgraded") } }
            pageInfo { hasNextPage hasPreviousPage endCursor } } } } }"#;

/// The example CSV's row for `symbol` on `day` (`YYYY-MM-DD`), as the API should answer it.
fn expected(symbol: &str, day: &str) -> Value {
    let line = RATINGS_CSV
        .lines()
        .find(|line| line.starts_with(&format!("{symbol},{day},")))
        .unwrap_or_else(|| panic!("{symbol} {day} is in the example"));
    let cells: Vec<&str> = line.split(',').collect();
    json!({
        "symbol": symbol,
        "time": format!("{day}T00:00:00.000000Z"),
        "rating": cells[2],
        "target": cells[3],
        "analysts": cells[4].parse::<i64>().unwrap(),
        "up": cells[5] == "true",
    })
}

/// The ratings loaded by an admin of `default`, the tenant the example's `loaders` names.
async fn loaded(backend: Backend) -> Option<(Fixture, TestApp, String)> {
    let fixture = Fixture::new();
    let app = fixture.spawn(backend).await?;
    let admin = app.tenant_key("default", "full", "market,admin").await;
    let body = load(&app, &admin, json!({ "name": "analyst_ratings", "data": RATINGS_CSV })).await;
    let report = &body["data"]["loadDataset"];
    assert_eq!(report, &json!({ "accepted": 120, "rejected": 0, "rejects": [], "written": true, "rowCount": 120 }));
    Some((fixture, app, admin))
}

async fn loaded_rows_are_read_with_typed_fields(backend: Backend) {
    let Some((_fixture, app, admin)) = loaded(backend).await else { return };
    // A window of three reviews, two per page; exact decimals, typed values, aliases.
    let window =
        json!({ "s": "aapl.us", "from": "2026-06-01T00:00:00Z", "to": "2026-09-01T00:00:00+00:00", "first": 2 });
    let (_, _, body) = app.gql_key(&admin, POINTS, window.clone()).await;
    let dataset = &body["data"]["security"]["dataset"];
    assert_eq!(dataset["name"], "analyst_ratings", "{body}");
    let nodes: Vec<&Value> = dataset["points"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
    assert_eq!(nodes, [&expected("AAPL.US", "2026-06-15"), &expected("AAPL.US", "2026-07-15")]);
    let page = &dataset["points"]["pageInfo"];
    assert_eq!(page["hasNextPage"], true);
    assert_eq!(page["endCursor"], "2026-07-15T00:00:00.000000Z");
    let mut next = window;
    next["after"] = page["endCursor"].clone();
    let (_, _, body) = app.gql_key(&admin, POINTS, next).await;
    let points = &body["data"]["security"]["dataset"]["points"];
    assert_eq!(points["edges"][0]["node"], expected("AAPL.US", "2026-08-15"), "{body}");
    assert_eq!(points["edges"].as_array().unwrap().len(), 1);
    assert_eq!(points["pageInfo"]["hasNextPage"], false);
    assert_eq!(points["pageInfo"]["hasPreviousPage"], true);

    // Many symbols at once: canonicalised, deduplicated, ordered by symbol then time; a symbol
    // without rows has none.
    let query = r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL.US", "0700.hk", "700.HK", "CRYPTO:BTCUSDT"],
        from: "2026-10-01T00:00:00Z", first: 4) { symbol time rating: text(field: "rating") } }"#;
    let (_, _, body) = app.gql_key(&admin, query, json!({})).await;
    let points = body["data"]["datasetPoints"].as_array().unwrap_or_else(|| panic!("{body}"));
    let keys: Vec<(&str, &str)> =
        points.iter().map(|p| (p["symbol"].as_str().unwrap(), p["time"].as_str().unwrap())).collect();
    assert_eq!(
        keys,
        [
            ("700.HK", "2026-10-15T00:00:00.000000Z"),
            ("700.HK", "2026-11-15T00:00:00.000000Z"),
            ("AAPL.US", "2026-10-15T00:00:00.000000Z"),
            ("AAPL.US", "2026-11-15T00:00:00.000000Z"),
        ]
    );
    assert_eq!(points[3]["rating"], expected("AAPL.US", "2026-11-15")["rating"]);

    // A dataset keyed by symbol alone, loaded as JSON Lines by its own loader: one point per
    // instrument, no time, dates and instants typed.
    let research = app.tenant_key("research", "full", "market,admin").await;
    let lines = [
        json!({ "symbol": "aapl.us", "score": "71.50", "reviewed": "2026-10-01", "flagged_at": "2026-10-02T09:30:00+02:00" }),
        json!({ "symbol": "MSFT.US", "score": 64 }),
    ];
    let data: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let body = load(&app, &research, json!({ "name": "esg", "format": "JSON_LINES", "data": data })).await;
    assert_eq!(body["data"]["loadDataset"]["rowCount"], 2, "{body}");
    let query = r#"{ security(symbol: "AAPL.US") { dataset(name: "esg") { points { nodes { time
        score: decimal(field: "score") reviewed: date(field: "reviewed") flagged: datetime(field: "flagged_at") } } } } }"#;
    let (_, _, body) = app.gql_key(&research, query, json!({})).await;
    let nodes = &body["data"]["security"]["dataset"]["points"]["nodes"];
    assert_eq!(
        nodes,
        &json!([{ "time": null, "score": "71.50", "reviewed": "2026-10-01", "flagged": "2026-10-02T07:30:00.000000Z" }])
    );
    let ranged = r#"{ security(symbol: "AAPL.US") { dataset(name: "esg") {
        points(from: "2026-01-01T00:00:00Z") { nodes { time } } } } }"#;
    let (_, _, body) = app.gql_key(&research, ranged, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("keyed by symbol alone"), "{body}");
}

/// Upload `csv` as the ratings' rows; returns the report.
async fn upload(app: &TestApp, admin: &str, csv: &str, extra: Value) -> Value {
    let mut input = json!({ "name": "analyst_ratings", "data": csv });
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let body = load(app, admin, input).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["loadDataset"].clone()
}

/// AAPL.US's rating of 2026-11-15, as served.
async fn latest_rating(app: &TestApp, admin: &str) -> Value {
    let window = json!({ "s": "AAPL.US", "from": "2026-11-15T00:00:00Z", "first": 1 });
    let (_, _, body) = app.gql_key(admin, POINTS, window).await;
    body["data"]["security"]["dataset"]["points"]["edges"][0]["node"]["rating"].clone()
}

async fn a_rejected_load_writes_nothing_and_leaves_the_old_rows(backend: Backend) {
    let Some((_fixture, app, admin)) = loaded(backend).await else { return };
    let before = latest_rating(&app, &admin).await;
    let changed = if before == "sell" { "buy" } else { "sell" };
    // Read once, so that a stale cache would show below.
    assert_eq!(before, expected("AAPL.US", "2026-11-15")["rating"]);

    let csv = format!(
        "symbol,time,rating,target_price,analysts,upgraded\n\
         AAPL.US,2026-11-15,{changed},250.00,9,false\n\
         AAPL.US,2026-11-16,buy,1e3,9,false\n"
    );
    let report = upload(&app, &admin, &csv, json!({})).await;
    assert_eq!(
        report,
        json!({
            "accepted": 1, "rejected": 1, "written": false, "rowCount": null,
            "rejects": [{ "line": 3, "message": "target_price: `1e3`: write decimals without an exponent" }],
        })
    );
    assert_eq!(latest_rating(&app, &admin).await, before, "nothing written");

    // Accepting one reject writes the good row, upserted by key.
    let report = upload(&app, &admin, &csv, json!({ "maxRejects": 1 })).await;
    assert_eq!((report["written"].clone(), report["rowCount"].clone()), (json!(true), json!(120)));
    assert_eq!(latest_rating(&app, &admin).await, changed, "a load empties this replica's cache");

    // A header that does not fit refuses the whole file, naming what is wrong.
    let body = load(
        &app,
        &admin,
        json!({ "name": "analyst_ratings", "data": "symbol,time,rating\nAAPL.US,2026-01-01,buy\n" }),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("lacks analysts, target_price, upgraded"),
        "{body}"
    );
    // Past the upload's row cap: the CLI's job.
    let mut big = String::from("symbol,time,rating,target_price,analysts,upgraded\n");
    let start = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap();
    for day in 0..10_001 {
        big.push_str(&format!("AAPL.US,{},buy,1,1,false\n", start + chrono::Days::new(day)));
    }
    let body = load(&app, &admin, json!({ "name": "analyst_ratings", "data": big })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("finql dataset load"), "{body}");

    // Replacing: the file is the whole dataset afterwards.
    let report = upload(&app, &admin, &csv.replace("1e3", "3"), json!({ "replace": true })).await;
    assert_eq!(report["rowCount"], 2, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_selection_is_one_error_naming_what_is_wrong() {
    let Some((_fixture, app, admin)) = loaded(Backend::Sqlite).await else { return };
    let message = |body: &Value| body["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
    let cases = [
        (
            r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL.US"]) { nope: decimal(field: "nope") } }"#,
            "BAD_USER_INPUT",
            "has no field `nope` (its fields: analysts, rating, target_price, upgraded)",
        ),
        (
            r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL.US"]) { decimal(field: "rating") } }"#,
            "BAD_USER_INPUT",
            "read it with `text(field: \"rating\")`",
        ),
        (
            r#"{ security(symbol: "AAPL.US") { dataset(name: "analyst_ratings") { points { edges { node { ...F } } } } } }
            fragment F on DatasetPoint { integer(field: "target_price") }"#,
            "BAD_USER_INPUT",
            "is a decimal field, not integer",
        ),
        (r#"{ datasetPoints(name: "ratings", symbols: ["AAPL.US"]) { symbol } }"#, "NOT_FOUND", "no dataset `ratings`"),
        (
            r#"{ datasetPoints(name: "analyst_ratings", symbols: []) { symbol } }"#,
            "BAD_USER_INPUT",
            "between 1 and 100",
        ),
        (
            r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL.US"], from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { symbol } }"#,
            "BAD_USER_INPUT",
            "must not be before",
        ),
        (
            r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL"]) { symbol } }"#,
            "BAD_USER_INPUT",
            "not a valid symbol",
        ),
        (
            r#"{ security(symbol: "AAPL.US") { dataset(name: "analyst_ratings") { points(after: "yesterday") { nodes { time } } } } }"#,
            "BAD_USER_INPUT",
            "not a valid cursor",
        ),
        (
            r#"{ security(symbol: "AAPL.US") { dataset(name: "analyst_ratings") { points(first: 1001) { nodes { time } } } } }"#,
            "BAD_USER_INPUT",
            "between 0 and 1000",
        ),
    ];
    for (query, code, says) in cases {
        let (status, _, body) = app.gql_key(&admin, query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(error_code(&body), code, "{query}: {body}");
        assert!(message(&body).contains(says), "{query}: {body}");
        assert_eq!(body["errors"].as_array().unwrap().len(), 1, "one error, not one per point: {body}");
    }
    // More points than `first` (what the request costs): refused, never cut short.
    let query = r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL.US", "MSFT.US"], first: 23) { symbol } }"#;
    let (_, _, body) = app.gql_key(&admin, query, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains("more than 23 points"), "{body}");
    assert_eq!(body["extensions"]["cost"], 23, "{body}");
    let (_, _, body) = app.gql_key(&admin, &query.replace("23", "24"), json!({})).await;
    assert_eq!(body["data"]["datasetPoints"].as_array().map(Vec::len), Some(24), "{body}");
    let symbols: Vec<String> = (0..101).map(|i| format!("S{i}.US")).collect();
    let query = "query($s: [String!]!) { datasetPoints(name: \"analyst_ratings\", symbols: $s) { symbol } }";
    let (_, _, body) = app.gql_key(&admin, query, json!({ "s": symbols })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_decide_who_reads_and_loaders_who_loads() {
    let Some((_fixture, app, default_admin)) = loaded(Backend::Sqlite).await else { return };
    let desk = app.tenant_key("desk", "esg_only", "market,admin").await;
    let names = |body: &Value| -> Vec<String> {
        body["data"]["datasets"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect()
    };
    let list = "{ datasets { name key fields { name type required } } }";
    let (_, _, body) = app.gql_key(&default_admin, list, json!({})).await;
    assert_eq!(names(&body), ["analyst_ratings", "esg"], "a plan without `datasets` reads all");
    let score = &body["data"]["datasets"][1]["fields"];
    assert_eq!(score[2], json!({ "name": "score", "type": "DECIMAL", "required": true }), "{body}");
    assert_eq!(body["data"]["datasets"][1]["key"], json!(["symbol"]));
    let (_, _, body) = app.gql_key(&desk, list, json!({})).await;
    assert_eq!(names(&body), ["esg"]);

    for query in [
        r#"{ security(symbol: "AAPL.US") { dataset(name: "analyst_ratings") { points { nodes { time } } } } }"#,
        r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL.US"]) { symbol } }"#,
    ] {
        let (_, _, body) = app.gql_key(&desk, query, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["reason"], "ENTITLEMENT_REQUIRED", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("esg_only"), "{body}");
    }
    let anonymous = app.gql(None, list, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    // Loading: admins of a tenant the manifest's `loaders` names, and nobody else.
    let esg = json!({ "name": "esg", "format": "JSON_LINES", "data": "{\"symbol\":\"AAPL.US\",\"score\":\"50\"}\n" });
    let body = load(&app, &default_admin, esg.clone()).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "default is not among esg's loaders: {body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("finql dataset load"), "{body}");
    let research_reader = app.tenant_key("research", "full", "market").await;
    assert_eq!(error_code(&load(&app, &research_reader, esg.clone()).await), "FORBIDDEN", "admins only");
    let research_admin = app.tenant_key("research", "full", "market,admin").await;
    let body = load(&app, &research_admin, esg).await;
    assert_eq!(body["data"]["loadDataset"]["written"], true, "{body}");
    let unknown = load(&app, &research_admin, json!({ "name": "nope", "data": "" })).await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_names_the_dataset_and_the_fields_read() {
    let Some((_fixture, app, admin)) = loaded(Backend::Sqlite).await else { return };
    let query = r#"query Ratings { security(symbol: "AAPL.US") { dataset(name: "analyst_ratings") {
        points(first: 1) { nodes { t: decimal(field: "target_price") } } } } }"#;
    let (_, _, body) = app.gql_key(&admin, query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let log = r#"query($f: AuditLogFilter) { tenant { auditLog(first: 10, filter: $f) { edges { node { fields symbols } } } } }"#;
    let mut record = Value::Null;
    let found = poll(PATIENCE, async || {
        let (_, _, body) = app.gql_key(&admin, log, json!({ "f": { "operationName": "Ratings" } })).await;
        record = body["data"]["tenant"]["auditLog"]["edges"][0]["node"].clone();
        !record.is_null()
    })
    .await;
    assert!(found.is_some(), "no audit record");
    assert_eq!(record["fields"], json!(["security.dataset(analyst_ratings).points.nodes.decimal(target_price)"]));
    assert_eq!(record["symbols"], json!(["AAPL.US"]));
}
