//! Several replicas sharing quotes through Redis (`market::shared_cache`). Runs when
//! `TEST_REDIS_URL` is set (CI sets it); passes trivially, saying so, otherwise.

use std::time::Duration;

use serde_json::json;

use crate::{
    helpers::*,
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

const QUOTES: &str = "query($s: [String!]!) { quotes(symbols: $s) { symbol last stale } }";

async fn replica(fake: &FakeItick, redis: &str, namespace: &str, quote_ttl_ms: &str) -> TestApp {
    let base = fake.base_url();
    spawn_app(
        Backend::Sqlite,
        &[
            ("FINQL_MARKET_SOURCE", "itick"),
            ("ITICK_BASE_URL", base.as_str()),
            ("ITICK_TOKEN", TOKEN),
            ("ITICK_MAX_RETRIES", "0"),
            ("REDIS_URL", redis),
            ("FINQL_CACHE_NAMESPACE", namespace),
            ("FINQL_QUOTE_TTL_MS", quote_ttl_ms),
        ],
    )
    .await
    .unwrap()
}

fn quote_calls(fake: &FakeItick) -> usize {
    fake.requests().iter().filter(|(path, _)| path.ends_with("/quotes") || path.ends_with("/quote")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_fetched_by_one_replica_is_served_by_another() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let fake = FakeItick::start().await;
    let first = replica(&fake, &redis, &namespace, "60000").await;
    let second = replica(&fake, &redis, &namespace, "60000").await;
    let a = first.data(None, QUOTES, json!({ "s": ["AAPL.US", "700.HK"] })).await;
    assert_eq!(quote_calls(&fake), 2, "one call per region");
    let b = second.data(None, QUOTES, json!({ "s": ["AAPL.US", "700.HK"] })).await;
    assert_eq!(a, b, "the same quotes, exactly");
    assert_eq!(quote_calls(&fake), 2, "the second replica made no upstream call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_known_quote_outlives_the_replica_that_fetched_it() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let fake = FakeItick::start().await;
    let first = replica(&fake, &redis, &namespace, "1").await;
    let fresh = first.data(None, QUOTES, json!({ "s": ["MSFT.US"] })).await;
    first.shutdown().await.unwrap();
    fake.set_down(true);
    // Real time: the quote cache's TTL (moka's own clock) is what must pass; nothing shows it.
    tokio::time::sleep(Duration::from_millis(20)).await; // let the 1 ms quote TTL pass
    let second = replica(&fake, &redis, &namespace, "1").await;
    let stale = second.data(None, QUOTES, json!({ "s": ["MSFT.US"] })).await;
    assert_eq!(stale["quotes"][0]["stale"], true);
    assert_eq!(stale["quotes"][0]["last"], fresh["quotes"][0]["last"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_stops_start_up_with_a_clear_message() {
    let config = finql::Config::from_lookup(|key| match key {
        "FINQL_ADDR" => Some("127.0.0.1:0".into()),
        "DATABASE_URL" => Some("sqlite::memory:".into()),
        "JWT_SECRET" => Some(JWT_SECRET.into()),
        "REDIS_URL" => Some("redis://127.0.0.1:1".into()),
        _ => None,
    })
    .unwrap();
    let err = finql::App::build(config).await.err().expect("start-up fails");
    assert!(format!("{err:#}").contains("Redis"), "{err:#}");
}
