//! Delayed quotes and klines on a controlled clock: a market service over the simulated market,
//! both on one clock the test moves, behind the real schema, asked as two callers (a `basic`
//! plan, which has Hong Kong delayed by 15 minutes, and a `pro` one, real-time everywhere).
//!
//! The simulated market is a pure function of the clock, so "what a real-time caller saw 15
//! minutes ago" can be asked directly: a second service whose clock is 15 minutes behind.
//! Nothing sleeps.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use finql::{
    config::Plans,
    graphql::{ClientInfo, RequestContext},
    identity::{Credentials, KeyGrant, Principal, Scopes},
    market::{MarketConfig, MarketService, health::SourceHealth},
    reference::ReferenceService,
    schema::{FinqlSchema, build_schema},
    sources::simulated::SimulatedMarket,
};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};

/// A market service and schema on a clock the test sets (seconds since the epoch).
struct Market {
    clock: Arc<AtomicI64>,
    schema: FinqlSchema,
    service: MarketService,
}

impl Market {
    fn new(app: &TestApp) -> Self {
        let clock = Arc::new(AtomicI64::new(0));
        let read = {
            let clock = clock.clone();
            move || DateTime::from_timestamp(clock.load(Ordering::SeqCst), 0).unwrap()
        };
        let config = MarketConfig {
            // Every request sees the source as it is at the clock's time.
            quote_ttl: Duration::from_millis(1),
            max_stale: Duration::from_secs(1),
            upstream_budget: Duration::from_secs(10),
        };
        let service = MarketService::new(
            Arc::new(SimulatedMarket::with_clock(read.clone())),
            None,
            None,
            ReferenceService::new(app.state.db.clone()),
            config,
            SourceHealth::new(Vec::new()),
        )
        .with_clock(Arc::new(read));
        let schema = build_schema(&app.state.config.limits)
            .data(service.clone())
            .data(ReferenceService::new(app.state.db.clone()))
            .finish();
        Self { clock, schema, service }
    }

    fn set(&self, at: &str) {
        self.clock.store(at.parse::<DateTime<Utc>>().unwrap().timestamp(), Ordering::SeqCst);
    }

    async fn ask(&self, plan: &str, query: &str) -> Value {
        let key = KeyGrant { id: uuid::Uuid::nil(), prefix: "test".into(), scopes: Scopes::ALL, rate: None };
        let principal = Principal {
            credentials: Credentials::ApiKey(key),
            tenant: None,
            role: None,
            plan: Some(Plans::builtin().get(plan).unwrap().clone()),
        };
        let request = async_graphql::Request::new(query).data(RequestContext::new(principal, ClientInfo::default()));
        let request = finql::market::graphql::attach_loaders(request, &self.service);
        let response = serde_json::to_value(self.schema.execute(request).await).unwrap();
        assert!(response.get("errors").is_none(), "{response}");
        response["data"].clone()
    }
}

const QUOTE: &str = "{ quote(symbol: \"700.HK\") { last open high low prevClose volume turnover timestamp delayed } }";

/// The fields a delayed quote shares with the real-time quote of its moment.
fn prices(quote: &Value) -> Value {
    json!([quote["last"], quote["open"], quote["high"], quote["low"], quote["prevClose"], quote["volume"]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_quote_is_the_real_time_quote_of_fifteen_minutes_ago() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let (now, then) = (Market::new(&app), Market::new(&app));
    // Hong Kong in session (11:00 local), then a minute later, then before the open (09:40
    // local: fifteen minutes earlier the market had not opened, so the quote is the last
    // session's, as a real-time one then was).
    for (at, fifteen_ago) in [
        ("2026-11-24T03:00:00Z", "2026-11-24T02:45:00Z"),
        ("2026-11-24T03:01:00Z", "2026-11-24T02:46:00Z"),
        ("2026-11-24T01:40:00Z", "2026-11-24T01:25:00Z"),
    ] {
        now.set(at);
        then.set(fifteen_ago);
        let delayed = now.ask("basic", QUOTE).await["quote"].clone();
        let realtime_now = now.ask("pro", QUOTE).await["quote"].clone();
        let realtime_then = then.ask("pro", QUOTE).await["quote"].clone();
        assert_eq!(delayed["delayed"], true, "{delayed}");
        assert_eq!(realtime_now["delayed"], false);
        assert_eq!(prices(&delayed), prices(&realtime_then), "at {at}: delayed {delayed} vs then {realtime_then}");
        let stamp: DateTime<Utc> = delayed["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(stamp <= fifteen_ago.parse::<DateTime<Utc>>().unwrap(), "at {at}: {delayed}");
        if at != "2026-11-24T01:40:00Z" {
            assert_ne!(prices(&delayed), prices(&realtime_now), "in session, the price moved in 15 minutes");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_klines_end_fifteen_minutes_ago() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let market = Market::new(&app);
    market.set("2026-11-24T03:00:30Z");
    let klines = "{ klines(symbol: \"700.HK\", interval: ONE_MINUTE, limit: 3) { time } }";
    let times = |data: Value| -> Vec<String> {
        data["klines"].as_array().unwrap().iter().map(|bar| bar["time"].as_str().unwrap().to_owned()).collect()
    };
    // The last bar a delayed caller sees ends at 02:45 (03:00:30 - 15 min = 02:45:30).
    assert_eq!(
        times(market.ask("basic", klines).await),
        ["2026-11-24T02:42:00.000000Z", "2026-11-24T02:43:00.000000Z", "2026-11-24T02:44:00.000000Z"]
    );
    assert_eq!(times(market.ask("pro", klines).await).last().unwrap(), "2026-11-24T03:00:00.000000Z");
    market.set("2026-11-24T03:01:00Z");
    assert_eq!(times(market.ask("basic", klines).await).last().unwrap(), "2026-11-24T02:45:00.000000Z");
}
