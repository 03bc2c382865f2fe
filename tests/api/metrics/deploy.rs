//! The operator's files in `deploy/` against what finql exports: the alerts and the dashboard
//! name only families that exist (`finql::metrics::FAMILIES`, the freshness gauges, `process_*`),
//! and the dashboard shows every one of them. CI checks their syntax (`promtool check rules`,
//! `promtool test rules`, `python3 -m json.tool`); this catches a renamed family.

use std::{collections::BTreeSet, path::Path};

use finql::metrics::FAMILIES;

/// Families other modules own (the freshness alarm's gauges) and the process collector's.
const ELSEWHERE: &[&str] = &[
    "finql_source_last_event_age_seconds",
    "finql_source_lag_seconds",
    "finql_source_in_session",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The metric names in a PromQL expression (`finql_…`, `process_…`), histogram suffixes removed.
fn families_in(expr: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in expr.match_indices(['f', 'p']) {
        let rest = &expr[start..];
        if !(rest.starts_with("finql_") || rest.starts_with("process_")) {
            continue;
        }
        if start > 0 && expr[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|base| known(base)))
            .map_or(name.clone(), str::to_owned);
        found.insert(base);
    }
    found
}

fn known(name: &str) -> bool {
    FAMILIES.iter().any(|(family, _, _)| *family == name) || ELSEWHERE.contains(&name)
}

fn dashboard_exprs() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana/finql.json")).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("a PromQL expr").to_owned())
        .collect()
}

#[test]
fn alerts_name_only_exported_families_and_cover_the_issue() {
    let alerts = read("deploy/prometheus/alerts.yml");
    let used = families_in(&alerts);
    let unknown: Vec<&String> = used.iter().filter(|name| !known(name)).collect();
    assert!(unknown.is_empty(), "alerts.yml names families finql does not export: {unknown:?}");
    for alert in
        ["FinqlHighErrorRate", "FinqlHighLatencyP99", "FinqlSourceStale", "FinqlRateLimitStorm", "FinqlRedisDown"]
    {
        assert!(alerts.contains(&format!("alert: {alert}\n")), "alerts.yml has no {alert}");
    }
}

#[test]
fn the_dashboard_shows_every_family_and_only_those() {
    let used: BTreeSet<String> = dashboard_exprs().iter().flat_map(|expr| families_in(expr)).collect();
    let unknown: Vec<&String> = used.iter().filter(|name| !known(name)).collect();
    assert!(unknown.is_empty(), "the dashboard names families finql does not export: {unknown:?}");
    let missing: Vec<&str> = FAMILIES.iter().map(|(name, _, _)| *name).filter(|name| !used.contains(*name)).collect();
    assert!(missing.is_empty(), "the dashboard has no panel for {missing:?}");
}

#[test]
fn names_are_read_whole() {
    let found = families_in(
        "rate(finql_http_requests_total[5m]) + sum(finql_graphql_request_duration_seconds_bucket) + myfinql_x",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["finql_graphql_request_duration_seconds", "finql_http_requests_total"]
    );
}
