//! Stated precision (issue 11), as a client sees it, over every stock of the catalog and a
//! spread of dates: each derived figure has its fixed number of decimals, rounded half away from
//! zero from the exact relation it states (`pe = price / eps`, `dividendYield` = the year's
//! dividends of `corporateActions` over the price, `changePercent` from `last` and `prevClose`),
//! and adjusted prices always have four. Prices of the simulated market change as it evolves:
//! these tests assert relations and scales, never literal prices.

use chrono::{Datelike, Days, NaiveDate, Utc};
use finql::{
    market::calendar::{self, Region},
    reference::service::AssetClass,
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use crate::helpers::*;

pub fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("decimal string expected, got {v}")).parse().unwrap()
}

/// Decimal places as rendered (`"93.00"` has 2, `"93"` 0).
pub fn places(v: &Value) -> usize {
    let text = v.as_str().unwrap_or_else(|| panic!("decimal string expected, got {v}"));
    text.split_once('.').map_or(0, |(_, fraction)| fraction.len())
}

/// The stated rule: half away from zero, at a fixed scale.
pub fn fixed(value: Decimal, dp: u32) -> Decimal {
    let mut out = value.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    out.rescale(dp);
    out
}

pub fn date(v: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap()
}

/// Every stock of the catalog, with its market.
pub async fn stocks(app: &TestApp) -> Vec<(String, Region)> {
    let query = "{ securities(assetClass: STOCK, first: 100) { nodes { symbol region } pageInfo { hasNextPage } } }";
    let data = app.data(None, query, json!({})).await;
    assert_eq!(data["securities"]["pageInfo"]["hasNextPage"], false, "one page holds every stock");
    let nodes = data["securities"]["nodes"].as_array().unwrap();
    assert!(nodes.len() > 50, "the catalog's stocks");
    nodes
        .iter()
        .map(|s| {
            let region = Region::of(AssetClass::Stock, s["region"].as_str().unwrap()).unwrap();
            (s["symbol"].as_str().unwrap().to_owned(), region)
        })
        .collect()
}

/// A deterministic spread of past dates from 2006 to today, different for each `i` and `k`.
pub fn spread(i: usize, k: usize) -> NaiveDate {
    let start = NaiveDate::from_ymd_opt(2006, 1, 1).unwrap();
    let span = (Utc::now().date_naive() - start).num_days() as usize;
    start + Days::new(((i * 7_919 + k * 104_729) % span) as u64)
}

pub const FUNDAMENTALS: &str = "query($s: String!, $from: Date!, $to: Date!, $first: Int, $after: String) {
  security(symbol: $s) { fundamentals(from: $from, to: $to, first: $first, after: $after) {
    nodes { date price eps pe pb dividendYield marketCap currency }
    edges { cursor }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";

/// One page of `fundamentals`.
pub async fn page(
    app: &TestApp,
    symbol: &str,
    from: NaiveDate,
    to: NaiveDate,
    first: Option<i64>,
    after: Option<&str>,
) -> Value {
    let vars = json!({ "s": symbol, "from": from.to_string(), "to": to.to_string(), "first": first, "after": after });
    app.data(None, FUNDAMENTALS, vars).await["security"]["fundamentals"].clone()
}

async fn dividends(app: &TestApp, symbol: &str) -> Vec<Value> {
    let query = "query($s: String!) { security(symbol: $s) { corporateActions { kind exDate splitFrom splitTo amount currency } } }";
    app.data(None, query, json!({ "s": symbol })).await["security"]["corporateActions"].as_array().unwrap().clone()
}

/// The year's cash dividends up to `day`, in the shares of `day` (the stated definition).
fn trailing(actions: &[Value], day: NaiveDate, currency: &str) -> Decimal {
    let year_ago = day.with_year(day.year() - 1).unwrap_or(day - Days::new(365));
    let mut total = Decimal::ZERO;
    for dividend in actions.iter().filter(|a| a["kind"] == "DIVIDEND" && a["currency"] == currency) {
        let ex = date(&dividend["exDate"]);
        if ex <= year_ago || ex > day {
            continue;
        }
        let mut amount = dec(&dividend["amount"]);
        for split in actions.iter().filter(|a| a["kind"] == "SPLIT") {
            let on = date(&split["exDate"]);
            if on > ex && on <= day {
                amount = amount * dec(&split["splitFrom"]) / dec(&split["splitTo"]);
            }
        }
        total += amount;
    }
    total
}

/// Over every stock and three windows each: the scale of each figure, and the relation it
/// states, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_derived_figure_has_its_fixed_scale_and_stated_rounding() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let (mut points, mut with_pe, mut with_yield) = (0, 0, 0);
    for (i, (symbol, region)) in stocks(&app).await.iter().enumerate() {
        let actions = dividends(&app, symbol).await;
        for k in 0..3 {
            let to = spread(i, k);
            let nodes =
                page(&app, symbol, to - Days::new(20), to, None, None).await["nodes"].as_array().unwrap().clone();
            for p in &nodes {
                let day = date(&p["date"]);
                assert!(calendar::is_trading_day(*region, day), "{symbol} {day}: a trading day only");
                let (price, eps) = (dec(&p["price"]), dec(&p["eps"]));
                if eps > Decimal::ZERO {
                    assert_eq!(places(&p["pe"]), 2, "{symbol}: {p}");
                    assert_eq!(dec(&p["pe"]), fixed(price / eps, 2), "{symbol}: pe = price / eps, half away: {p}");
                    with_pe += 1;
                } else {
                    assert!(p["pe"].is_null(), "no P/E without earnings: {p}");
                }
                assert_eq!(places(&p["pb"]), 2, "{symbol}: {p}");
                assert_eq!(places(&p["marketCap"]), 0, "{symbol}: {p}");
                assert_eq!(places(&p["dividendYield"]), 2, "{symbol}: {p}");
                let paid = trailing(&actions, day, p["currency"].as_str().unwrap());
                let expected = fixed(paid * Decimal::ONE_HUNDRED / price, 2);
                assert_eq!(dec(&p["dividendYield"]), expected, "{symbol}: the year's dividends over price: {p}");
                with_yield += usize::from(paid > Decimal::ZERO);
                points += 1;
            }
        }
    }
    assert!(
        points > 1_500 && with_pe > 1_000 && with_yield > 500,
        "{points} points, {with_pe} P/E, {with_yield} yields"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_percent_has_four_places_half_away_from_zero() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let mut symbols: Vec<String> = stocks(&app).await.into_iter().map(|(s, _)| s).collect();
    symbols.extend(["FX:EURUSD", "FX:USDJPY", "CRYPTO:BTCUSDT", "IDX:SPX"].map(String::from));
    let query = "query($s: [String!]!) { quotes(symbols: $s) { symbol last prevClose change changePercent } }";
    for _ in 0..3 {
        let quotes = app.data(None, query, json!({ "s": symbols })).await["quotes"].as_array().unwrap().clone();
        assert_eq!(quotes.len(), symbols.len());
        for q in &quotes {
            let (last, prev) = (dec(&q["last"]), dec(&q["prevClose"]));
            assert_eq!(places(&q["changePercent"]), 4, "{q}");
            assert_eq!(dec(&q["changePercent"]), fixed((last - prev) * Decimal::ONE_HUNDRED / prev, 4), "{q}");
        }
    }
}

/// Every bar of an adjusted series has four decimals (the bars no ex-date moves too), and
/// adjusted volumes of whole shares stay whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjusted_prices_have_four_places_in_every_bar() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let query = "query($s: String!, $i: KlineInterval!, $before: DateTime, $adjust: KlineAdjust) {
      klines(symbol: $s, interval: $i, limit: 60, before: $before, adjust: $adjust) { open high low close volume } }";
    let mut bars = 0;
    for (i, (symbol, _)) in stocks(&app).await.iter().enumerate().step_by(3) {
        for (k, interval) in ["ONE_DAY", "ONE_WEEK", "ONE_MONTH"].into_iter().enumerate() {
            let before = format!("{}T00:00:00Z", spread(i, k));
            for adjust in ["FORWARD", "BACKWARD"] {
                let vars = json!({ "s": symbol, "i": interval, "before": before, "adjust": adjust });
                let series = app.data(None, query, vars.clone()).await["klines"].as_array().unwrap().clone();
                let raw_vars = json!({ "s": symbol, "i": interval, "before": before, "adjust": "NONE" });
                let raw = app.data(None, query, raw_vars).await["klines"].as_array().unwrap().clone();
                assert_eq!(series.len(), raw.len(), "{vars}");
                for (bar, raw) in series.iter().zip(&raw) {
                    for field in ["open", "high", "low", "close"] {
                        assert_eq!(places(&bar[field]), 4, "{symbol} {interval} {adjust}: {bar}");
                    }
                    assert_eq!(places(&bar["volume"]), places(&raw["volume"]), "{symbol} {interval} {adjust}: {bar}");
                    bars += 1;
                }
            }
        }
    }
    assert!(bars > 3_000, "{bars} bars");
}
