//! The iTick adapter (`finql::sources::itick::ItickSource`) driven directly, as `MarketSource`,
//! against the fake iTick REST server: batching, answer shapes, exact decimals, retries and what
//! is not retried, timeouts, envelope errors, paging, validation, prefixes per asset class, and
//! the client-side rate limit.

use std::{str::FromStr, time::Duration};

use chrono::{TimeZone, Utc};
use finql::{
    market::{Instrument, Interval, MarketSource, SourceError, TickDirection},
    reference::{Symbol, service::AssetClass},
    sources::itick::{ItickConfig, ItickSource},
};
use rust_decimal::Decimal;

use super::fake_rest::{FakeItick, QuotesShape};

fn instrument(symbol: &str, class: AssetClass, region: &str, code: &str) -> Instrument {
    Instrument {
        symbol: Symbol::parse(symbol).unwrap(),
        asset_class: class,
        region: region.into(),
        code: code.into(),
        currency: "USD".into(),
        market: finql::market::calendar::Region::of(class, region).unwrap_or(finql::market::calendar::Region::Us),
        listed_at: None,
    }
}

fn us(code: &str) -> Instrument {
    instrument(&format!("{code}.US"), AssetClass::Stock, "US", code)
}

async fn setup(tweak: impl FnOnce(&mut ItickConfig)) -> (FakeItick, ItickSource) {
    let fake = FakeItick::start().await;
    let mut config = fake.config();
    tweak(&mut config);
    let source = ItickSource::new(config).expect("adapter builds");
    (fake, source)
}

#[tokio::test]
async fn quotes_are_batched_in_one_call() {
    let (fake, source) = setup(|_| {}).await;
    fake.set_unknown("NOPE");
    let instruments = [us("AAPL"), us("MSFT"), us("NVDA"), us("NOPE")];
    let quotes = source.quotes(&instruments).await.unwrap();
    assert_eq!(fake.total_calls(), 1);
    assert_eq!(fake.calls("/stock/quotes"), 1);
    let (_, query) = &fake.requests()[0];
    assert_eq!(query["region"], "US");
    assert_eq!(query["codes"], "AAPL,MSFT,NVDA,NOPE");
    let symbols: Vec<&str> = quotes.iter().map(|q| q.symbol.as_str()).collect();
    assert_eq!(symbols, ["AAPL.US", "MSFT.US", "NVDA.US"], "unknown codes are simply absent");
    for quote in &quotes {
        let code = quote.symbol.as_str().trim_end_matches(".US");
        assert_eq!(quote.last, fake.price(code));
        assert_eq!(quote.source, "itick");
        assert!(quote.low <= quote.open && quote.open <= quote.high);
        assert!((Utc::now() - quote.timestamp).num_seconds().abs() < 60);
    }
    assert_eq!(source.rejected(), 0);
}

#[tokio::test]
async fn quotes_tolerate_answer_shapes() {
    let (fake, source) = setup(|_| {}).await;
    for shape in [QuotesShape::Map, QuotesShape::MapWithRegion, QuotesShape::Array] {
        fake.set_quotes_shape(shape);
        let brk = instrument("BRK-B.US", AssetClass::Stock, "US", "BRK.B");
        let quotes = source.quotes(&[us("AAPL"), brk]).await.unwrap();
        assert_eq!(quotes.len(), 2, "{shape:?}");
        assert_eq!(quotes[1].last, fake.price("BRK.B"), "{shape:?}");
    }
}

#[tokio::test]
async fn decimals_stay_exact() {
    let (fake, source) = setup(|_| {}).await;
    fake.set_price("AAPL", Decimal::from_str("189.98").unwrap());
    fake.set_price("BTCUSDT", Decimal::from_str("64123.45678912").unwrap());
    let quotes = source.quotes(&[us("AAPL")]).await.unwrap();
    assert_eq!(quotes[0].last.to_string(), "189.98");
    let btc = instrument("CRYPTO:BTCUSDT", AssetClass::Crypto, "BA", "BTCUSDT");
    let ticks = source.ticks(&btc, 10).await.unwrap();
    assert_eq!(ticks.len(), 1, "iTick's REST API gives the latest trade only");
    assert_eq!(ticks[0].price.to_string(), "64123.45678912");
    assert_eq!(ticks[0].direction, Some(TickDirection::Buy));
    assert_eq!(fake.calls("/crypto/tick"), 1);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let (fake, source) = setup(|_| {}).await;
    fake.fail_next(1, 500);
    assert_eq!(source.quotes(&[us("AAPL")]).await.unwrap().len(), 1);
    assert_eq!(fake.calls("/stock/quotes"), 2);
}

#[tokio::test]
async fn rate_limited_answers_are_retried_after_the_hint() {
    let (fake, source) = setup(|_| {}).await;
    fake.fail_next(2, 429);
    let started = std::time::Instant::now();
    assert_eq!(source.quotes(&[us("AAPL")]).await.unwrap().len(), 1);
    assert_eq!(fake.calls("/stock/quotes"), 3);
    // `Retry-After: 0` means now, not a backoff; generous bound against slow machines.
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn rejected_token_is_not_retried() {
    let (fake, source) = setup(|c| c.token = finql::config::Secret::new("wrong-token".into())).await;
    let err = source.quotes(&[us("AAPL")]).await.unwrap_err();
    assert!(matches!(&err, SourceError::Unauthorized(m) if m.contains("ITICK_TOKEN")), "{err:?}");
    assert_eq!(fake.total_calls(), 1);

    let (fake, source) = setup(|_| {}).await;
    fake.fail_next(1, 403);
    assert!(matches!(source.quotes(&[us("AAPL")]).await, Err(SourceError::Unauthorized(_))));
    assert_eq!(fake.total_calls(), 1);
}

#[tokio::test]
async fn down_upstream_is_unavailable_after_the_retries() {
    let (fake, source) = setup(|c| c.max_retries = 2).await;
    fake.set_down(true);
    let err = source.quotes(&[us("AAPL")]).await.unwrap_err();
    assert!(matches!(&err, SourceError::Unavailable(m) if m.contains("503")), "{err:?}");
    assert_eq!(fake.total_calls(), 3, "one attempt and two retries");
    fake.set_down(false);
    assert_eq!(source.quotes(&[us("AAPL")]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn slow_upstream_times_out() {
    let (fake, source) = setup(|c| {
        c.timeout = Duration::from_millis(300);
        c.max_retries = 1;
    })
    .await;
    fake.set_delay(Duration::from_secs(2));
    let err = source.quotes(&[us("AAPL")]).await.unwrap_err();
    assert!(matches!(&err, SourceError::Unavailable(m) if m.contains("timed out")), "{err:?}");
    assert_eq!(fake.total_calls(), 2);
}

#[tokio::test]
async fn envelope_errors_are_mapped() {
    let (fake, source) = setup(|_| {}).await;
    let aapl = us("AAPL");
    fake.fail_envelope_next(1, 1, "E001 not found this produce");
    assert!(matches!(source.klines(&aapl, Interval::OneDay, None, 10).await, Err(SourceError::NotFound(_))));
    fake.fail_envelope_next(1, 1, "E002 auth failed");
    assert!(matches!(source.klines(&aapl, Interval::OneDay, None, 10).await, Err(SourceError::Unauthorized(_))));
    fake.fail_envelope_next(1, 500, "something broke");
    let err = source.klines(&aapl, Interval::OneDay, None, 10).await.unwrap_err();
    assert!(matches!(&err, SourceError::Unavailable(m) if m.contains("something broke")), "{err:?}");
    assert_eq!(fake.total_calls(), 3, "envelope errors are not retried");
    fake.fail_envelope_next(1, 429, "too many requests");
    assert_eq!(source.klines(&aapl, Interval::OneDay, None, 10).await.unwrap().len(), 10);
    assert_eq!(fake.total_calls(), 5, "an envelope rate limit is retried");
}

#[tokio::test]
async fn unknown_instruments_are_not_found() {
    let (fake, source) = setup(|_| {}).await;
    fake.set_unknown("NOPE");
    let nope = us("NOPE");
    assert!(matches!(source.klines(&nope, Interval::OneDay, None, 10).await, Err(SourceError::NotFound(_))));
    assert!(matches!(source.order_book(&nope, 5).await, Err(SourceError::NotFound(_))));
    assert!(matches!(source.ticks(&nope, 1).await, Err(SourceError::NotFound(_))));
    assert!(source.quotes(&[nope]).await.unwrap().is_empty());
}

#[tokio::test]
async fn klines_oldest_first_and_paged() {
    let (fake, source) = setup(|_| {}).await;
    fake.serve_klines_newest_first(true);
    let aapl = us("AAPL");
    let end = Utc.with_ymd_and_hms(2025, 6, 2, 0, 0, 0).unwrap();
    let bars = source.klines(&aapl, Interval::OneHour, Some(end), 24).await.unwrap();
    assert_eq!(bars.len(), 24);
    assert!(bars.windows(2).all(|w| w[0].time + chrono::Duration::hours(1) == w[1].time), "oldest first");
    assert_eq!(bars.last().unwrap().time, end - chrono::Duration::hours(1), "bars start before `end`");
    for bar in &bars {
        assert!(bar.low <= bar.open.min(bar.close) && bar.high >= bar.open.max(bar.close));
    }
    let (path, query) = fake.requests().pop().unwrap();
    assert_eq!(path, "/stock/kline");
    assert_eq!((query["region"].as_str(), query["code"].as_str()), ("US", "AAPL"));
    assert_eq!(query["kType"], "5");
    assert_eq!(query["limit"], "24");
    // One ms into the last bar wanted: bars up to it whether `et` is inclusive or not.
    assert_eq!(query["et"], (end - chrono::Duration::hours(1)).timestamp_millis().saturating_add(1).to_string());

    let bars = source.klines(&aapl, Interval::OneDay, None, 5000).await.unwrap();
    assert_eq!(bars.len(), 1000, "clamped to the upstream maximum");
    let (_, query) = fake.requests().pop().unwrap();
    assert_eq!(query["limit"], "1000");
    assert!(!query.contains_key("et"), "no end: upstream defaults to now");
    assert!(bars.last().unwrap().time <= Utc::now(), "includes the bar in progress, nothing later");
}

#[tokio::test]
async fn invalid_bars_are_rejected() {
    let (fake, source) = setup(|_| {}).await;
    fake.serve_invalid_bar(true);
    let bars = source.klines(&us("AAPL"), Interval::OneMinute, None, 10).await.unwrap();
    assert_eq!(bars.len(), 9);
    assert!(bars.iter().all(|b| b.high >= b.low));
    assert_eq!(source.rejected(), 1);
}

#[tokio::test]
async fn invalid_quotes_are_rejected() {
    let (fake, source) = setup(|_| {}).await;
    fake.set_price("MSFT", Decimal::ZERO);
    let quotes = source.quotes(&[us("AAPL"), us("MSFT")]).await.unwrap();
    assert_eq!(quotes.len(), 1);
    assert_eq!(quotes[0].symbol.as_str(), "AAPL.US");
    assert_eq!(source.rejected(), 1);
}

#[tokio::test]
async fn order_book_is_sorted() {
    let (fake, source) = setup(|_| {}).await;
    fake.set_price("700", Decimal::from_str("385.2").unwrap());
    let tencent = instrument("700.HK", AssetClass::Stock, "HK", "700");
    let book = source.order_book(&tencent, 5).await.unwrap();
    assert_eq!((book.bids.len(), book.asks.len()), (5, 5));
    assert!(book.bids.windows(2).all(|w| w[0].price > w[1].price), "bids best (highest) first");
    assert!(book.asks.windows(2).all(|w| w[0].price < w[1].price), "asks best (lowest) first");
    assert_eq!(book.bids[0].price.to_string(), "385.19");
    assert_eq!(book.asks[0].price.to_string(), "385.21");
    assert_eq!(book.asks[0].orders, Some(1));
    assert_eq!(fake.calls("/stock/depth"), 1);
}

#[tokio::test]
async fn asset_classes_use_their_prefixes() {
    let (fake, source) = setup(|_| {}).await;
    let spy = instrument("SPY.US", AssetClass::Fund, "US", "SPY");
    let eurusd = instrument("FX:EURUSD", AssetClass::Forex, "GB", "EURUSD");
    let spx = instrument("IDX:SPX", AssetClass::Index, "GB", "SPX");
    let btc = instrument("CRYPTO:BTCUSDT", AssetClass::Crypto, "BA", "BTCUSDT");
    let cl = instrument("FUT:CL.US", AssetClass::Future, "US", "CL");
    assert_eq!(source.quotes(&[spy]).await.unwrap().len(), 1);
    assert_eq!(source.quotes(std::slice::from_ref(&eurusd)).await.unwrap().len(), 1);
    assert_eq!(source.klines(&spx, Interval::OneWeek, None, 3).await.unwrap().len(), 3);
    assert_eq!(source.order_book(&btc, 3).await.unwrap().bids.len(), 3);
    assert_eq!(source.ticks(&cl, 1).await.unwrap().len(), 1);
    let paths: Vec<String> = fake.requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["/fund/quotes", "/forex/quotes", "/indices/kline", "/crypto/depth", "/future/tick"]);
    assert_eq!(fake.requests()[1].1["region"], "GB");
}

#[tokio::test]
async fn mixed_batches_are_refused_without_a_call() {
    let (fake, source) = setup(|_| {}).await;
    let hk = instrument("700.HK", AssetClass::Stock, "HK", "700");
    assert!(matches!(source.quotes(&[us("AAPL"), hk]).await, Err(SourceError::Invalid(_))));
    let spy = instrument("SPY.US", AssetClass::Fund, "US", "SPY");
    assert!(matches!(source.quotes(&[us("AAPL"), spy]).await, Err(SourceError::Invalid(_))));
    assert!(source.quotes(&[]).await.unwrap().is_empty());
    assert_eq!(fake.total_calls(), 0);
}

#[tokio::test]
async fn client_side_rate_limit_fails_fast_when_the_wait_is_too_long() {
    // 1 call a minute: the second call would wait ~60 s, far beyond the 2 s timeout.
    let (fake, source) = setup(|c| c.requests_per_minute = 1).await;
    assert_eq!(source.quotes(&[us("AAPL")]).await.unwrap().len(), 1);
    let err = source.quotes(&[us("AAPL")]).await.unwrap_err();
    assert!(matches!(&err, SourceError::Unavailable(m) if m.contains("client-side rate limit")), "{err:?}");
    assert_eq!(fake.total_calls(), 1, "the limiter stopped the call before it left");
}
