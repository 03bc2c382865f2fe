//! Configuration parsing: defaults, overrides, and refusals that name the variable.

use super::*;
use std::collections::HashMap;

fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn production_refuses_missing_or_short_secret() {
    let err = config(&[("FINQL_ENV", "production")]).unwrap_err();
    assert!(err.to_string().contains("JWT_SECRET is not set"), "{err}");
    let err = config(&[("FINQL_ENV", "production"), ("JWT_SECRET", "short")]).unwrap_err();
    assert!(err.to_string().contains("too short"), "{err}");
    let ok = config(&[("FINQL_ENV", "production"), ("JWT_SECRET", &"x".repeat(32))]).unwrap();
    assert!(!ok.limits.introspection);
}

#[test]
fn development_generates_a_private_secret_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir_str = dir.path().to_str().unwrap();
    let first = config(&[("FINQL_DATA_DIR", dir_str)]).unwrap();
    let second = config(&[("FINQL_DATA_DIR", dir_str)]).unwrap();
    assert_eq!(first.auth.jwt_secret.expose(), second.auth.jwt_secret.expose());
    assert!(first.warnings.iter().any(|w| w.contains("JWT_SECRET is not set")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt_secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(first.database.url.expose().starts_with("sqlite://"));
}

#[test]
fn market_sources_form_a_fallback_order() {
    let secret = "x".repeat(32);
    let with_source = |sources: &str| config(&[("JWT_SECRET", secret.as_str()), ("FINQL_MARKET_SOURCE", sources)]);
    let chosen = with_source("itick, simulated").unwrap();
    assert_eq!(chosen.market.sources, [MarketSourceKind::Itick, MarketSourceKind::Simulated]);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap();
    assert_eq!(default.market.sources, [MarketSourceKind::Simulated]);
    assert!(with_source("itick,itick").is_err());
    let err = with_source("bloomberg").unwrap_err();
    assert!(err.to_string().contains("FINQL_MARKET_SOURCE"), "{err}");
}

#[test]
fn live_replicas_have_a_lease_and_a_unique_id() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str()), ("HOSTNAME", "web-1")]).unwrap();
    assert_eq!(default.live_replicas.lease_ttl, Duration::from_millis(3000));
    assert!(default.live_replicas.replica_id.starts_with("web-1-"), "{}", default.live_replicas.replica_id);
    let other = config(&[("JWT_SECRET", secret.as_str()), ("HOSTNAME", "web-1")]).unwrap();
    assert_ne!(default.live_replicas.replica_id, other.live_replicas.replica_id);
    let set =
        config(&[("JWT_SECRET", secret.as_str()), ("FINQL_LIVE_LEASE_MS", "500"), ("FINQL_REPLICA_ID", "a")]).unwrap();
    assert_eq!(set.live_replicas.lease_ttl, Duration::from_millis(500));
    assert_eq!(set.live_replicas.replica_id, "a");
    let err = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_LIVE_LEASE_MS", "5")]).unwrap_err();
    assert!(err.to_string().contains("FINQL_LIVE_LEASE_MS"), "{err}");
}

#[test]
fn throttling_defaults_overrides_and_off() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap();
    assert_eq!(default.throttle, ThrottleSettings::default());
    assert!(default.trusted_proxies.is_empty());
    let set = config(&[
        ("JWT_SECRET", secret.as_str()),
        ("FINQL_LOGIN_FREE_FAILURES", "3"),
        ("FINQL_LOGIN_BACKOFF_BASE_MS", "200"),
        ("FINQL_LOGIN_PER_ADDR_PER_MIN", "0"),
        ("FINQL_SIGNUP_PER_ADDR_PER_HOUR", "10"),
        ("FINQL_SIGNUP_PER_ADDR_BURST", "2"),
        ("FINQL_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
    ])
    .unwrap();
    let backoff = set.throttle.login_backoff.unwrap();
    assert_eq!((backoff.free, backoff.base), (3, Duration::from_millis(200)));
    assert_eq!(set.throttle.login_per_address, None);
    assert_eq!(set.throttle.signup_per_address, Quota::per(Duration::from_secs(3600), 10, 2));
    assert!(!set.trusted_proxies.is_empty());
    let off = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_LOGIN_BACKOFF_BASE_MS", "0")]).unwrap();
    assert_eq!(off.throttle.login_backoff, None);
    let err = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_TRUSTED_PROXIES", "10.0.0.0/40")]).unwrap_err();
    assert!(err.to_string().contains("FINQL_TRUSTED_PROXIES"), "{err}");
}

#[test]
fn connection_limits_have_defaults_and_take_fractions() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap().connections;
    assert_eq!(default.header_read_timeout, Duration::from_millis(5000));
    assert_eq!(default.idle_timeout, Duration::from_secs(60));
    assert_eq!((default.max_connections, default.reserve), (10_000, 32));
    let set = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_IDLE_TIMEOUT_SECS", "0.25")]).unwrap();
    assert_eq!(set.connections.idle_timeout, Duration::from_millis(250));
    for (key, value) in [
        ("FINQL_IDLE_TIMEOUT_SECS", "0"),
        ("FINQL_IDLE_TIMEOUT_SECS", "-1"),
        ("FINQL_IDLE_TIMEOUT_SECS", "NaN"),
        ("FINQL_HEADER_READ_TIMEOUT_MS", "0"),
        ("FINQL_MAX_CONNECTIONS", "0"),
    ] {
        let err = config(&[("JWT_SECRET", secret.as_str()), (key, value)]).unwrap_err();
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn waits_on_dependencies_are_bounded_by_default_and_configurable() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap();
    let r = &default.resilience;
    assert_eq!(r.upstream_budget, Duration::from_millis(2000));
    assert_eq!(r.redis_timeout, Duration::from_millis(100));
    assert_eq!((r.breaker_failures, r.breaker_cool_down), (5, Duration::from_millis(5000)));
    assert_eq!(default.live.stale_after, Duration::from_millis(10_000));
    let set = config(&[
        ("JWT_SECRET", secret.as_str()),
        ("FINQL_UPSTREAM_BUDGET_MS", "750"),
        ("FINQL_REDIS_TIMEOUT_MS", "20"),
        ("FINQL_BREAKER_FAILURES", "2"),
        ("FINQL_BREAKER_COOLDOWN_MS", "300"),
        ("FINQL_LIVE_STALE_MS", "1500"),
    ])
    .unwrap();
    assert_eq!(set.resilience.upstream_budget, Duration::from_millis(750));
    assert_eq!(set.resilience.breaker().failures, 2);
    assert_eq!(set.live.stale_after, Duration::from_millis(1500));
    for zero in ["FINQL_UPSTREAM_BUDGET_MS", "FINQL_REDIS_TIMEOUT_MS", "FINQL_BREAKER_FAILURES", "FINQL_LIVE_STALE_MS"]
    {
        let err = config(&[("JWT_SECRET", secret.as_str()), (zero, "0")]).unwrap_err();
        assert!(err.to_string().contains(zero), "{err}");
    }
}

#[test]
fn query_limits_and_the_request_deadline_have_defaults_and_overrides() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap();
    assert_eq!(
        (default.limits.max_fields, default.limits.max_tokens, default.limits.request_timeout),
        (1000, 10_000, Duration::from_secs(10))
    );
    let set = config(&[
        ("JWT_SECRET", secret.as_str()),
        ("FINQL_MAX_FIELDS", "50"),
        ("FINQL_MAX_TOKENS", "500"),
        ("FINQL_REQUEST_TIMEOUT_MS", "250"),
    ])
    .unwrap();
    assert_eq!(
        (set.limits.max_fields, set.limits.max_tokens, set.limits.request_timeout),
        (50, 500, Duration::from_millis(250))
    );
    let err = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_REQUEST_TIMEOUT_MS", "0")]).unwrap_err();
    assert!(err.to_string().contains("FINQL_REQUEST_TIMEOUT_MS"), "{err}");
}

#[test]
fn jwt_leeway_defaults_small_and_is_capped() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap();
    assert_eq!(default.auth.leeway, Duration::from_secs(5));
    let zero = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_JWT_LEEWAY_SECS", "0")]).unwrap();
    assert_eq!(zero.auth.leeway, Duration::ZERO);
    let err = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_JWT_LEEWAY_SECS", "31")]).unwrap_err();
    assert!(err.to_string().contains("FINQL_JWT_LEEWAY_SECS"), "{err}");
}

#[test]
fn bad_values_name_the_variable() {
    let err = config(&[("JWT_SECRET", &"x".repeat(32)), ("FINQL_MAX_BATCH", "lots")]).unwrap_err();
    assert!(err.to_string().contains("FINQL_MAX_BATCH"), "{err}");
    assert!(format!("{:?}", Secret::new("hunter2")).contains("****"));
}

#[test]
fn delayed_live_data_is_bounded_by_default_and_configurable() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap();
    assert_eq!((default.live.delay_slots, default.live.delay_ticks), (180, 4096));
    let set =
        config(&[("JWT_SECRET", secret.as_str()), ("FINQL_LIVE_DELAY_SLOTS", "60"), ("FINQL_LIVE_DELAY_TICKS", "100")])
            .unwrap();
    assert_eq!((set.live.delay_slots, set.live.delay_ticks), (60, 100));
    for zero in ["FINQL_LIVE_DELAY_SLOTS", "FINQL_LIVE_DELAY_TICKS"] {
        let err = config(&[("JWT_SECRET", secret.as_str()), (zero, "0")]).unwrap_err();
        assert!(err.to_string().contains(zero), "{err}");
    }
}

#[test]
fn the_database_pool_is_warm_by_default_and_its_wait_bounded() {
    let secret = "x".repeat(32);
    let default = config(&[("JWT_SECRET", secret.as_str())]).unwrap().database;
    assert_eq!((default.max_connections, default.min_connections), (16, 16));
    assert_eq!(default.acquire_timeout, Duration::from_millis(5000));
    let set = config(&[
        ("JWT_SECRET", secret.as_str()),
        ("FINQL_DB_MAX_CONNECTIONS", "8"),
        ("FINQL_DB_MIN_CONNECTIONS", "2"),
        ("FINQL_DB_ACQUIRE_TIMEOUT_MS", "250"),
    ])
    .unwrap()
    .database;
    assert_eq!((set.max_connections, set.min_connections, set.acquire_timeout), (8, 2, Duration::from_millis(250)));
    // A smaller pool is warm at its own size.
    let small = config(&[("JWT_SECRET", secret.as_str()), ("FINQL_DB_MAX_CONNECTIONS", "4")]).unwrap().database;
    assert_eq!(small.min_connections, 4);
    for (name, value) in
        [("FINQL_DB_MAX_CONNECTIONS", "0"), ("FINQL_DB_ACQUIRE_TIMEOUT_MS", "0"), ("FINQL_DB_MIN_CONNECTIONS", "17")]
    {
        let err = config(&[("JWT_SECRET", secret.as_str()), (name, value)]).unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}
