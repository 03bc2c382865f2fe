//! The daily rollups behind `transactionAnalytics`, against a raw aggregation: random ledgers
//! written through the API (creates, then updates that move rows between days, categories,
//! kinds, statuses and currencies, then deletes), and every figure of the analysis, over
//! ranges with whole days, cut days and none, compared with the same figures computed here
//! from the live transactions. Then the rollups are rebuilt by their migration (the backfill of
//! existing ledgers) and must answer the same.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use migration::MigratorTrait;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use super::{analytics::ANALYTICS, create_one};
use crate::helpers::*;

const CURRENCIES: [(&str, u32); 3] = [("USD", 2), ("EUR", 2), ("JPY", 0)];
const STATUSES: [&str; 3] = ["PENDING", "SUCCESS", "FAILED"];
const CATEGORIES: [Option<&str>; 4] = [None, Some("food"), Some("rent"), Some("travel")];

/// A live transaction as the test knows it: amounts in minor units of its currency.
#[derive(Clone, Debug)]
struct Tx {
    id: String,
    minor: i64,
    currency: &'static str,
    credit: bool,
    status: &'static str,
    category: Option<&'static str>,
    at: DateTime<Utc>,
}

fn digits(currency: &str) -> u32 {
    CURRENCIES.iter().find(|(c, _)| *c == currency).map(|(_, d)| *d).unwrap()
}

fn money(minor: i64, currency: &str) -> String {
    Decimal::new(minor, digits(currency)).to_string()
}

fn random_tx(rng: &mut StdRng) -> Tx {
    let (currency, digits) = CURRENCIES[rng.random_range(0..CURRENCIES.len())];
    let start = Utc.with_ymd_and_hms(2026, 10, 30, 0, 0, 0).unwrap();
    Tx {
        id: String::new(),
        minor: rng.random_range(1..50_000) * if digits == 0 { 1 } else { 1 + rng.random_range(0..3) },
        currency,
        credit: rng.random_bool(0.4),
        status: STATUSES[rng.random_range(0..STATUSES.len())],
        category: CATEGORIES[rng.random_range(0..CATEGORIES.len())],
        // Five days around a month's end, at any second.
        at: start + Duration::seconds(rng.random_range(0..5 * 86_400)),
    }
}

fn input(tx: &Tx) -> Value {
    json!({
        "amount": money(tx.minor, tx.currency),
        "currency": tx.currency,
        "kind": if tx.credit { "CREDIT" } else { "DEBIT" },
        "status": tx.status,
        "category": tx.category,
        "occurredAt": tx.at.to_rfc3339(),
    })
}

/// Writes a random ledger through the API; returns what is live at the end.
async fn random_ledger(app: &TestApp, token: &str, rng: &mut StdRng) -> Vec<Tx> {
    let mut live: Vec<Tx> = Vec::new();
    for _ in 0..60 {
        let mut tx = random_tx(rng);
        tx.id = create_one(app, token, input(&tx)).await["id"].as_str().unwrap().to_owned();
        live.push(tx);
    }
    // Updates: some fields of a random row, often moving it to another group.
    let update =
        "mutation($id: ID!, $input: UpdateTransactionInput!) { updateTransaction(id: $id, input: $input) { id } }";
    for _ in 0..30 {
        let i = rng.random_range(0..live.len());
        let next = random_tx(rng);
        let mut patch = serde_json::Map::new();
        let tx = &mut live[i];
        if rng.random_bool(0.5) {
            // A new currency comes with an amount it can hold.
            (tx.currency, tx.minor) = (next.currency, next.minor);
            patch.insert("currency".into(), json!(tx.currency));
            patch.insert("amount".into(), json!(money(tx.minor, tx.currency)));
        }
        if rng.random_bool(0.4) {
            tx.credit = next.credit;
            patch.insert("kind".into(), json!(if tx.credit { "CREDIT" } else { "DEBIT" }));
        }
        if rng.random_bool(0.4) {
            tx.status = next.status;
            patch.insert("status".into(), json!(tx.status));
        }
        if rng.random_bool(0.4) {
            tx.category = next.category;
            patch.insert("category".into(), json!(tx.category));
        }
        if rng.random_bool(0.5) {
            tx.at = next.at;
            patch.insert("occurredAt".into(), json!(tx.at.to_rfc3339()));
        }
        app.data(Some(token), update, json!({ "id": tx.id, "input": patch })).await;
    }
    let delete = "mutation($id: ID!) { deleteTransaction(id: $id) }";
    for _ in 0..12 {
        let tx = live.remove(rng.random_range(0..live.len()));
        app.data(Some(token), delete, json!({ "id": tx.id })).await;
    }
    live
}

/// Totals of a group, as the API writes them.
#[derive(Default)]
struct Sums {
    count: i64,
    credit: i64,
    debit: i64,
}

impl Sums {
    fn add(&mut self, tx: &Tx) {
        self.count += 1;
        if tx.credit { self.credit += tx.minor } else { self.debit += tx.minor }
    }

    fn json(&self, currency: &str) -> Value {
        json!({
            "count": self.count,
            "totalCredit": money(self.credit, currency),
            "totalDebit": money(self.debit, currency),
            "net": money(self.credit - self.debit, currency),
        })
    }
}

fn merged(mut key: Value, sums: Value) -> Value {
    key.as_object_mut().unwrap().extend(sums.as_object().unwrap().clone());
    key
}

/// The analysis computed from the live transactions, as `transactionAnalytics` answers it.
fn expected(
    live: &[Tx],
    currency: &'static str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    statuses: &[&str],
) -> Value {
    let in_scope = |tx: &&Tx| {
        statuses.contains(&tx.status) && from.is_none_or(|from| tx.at >= from) && to.is_none_or(|to| tx.at < to)
    };
    let txs: Vec<&Tx> = live.iter().filter(in_scope).filter(|tx| tx.currency == currency).collect();
    let mut total = Sums::default();
    let mut days: BTreeMap<String, Sums> = BTreeMap::new();
    let mut months: BTreeMap<String, Sums> = BTreeMap::new();
    let mut categories: BTreeMap<Option<&str>, Sums> = BTreeMap::new();
    for tx in &txs {
        total.add(tx);
        days.entry(tx.at.format("%Y-%m-%d").to_string()).or_default().add(tx);
        months.entry(tx.at.format("%Y-%m").to_string()).or_default().add(tx);
        categories.entry(tx.category).or_default().add(tx);
    }
    let average = (total.count > 0).then(|| {
        let sum = Decimal::new(total.credit + total.debit, digits(currency));
        (sum / Decimal::from(total.count))
            .round_dp_with_strategy(digits(currency), RoundingStrategy::MidpointAwayFromZero)
            .to_string()
    });
    // Most first; ties by name, uncategorised last.
    let mut by_category: Vec<(Option<&str>, Sums)> = categories.into_iter().collect();
    by_category.sort_by(|(a, x), (b, y)| y.count.cmp(&x.count).then_with(|| (a.is_none(), a).cmp(&(b.is_none(), b))));
    let busiest = days
        .iter()
        .rev()
        .max_by_key(|(_, sums)| sums.count)
        .map(|(day, sums)| json!({ "date": day, "count": sums.count }));
    let mut currencies: Vec<&str> = live.iter().filter(in_scope).map(|tx| tx.currency).collect();
    currencies.sort();
    currencies.dedup();
    let totals = total.json(currency);
    json!({
        "currency": currency,
        "count": total.count,
        "averageAmount": average,
        "totalCredit": totals["totalCredit"],
        "totalDebit": totals["totalDebit"],
        "net": totals["net"],
        "busiestDay": busiest,
        "byDay": days.iter().map(|(day, s)| merged(json!({ "date": day }), s.json(currency))).collect::<Vec<_>>(),
        "byMonth": months.iter().map(|(month, s)| merged(json!({ "month": month }), s.json(currency))).collect::<Vec<_>>(),
        "byCategory": by_category.iter().map(|(c, s)| merged(json!({ "category": c }), s.json(currency))).collect::<Vec<_>>(),
        "currencies": currencies,
    })
}

/// A range's end: an instant, or open.
type Bound = Option<DateTime<Utc>>;

/// Ranges with whole days only, cut days at either end, within one day, across one midnight,
/// open at either end, empty, and none.
fn ranges() -> Vec<(Bound, Bound)> {
    let t = |raw: &str| Some(raw.parse::<DateTime<Utc>>().unwrap());
    vec![
        (None, None),
        (t("2026-10-31T00:00:00Z"), t("2026-11-02T00:00:00Z")),
        (t("2026-10-30T13:17:05Z"), t("2026-11-03T08:00:00.5Z")),
        (t("2026-11-01T06:00:00Z"), t("2026-11-01T18:30:00Z")),
        (t("2026-10-31T22:00:00Z"), t("2026-11-01T02:00:00Z")),
        (t("2026-11-01T12:00:00Z"), None),
        (None, t("2026-11-01T12:00:00Z")),
        (t("2026-11-01T12:00:00Z"), t("2026-11-01T12:00:00Z")),
    ]
}

async fn check_every_scope(app: &TestApp, token: &str, live: &[Tx], seed: u64) {
    let status_sets: [&[&str]; 3] = [&["PENDING", "SUCCESS"], &["FAILED"], &STATUSES];
    for (currency, _) in CURRENCIES {
        for (from, to) in ranges() {
            for statuses in status_sets {
                let args = json!({
                    "currency": currency,
                    "from": from.map(|t| t.to_rfc3339()),
                    "to": to.map(|t| t.to_rfc3339()),
                    "statuses": statuses,
                });
                let answer = app.data(Some(token), ANALYTICS, args.clone()).await["transactionAnalytics"].clone();
                let want = expected(live, currency, from, to, statuses);
                assert_eq!(answer, want, "seed {seed}, {args}");
            }
        }
    }
}

async fn rollups_answer_as_raw_aggregation_does(app: TestApp) {
    for seed in [1u64, 2] {
        let mut rng = StdRng::seed_from_u64(seed);
        let user = app.new_user().await;
        // Another user's ledger on the same days must never count.
        let other = app.new_user().await;
        random_ledger(&app, &other.access_token, &mut StdRng::seed_from_u64(seed + 100)).await;
        let live = random_ledger(&app, &user.access_token, &mut rng).await;
        check_every_scope(&app, &user.access_token, &live, seed).await;

        // Rebuilt from the transactions by the migration (the backfill): the same answers.
        migration::Migrator::down(&app.state.db, Some(1)).await.unwrap();
        migration::Migrator::up(&app.state.db, None).await.unwrap();
        check_every_scope(&app, &user.access_token, &live, seed).await;
    }
}

crate::backend_tests!(rollups_answer_as_raw_aggregation_does);

/// Updates racing on one transaction, moving it back and forth between days and categories
/// (each a move between two rollup rows, in both directions): every one succeeds (no deadlock,
/// no lock error), and the rollups hold exactly the row as it ends.
async fn racing_updates_leave_the_rollups_exact(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let first = json!({ "amount": "10.00", "kind": "DEBIT", "category": "a", "occurredAt": "2026-11-01T10:00:00Z" });
    let id = create_one(&app, token, first).await["id"].clone();
    let update =
        "mutation($id: ID!, $input: UpdateTransactionInput!) { updateTransaction(id: $id, input: $input) { id } }";
    let moves = (0..20).map(|i| {
        let (category, day) = if i % 2 == 0 { ("b", "2026-11-02") } else { ("a", "2026-11-01") };
        let input = json!({ "category": category, "occurredAt": format!("{day}T10:00:00Z"), "amount": format!("{}.00", 10 + i) });
        app.gql(Some(token), update, json!({ "id": id, "input": input }))
    });
    for answer in futures::future::join_all(moves).await {
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    let last = app
        .data(
            Some(token),
            "query($id: ID!) { transaction(id: $id) { amount category occurredAt } }",
            json!({ "id": id }),
        )
        .await;
    let tx = &last["transaction"];
    let analysis = app.data(Some(token), ANALYTICS, json!({})).await["transactionAnalytics"].clone();
    assert_eq!(analysis["count"], 1, "{analysis}");
    assert_eq!(analysis["totalDebit"], tx["amount"], "{analysis} {tx}");
    assert_eq!(analysis["byCategory"][0]["category"], tx["category"], "{analysis} {tx}");
    assert_eq!(analysis["byDay"][0]["date"].as_str(), tx["occurredAt"].as_str().map(|t| &t[..10]), "{analysis} {tx}");
}

crate::backend_tests!(racing_updates_leave_the_rollups_exact);
