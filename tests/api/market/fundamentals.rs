//! Corporate actions, fundamentals and adjusted klines (`market::{corporate, fundamentals}`,
//! `market::graphql::fundamentals`): on the simulated market (real past splits, plausible dividends
//! and valuations), and through the iTick adapter against the fake iTick server (splits from
//! `/stock/split`, a snapshot from `/stock/info`).

use chrono::Utc;
use finql::market::calendar::{self, Region};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::*,
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("decimal string expected, got {v}")).parse().unwrap()
}

async fn app() -> TestApp {
    spawn_app(Backend::Sqlite, &[]).await.unwrap()
}

const ACTIONS: &str = "query($s: String!) { security(symbol: $s) {
  corporateActions { kind exDate ratio splitFrom splitTo amount currency } } }";

const FUNDAMENTALS: &str = "query($s: String!, $from: Date!, $to: Date!) { security(symbol: $s) {
  fundamentals(from: $from, to: $to) { nodes { date price eps pe pb dividendYield marketCap currency } } } }";

const KLINES: &str = "query($s: String!, $before: DateTime, $adjust: KlineAdjust) {
  klines(symbol: $s, interval: ONE_DAY, limit: 20, before: $before, adjust: $adjust) {
    time open high low close volume turnover } }";

async fn actions(app: &TestApp, symbol: &str) -> Vec<Value> {
    let data = app.data(None, ACTIONS, json!({ "s": symbol })).await;
    data["security"]["corporateActions"].as_array().unwrap().clone()
}

async fn corporate_actions_of_a_simulated_stock(app: TestApp) {
    let aapl = actions(&app, "AAPL.US").await;
    let dates: Vec<&str> = aapl.iter().map(|a| a["exDate"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "oldest first: {dates:?}");
    let split: Vec<&Value> = aapl.iter().filter(|a| a["kind"] == "SPLIT").collect();
    assert_eq!(split.len(), 1, "{split:?}");
    assert_eq!(
        *split[0],
        json!({"kind": "SPLIT", "exDate": "2020-08-31", "ratio": "4:1", "splitFrom": "1", "splitTo": "4",
               "amount": null, "currency": null})
    );
    // Quarterly dividends in USD; before the split a share was four of today's, and so was its
    // dividend.
    let dividends: Vec<&Value> = aapl.iter().filter(|a| a["kind"] == "DIVIDEND").collect();
    assert!(
        dividends.iter().all(|d| d["currency"] == "USD" && dec(&d["amount"]) > Decimal::ZERO && d["ratio"].is_null())
    );
    let in_year = |year: &str| dividends.iter().filter(|d| d["exDate"].as_str().unwrap().starts_with(year)).count();
    assert_eq!((in_year("2019"), in_year("2023")), (4, 4), "quarterly");
    let amount = |year: &str| {
        dividends.iter().find(|d| d["exDate"].as_str().unwrap().starts_with(year)).map(|d| dec(&d["amount"])).unwrap()
    };
    assert!(amount("2020") > amount("2021") * Decimal::from(3), "pre-split dividends are per pre-split share");
    // Deterministic, and nothing for asset classes without corporate actions.
    assert_eq!(aapl, actions(&app, "AAPL.US").await);
    let tsla: Vec<String> =
        actions(&app, "TSLA.US").await.iter().map(|a| format!("{} {}", a["exDate"], a["ratio"])).collect();
    assert_eq!(tsla, ["\"2020-08-31\" \"5:1\"", "\"2022-08-25\" \"3:1\""], "TSLA pays no dividend");
    for symbol in ["FX:EURUSD", "CRYPTO:BTCUSDT", "IDX:SPX"] {
        assert!(actions(&app, symbol).await.is_empty(), "{symbol}");
        let data = app.data(None, FUNDAMENTALS, json!({ "s": symbol, "from": "2024-01-01", "to": "2024-12-31" })).await;
        assert_eq!(data["security"]["fundamentals"]["nodes"], json!([]), "{symbol}");
    }
}

backend_tests!(corporate_actions_of_a_simulated_stock);

/// "Moutai's PE band over five years" is one query, and its numbers hold together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moutai_pe_band_over_five_years() {
    let app = app().await;
    let vars = json!({ "s": "600519.SH", "from": "2020-01-01", "to": "2024-12-31" });
    let query = r#"query($s: String!, $from: Date!, $to: Date!, $after: String) { security(symbol: $s) {
      fundamentals(from: $from, to: $to, after: $after) { nodes { date pe } pageInfo { hasNextPage endCursor } } } }"#;
    // Five years of Shanghai trading days: more than one page of 1,000.
    let mut band: Vec<Value> = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .data(None, query, json!({ "s": "600519.SH", "from": "2020-01-01", "to": "2024-12-31", "after": after }))
            .await["security"]["fundamentals"]
            .clone();
        band.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let trading = |p: &Value| {
        let date = chrono::NaiveDate::parse_from_str(p["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        calendar::is_trading_day(Region::Cn, date)
    };
    assert!(band.iter().all(trading), "Shanghai trading days only");
    assert!(band.len() > 1000 && band.len() < 1827, "trading days of five years, in pages: {}", band.len());
    assert_eq!(band.last().unwrap()["date"], "2024-12-31");
    let pes: Vec<Decimal> = band.iter().map(|p| dec(&p["pe"])).collect();
    let (low, high) = (pes.iter().min().unwrap(), pes.iter().max().unwrap());
    assert!(*low > Decimal::from(5) && *high < Decimal::from(100) && high > low, "a plausible band: {low}..{high}");

    let points = app.data(None, FUNDAMENTALS, vars.clone()).await["security"]["fundamentals"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    for p in &points {
        let (price, eps, pe) = (dec(&p["price"]), dec(&p["eps"]), dec(&p["pe"]));
        let exact = (price / eps).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(pe, exact, "pe = price / eps at two places, half away from zero: {p}");
        assert!(dec(&p["pb"]) > Decimal::ZERO && dec(&p["marketCap"]) > Decimal::ZERO, "{p}");
        assert!(dec(&p["dividendYield"]) > Decimal::ZERO && dec(&p["dividendYield"]) < Decimal::from(10), "{p}");
        assert_eq!(p["currency"], "CNY");
    }
    // The price is the day's close as traded.
    let bar = app.data(None, KLINES, json!({ "s": "600519.SH", "before": "2024-12-31T00:00:00Z" })).await["klines"][19]
        .clone();
    let date = &bar["time"].as_str().unwrap()[..10];
    let vars_of_day = json!({ "s": "600519.SH", "from": date, "to": date });
    let point = app.data(None, FUNDAMENTALS, vars_of_day).await["security"]["fundamentals"]["nodes"][0].clone();
    assert_eq!(dec(&bar["close"]), dec(&point["price"]));
    // Deterministic: another server computes the same series.
    let other = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    assert_eq!(other.data(None, FUNDAMENTALS, vars).await["security"]["fundamentals"]["nodes"], json!(points));
}

async fn klines(app: &TestApp, symbol: &str, before: &str, adjust: &str) -> Vec<Value> {
    let vars = json!({ "s": symbol, "before": before, "adjust": adjust });
    app.data(None, KLINES, vars).await["klines"].as_array().unwrap().clone()
}

/// AMZN's 20:1 split of 2022-06-06, its only corporate action: as traded, the price falls
/// twentyfold overnight; adjusted either way, the series is continuous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjusted_klines_are_continuous_across_a_split() {
    let app = app().await;
    let before = "2022-06-16T00:00:00Z";
    let raw = klines(&app, "AMZN.US", before, "NONE").await;
    let forward = klines(&app, "AMZN.US", before, "FORWARD").await;
    let backward = klines(&app, "AMZN.US", before, "BACKWARD").await;
    let ex = raw.iter().position(|b| b["time"] == "2022-06-06T00:00:00.000000Z").expect("the ex-date is in the window");
    assert!(ex > 0);
    let twenty = Decimal::from(20);
    // As traded: a jump of the split ratio (the simulated market opens each day at the close
    // before), to the rounding of each price to its cent.
    let cent = Decimal::new(1, 2);
    assert!((dec(&raw[ex - 1]["close"]) - dec(&raw[ex]["open"]) * twenty).abs() <= cent * twenty, "{raw:?}");
    assert_eq!(raw, klines(&app, "AMZN.US", before, "NONE").await, "the default is as traded");
    // FORWARD: history ÷ 20, volumes × 20; the latest bars are unchanged but for the scale.
    let same = |a: &[Value], b: &[Value]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                a["time"] == b["time"]
                    && ["open", "high", "low", "close", "volume", "turnover"].iter().all(|f| dec(&a[f]) == dec(&b[f]))
            })
    };
    assert!((dec(&forward[ex - 1]["close"]) - dec(&forward[ex]["open"])).abs() <= cent, "continuous to a cent");
    assert!(same(&forward[ex..], &raw[ex..]));
    assert_eq!(dec(&forward[0]["close"]) * twenty, dec(&raw[0]["close"]));
    assert_eq!(dec(&forward[0]["volume"]), dec(&raw[0]["volume"]) * twenty);
    assert_eq!(forward[0]["turnover"], raw[0]["turnover"], "money traded does not change");
    // BACKWARD: later bars × 20, volumes ÷ 20; the earliest bar is unchanged.
    assert!((dec(&backward[ex - 1]["close"]) - dec(&backward[ex]["open"])).abs() <= cent * twenty, "continuous");
    assert!(same(&backward[..ex], &raw[..ex]));
    assert_eq!(dec(&backward[ex]["open"]), dec(&raw[ex]["open"]) * twenty);
    // The same through `Security.klines`.
    let query = r#"{ security(symbol: "AMZN.US") {
      klines(interval: ONE_DAY, limit: 20, before: "2022-06-16T00:00:00Z", adjust: FORWARD) {
        time open high low close volume turnover } } }"#;
    assert_eq!(app.data(None, query, json!({})).await["security"]["klines"], json!(forward));
}

/// A week that straddles an ex-date (TSLA's 3:1 split on Thursday 2022-08-25) is, adjusted,
/// the aggregate of its adjusted days, not a mix of two share bases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjusted_week_across_a_split_is_its_adjusted_days() {
    let app = app().await;
    let query = "query($i: KlineInterval!, $n: Int!, $before: DateTime, $adjust: KlineAdjust) {
      klines(symbol: \"TSLA.US\", interval: $i, limit: $n, before: $before, adjust: $adjust) {
        time open high low close volume turnover } }";
    for adjust in ["FORWARD", "BACKWARD", "NONE"] {
        let vars = json!({ "i": "ONE_WEEK", "n": 1, "before": "2022-08-29T00:00:00Z", "adjust": adjust });
        let week = app.data(None, query, vars).await["klines"][0].clone();
        // Its five trading days.
        let vars = json!({ "i": "ONE_DAY", "n": 5, "before": "2022-08-29T00:00:00Z", "adjust": adjust });
        let days = app.data(None, query, vars).await["klines"].as_array().unwrap().clone();
        assert_eq!(week["time"], days[0]["time"], "{adjust}");
        assert_eq!(dec(&week["open"]), dec(&days[0]["open"]), "{adjust}");
        assert_eq!(dec(&week["close"]), dec(&days[4]["close"]), "{adjust}");
        assert_eq!(dec(&week["high"]), days.iter().map(|d| dec(&d["high"])).max().unwrap(), "{adjust}");
        assert_eq!(dec(&week["low"]), days.iter().map(|d| dec(&d["low"])).min().unwrap(), "{adjust}");
        assert_eq!(dec(&week["volume"]), days.iter().map(|d| dec(&d["volume"])).sum::<Decimal>(), "{adjust}");
    }
}

/// A dividend payer: forward adjustment restates the days before an ex-date by
/// `(prevClose - amount) / prevClose` relative to the ex-date itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_adjustment_for_a_dividend() {
    let app = app().await;
    let dividend = actions(&app, "KO.US")
        .await
        .into_iter()
        .find(|a| a["kind"] == "DIVIDEND" && a["exDate"].as_str().unwrap().starts_with("2023"))
        .expect("KO pays quarterly");
    let ex_date = chrono::NaiveDate::parse_from_str(dividend["exDate"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let before = format!("{}T00:00:00Z", ex_date + chrono::Days::new(1));
    let raw = klines(&app, "KO.US", &before, "NONE").await;
    let forward = klines(&app, "KO.US", &before, "FORWARD").await;
    assert_eq!(raw[19]["time"], format!("{ex_date}T00:00:00.000000Z"));
    let prev_close = dec(&raw[18]["close"]);
    let factor = (prev_close - dec(&dividend["amount"])) / prev_close;
    assert!(factor < Decimal::ONE && factor > Decimal::new(95, 2), "{factor}");
    // Later ex-dates scale both days alike; this one only the day before.
    let scale = |i: usize| dec(&forward[i]["close"]) / dec(&raw[i]["close"]);
    let relative = scale(18) / scale(19);
    assert!((relative - factor).abs() < Decimal::new(1, 5), "{relative} vs {factor}");
    assert_eq!(forward[18]["volume"], raw[18]["volume"], "a dividend changes no share count");
}

async fn itick_app(fake: &FakeItick) -> TestApp {
    let base = fake.base_url();
    let vars = [("FINQL_MARKET_SOURCE", "itick"), ("ITICK_BASE_URL", base.as_str()), ("ITICK_TOKEN", TOKEN)];
    spawn_app(Backend::Sqlite, &vars).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itick_splits_map_to_symbols_with_one_pass_per_region() {
    let fake = FakeItick::start().await;
    let app = itick_app(&fake).await;
    let query = r#"{
      aapl: security(symbol: "AAPL.US") { corporateActions { kind exDate ratio splitFrom splitTo amount } }
      tsla: security(symbol: "TSLA.US") { corporateActions { exDate ratio } }
      msft: security(symbol: "MSFT.US") { corporateActions { exDate } }
      tencent: security(symbol: "700.HK") { corporateActions { exDate ratio } }
      fx: security(symbol: "FX:EURUSD") { corporateActions { exDate } }
    }"#;
    let data = app.data(None, query, json!({})).await;
    assert_eq!(
        data["aapl"]["corporateActions"],
        json!([{"kind": "SPLIT", "exDate": "2020-08-31", "ratio": "4:1", "splitFrom": "1", "splitTo": "4", "amount": null}]),
        "the ex-date is the exchange's day, and iTick has no dividends"
    );
    assert_eq!(
        data["tsla"]["corporateActions"],
        json!([{"exDate": "2020-08-31", "ratio": "5:1"}, {"exDate": "2022-08-25", "ratio": "3:1"}])
    );
    assert_eq!(data["msft"]["corporateActions"], json!([]));
    assert_eq!(
        data["tencent"]["corporateActions"],
        json!([{"exDate": "2014-05-15", "ratio": "5:1"}]),
        "00700 is 700.HK"
    );
    assert_eq!(data["fx"]["corporateActions"], json!([]));
    let pages = |region: &str| -> Vec<Option<String>> {
        fake.requests()
            .into_iter()
            .filter(|(path, q)| path == "/stock/split" && q.get("region").map(String::as_str) == Some(region))
            .map(|(_, q)| q.get("page").cloned())
            .collect()
    };
    // Eight splits, three a page: US takes pages 1 to 3, once for all its symbols.
    assert_eq!(pages("US"), [None, Some("2".to_owned()), Some("3".to_owned())]);
    assert_eq!(pages("HK"), [None]);
    let more = r#"{ a: security(symbol: "GOOGL.US") { corporateActions { ratio } }
                    b: security(symbol: "NVDA.US") { corporateActions { ratio } } }"#;
    let data = app.data(None, more, json!({})).await;
    assert_eq!(data["a"]["corporateActions"], json!([{"ratio": "20:1"}]));
    assert_eq!(data["b"]["corporateActions"], json!([{"ratio": "10:1"}]));
    assert_eq!(fake.calls("/stock/split"), 4, "other symbols of the region come from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itick_fundamentals_are_todays_snapshot() {
    let fake = FakeItick::start().await;
    let app = itick_app(&fake).await;
    let today = Utc::now().date_naive();
    let vars = json!({ "s": "AAPL.US", "from": (today - chrono::Days::new(365)).to_string(), "to": today.to_string() });
    let points = app.data(None, FUNDAMENTALS, vars.clone()).await["security"]["fundamentals"]["nodes"].clone();
    let price = fake.price("AAPL");
    let shares = Decimal::from(1_000_000_000i64 + "AAPL".bytes().map(i64::from).sum::<i64>() * 1_000_000);
    // As of the latest US trading day (on a weekend, Friday's).
    let as_of = match calendar::is_trading_day(Region::Us, today) {
        true => today,
        false => calendar::previous_trading_day(Region::Us, today).unwrap(),
    };
    let fixed = |v: Decimal, dp: u32| {
        let mut v = v.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        v.rescale(dp);
        v.to_string()
    };
    assert_eq!(
        points,
        json!([{
            "date": as_of.to_string(), "price": null, "eps": null, "pe": fixed(price / Decimal::from(5), 2),
            "pb": null, "dividendYield": null, "marketCap": fixed(price * shares, 0), "currency": "USD",
        }]),
        "only what iTick has"
    );
    app.data(None, FUNDAMENTALS, vars).await;
    assert_eq!(fake.calls("/stock/info"), 1, "cached for a day");
    let past = json!({ "s": "AAPL.US", "from": "2020-01-01", "to": "2020-12-31" });
    assert_eq!(
        app.data(None, FUNDAMENTALS, past).await["security"]["fundamentals"]["nodes"],
        json!([]),
        "no history at iTick"
    );
    // Adjustment through iTick uses its splits: a bar before AAPL's split, forward, is ÷ 4.
    let raw = klines(&app, "AAPL.US", "2020-08-31T00:00:00Z", "NONE").await;
    let forward = klines(&app, "AAPL.US", "2020-08-31T00:00:00Z", "FORWARD").await;
    assert_eq!(dec(&forward[0]["close"]), (dec(&raw[0]["close"]) / Decimal::from(4)).round_dp(4));
}

/// Concurrent misses share one upstream pass: many symbols of a region, one `/stock/split`
/// walk; many requests for one snapshot, one `/stock/info` call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itick_concurrent_misses_share_one_call() {
    let fake = FakeItick::start().await;
    fake.set_delay(std::time::Duration::from_millis(150));
    let app = itick_app(&fake).await;
    let today = Utc::now().date_naive();
    // A week: the snapshot is as of the latest trading day, which may be before today.
    let week_ago = (today - chrono::Days::new(7)).to_string();
    let today = today.to_string();
    let requests = ["AAPL.US", "TSLA.US", "NVDA.US", "MSFT.US", "AMZN.US"].map(|symbol| {
        let app = &app;
        async move { app.data(None, ACTIONS, json!({ "s": symbol })).await }
    });
    futures::future::join_all(requests).await;
    assert_eq!(fake.calls("/stock/split"), 3, "one walk of the US pages");
    let requests = (0..5).map(|_| {
        let (app, today, week_ago) = (&app, today.clone(), week_ago.clone());
        async move { app.data(None, FUNDAMENTALS, json!({ "s": "AAPL.US", "from": week_ago, "to": today })).await }
    });
    futures::future::join_all(requests).await;
    assert_eq!(fake.calls("/stock/info"), 1);
}

/// A loss-making company (INTC in the simulation) has a negative EPS and no P/E.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_has_no_pe() {
    let app = app().await;
    let vars = json!({ "s": "INTC.US", "from": "2024-01-01", "to": "2024-01-31" });
    let points =
        app.data(None, FUNDAMENTALS, vars).await["security"]["fundamentals"]["nodes"].as_array().unwrap().clone();
    let trading_days = (1..=31)
        .filter(|day| calendar::is_trading_day(Region::Us, chrono::NaiveDate::from_ymd_opt(2024, 1, *day).unwrap()))
        .count();
    assert_eq!(points.len(), trading_days, "January 2024's US trading days");
    assert!(
        points.iter().all(|p| p["pe"].is_null() && dec(&p["eps"]) < Decimal::ZERO && !p["pb"].is_null()),
        "{points:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ranges_are_bad_user_input() {
    let app = app().await;
    for (from, to) in [("2024-02-01", "2024-01-01"), ("2000-01-01", "2024-12-31")] {
        let body = app.gql(None, FUNDAMENTALS, json!({ "s": "AAPL.US", "from": from, "to": to })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{from}..{to}: {body}");
    }
    let body = app.gql(None, FUNDAMENTALS, json!({ "s": "AAPL.US", "from": "2024-13-01", "to": "2024-12-31" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "not a date: {body}");
    let body = app.gql(None, FUNDAMENTALS, json!({ "s": "NOPE.US", "from": "2024-01-01", "to": "2024-12-31" })).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}
