//! T+0 validation over two real providers' fakes: with `FINQL_CROSSCHECK_RATE=1`, every quote
//! and window of closed bars fetched from Polygon is checked against iTick after it is served;
//! a value planted 1% apart is served as `SUSPECT` with iTick's, an equal one stays `OK`, and
//! the divergence is counted. At rate 0 nothing is asked of the secondary.

use serde_json::{Value, json};

use crate::{
    helpers::*,
    metrics::exposition::Exposition,
    sources::{itick::fake_rest::FakeItick, polygon::fake_rest::FakePolygon},
};

async fn app_on(polygon: &FakePolygon, itick: &FakeItick, rate: &str) -> TestApp {
    let (polygon_base, itick_base) = (polygon.base_url(), itick.base_url());
    let vars = [
        ("FINQL_MARKET_SOURCE", "polygon,itick"),
        ("FINQL_CROSSCHECK_RATE", rate),
        ("POLYGON_BASE_URL", polygon_base.as_str()),
        ("POLYGON_API_KEY", super::polygon::fake_rest::KEY),
        ("ITICK_BASE_URL", itick_base.as_str()),
        ("ITICK_TOKEN", super::itick::fake_rest::TOKEN),
    ];
    spawn_app(Backend::Sqlite, &vars).await.unwrap()
}

const QUOTES: &str =
    r#"{ quotes(symbols: ["AAPL.US", "MSFT.US"]) { symbol last source quality crossCheck { source value bps } } }"#;

fn by_symbol<'a>(data: &'a Value, symbol: &str) -> &'a Value {
    data["quotes"].as_array().unwrap().iter().find(|q| q["symbol"] == symbol).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_another_source_contradicts_is_served_as_suspect() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let aapl: rust_decimal::Decimal = super::polygon::fake_rest::price_of("AAPL").parse().unwrap();
    let msft: rust_decimal::Decimal = super::polygon::fake_rest::price_of("MSFT").parse().unwrap();
    itick.set_price("AAPL", aapl * rust_decimal::Decimal::new(101, 2));
    itick.set_price("MSFT", msft);
    let app = app_on(&polygon, &itick, "1").await;

    let mut data = app.data(None, QUOTES, json!({})).await;
    assert_eq!(by_symbol(&data, "AAPL.US")["source"], "POLYGON", "served by the primary: {data}");
    // The check runs after the answer: poll until it has.
    let waited = poll(PATIENCE, async || {
        data = app.data(None, QUOTES, json!({})).await;
        by_symbol(&data, "AAPL.US")["quality"] == "SUSPECT"
    })
    .await;
    assert!(waited.is_some(), "never SUSPECT: {data}");
    let suspect = by_symbol(&data, "AAPL.US");
    assert_eq!(suspect["crossCheck"]["source"], "itick");
    assert_eq!(suspect["crossCheck"]["bps"], "100.00", "{suspect}");
    let other: rust_decimal::Decimal = suspect["crossCheck"]["value"].as_str().unwrap().parse().unwrap();
    assert_eq!(other, aapl * rust_decimal::Decimal::new(101, 2));
    let equal = by_symbol(&data, "MSFT.US");
    assert_eq!((equal["quality"].clone(), equal["crossCheck"].clone()), (json!("OK"), Value::Null), "{data}");

    let text = app.client.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    let metrics = Exposition::parse(&text);
    let diverged = [("source", "polygon"), ("other", "itick"), ("kind", "quote")];
    assert_eq!(metrics.sum("finql_source_divergences_total", &diverged), 1.0);
    assert!(metrics.sum("finql_source_crosschecks_total", &[("outcome", "agreed")]) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_rate_zero_the_secondary_is_never_asked() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let app = app_on(&polygon, &itick, "0").await;
    let data = app.data(None, QUOTES, json!({})).await;
    assert_eq!(by_symbol(&data, "AAPL.US")["quality"], "OK");
    // A check would have been spawned by now, and it asks at once.
    let asked = poll(std::time::Duration::from_millis(500), async || itick.total_calls() > 0).await;
    assert!(asked.is_none(), "iTick was asked {} times", itick.total_calls());
}

const DAY_BARS: &str = r#"{
    msft: klines(symbol: "MSFT.US", interval: ONE_DAY, before: "2025-11-04T00:00:00Z", limit: 1) { ...Bar }
    aapl: klines(symbol: "AAPL.US", interval: ONE_DAY, before: "2025-11-04T00:00:00Z", limit: 1) { ...Bar }
}
fragment Bar on Kline { time close source quality crossCheck { source value bps } }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_bar_another_source_contradicts_is_served_as_suspect() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let day = chrono::NaiveDate::from_ymd_opt(2025, 11, 3).unwrap();
    polygon.plant_day("AAPL", day, ["100", "101", "99", "100.5", "1000"]);
    itick.plant_day("AAPL", day, ["100", "101", "99", "100.5", "1000"]);
    polygon.plant_day("MSFT", day, ["200", "202", "198", "201", "500"]);
    itick.plant_day("MSFT", day, ["200", "204.02", "198", "203.01", "500"]);
    let app = app_on(&polygon, &itick, "1").await;

    let mut data = app.data(None, DAY_BARS, json!({})).await;
    assert_eq!(data["msft"][0]["source"], "POLYGON", "{data}");
    let waited = poll(PATIENCE, async || {
        data = app.data(None, DAY_BARS, json!({})).await;
        data["msft"][0]["quality"] == "SUSPECT"
    })
    .await;
    assert!(waited.is_some(), "never SUSPECT: {data}");
    // The largest distance of the four prices: the close, 100 bps (the high is 99.01).
    assert_eq!(data["msft"][0]["crossCheck"], json!({ "source": "itick", "value": "203.01", "bps": "100.00" }));
    assert_eq!((data["aapl"][0]["quality"].clone(), data["aapl"][0]["crossCheck"].clone()), (json!("OK"), Value::Null));
    let text = app.client.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    let diverged = [("source", "polygon"), ("other", "itick"), ("kind", "kline")];
    assert_eq!(Exposition::parse(&text).sum("finql_source_divergences_total", &diverged), 1.0);
}
