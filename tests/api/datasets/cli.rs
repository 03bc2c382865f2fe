//! `finql dataset load` and the tables' shape following the manifests: the built binary on a
//! database a server then reads.

use std::process::Output;

use serde_json::json;

use super::{ESG_MANIFEST, Fixture};
use crate::helpers::{Backend, shared_db::SharedDatabase};

crate::each_backend!(the_cli_loads_a_file_or_nothing, a_new_field_becomes_a_column_and_a_changed_type_is_refused);

fn text(output: &Output) -> (bool, String, String) {
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A database, and the fixture's settings for both the servers and the binary.
async fn shared(backend: Backend) -> Option<(SharedDatabase, Fixture)> {
    let mut db = SharedDatabase::new(backend).await?;
    let fixture = Fixture::new();
    db.vars.extend(fixture.settings.iter().cloned());
    Some((db, fixture))
}

const RATING: &str = r#"{ datasetPoints(name: "analyst_ratings", symbols: ["AAPL.US"], from: "2026-11-15T00:00:00Z") {
    rating: text(field: "rating") } }"#;

async fn the_cli_loads_a_file_or_nothing(backend: Backend) {
    let Some((db, fixture)) = shared(backend).await else { return };
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/datasets/analyst_ratings.csv");
    let (ok, out, err) = text(&db.finql("dataset", &["load", "analyst_ratings", example]).await);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "dataset analyst_ratings: 120 rows accepted, 0 rejected; written, the dataset holds 120 rows"
    );

    // Two bad rows of three: nothing written, each reject on its line; exit status 1.
    let bad = fixture.manifests.path().join("bad.csv");
    std::fs::write(
        &bad,
        "symbol,time,rating,target_price,analysts,upgraded\n\
         AAPL.US,2026-11-15,sell,1,1,false\n\
         AAPL.US,2026-11-16,,1,1,false\n\
         NOPE.US,2026-11-16,buy,1,1,false\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    let (ok, _, err) = text(&db.finql("dataset", &["load", "analyst_ratings", &bad]).await);
    assert!(!ok);
    assert!(err.contains("1 rows accepted, 2 rejected; nothing written"), "{err}");
    assert!(err.contains("line 3: rating: required, and empty"), "{err}");
    assert!(err.contains("line 4: symbol: NOPE.US is not in the catalog"), "{err}");

    // Reads not kept: what the binary loads next shows at once (by default, within 30 s).
    let app = db.spawn(backend, &[("FINQL_DATASET_CACHE_SECS", "0")]).await;
    let key = app.tenant_key("desk", "full", "market").await;
    let (_, _, body) = app.gql_key(&key, RATING, json!({})).await;
    let before = body["data"]["datasetPoints"][0]["rating"].clone();
    let expected = super::RATINGS_CSV.lines().find(|l| l.starts_with("AAPL.US,2026-11-15,")).unwrap();
    assert_eq!(before, expected.split(',').nth(2).unwrap(), "{body}");

    // A JSON Lines file, by its extension; an unknown dataset and an unreadable format are
    // refused before anything is read.
    let lines = fixture.manifests.path().join("esg.jsonl");
    std::fs::write(&lines, "{\"symbol\":\"700.HK\",\"score\":\"80.1\"}\n").unwrap();
    let lines = lines.display().to_string();
    let query = r#"{ datasetPoints(name: "esg", symbols: ["700.HK"]) { symbol score: decimal(field: "score") } }"#;
    let (_, _, body) = app.gql_key(&key, query, json!({})).await;
    assert_eq!(body["data"]["datasetPoints"], json!([]), "{body}");
    let (ok, out, err) = text(&db.finql("dataset", &["load", "esg", &lines]).await);
    assert!(ok, "{err}");
    assert!(out.contains("1 rows accepted, 0 rejected; written"), "{out}");
    let (ok, _, err) = text(&db.finql("dataset", &["load", "nope", &lines]).await);
    assert!(!ok && err.contains("no dataset `nope`"), "{err}");
    let (ok, _, err) = text(&db.finql("dataset", &["load", "esg", "rows.txt"]).await);
    assert!(!ok && err.contains("--format"), "{err}");
    let (_, _, body) = app.gql_key(&key, query, json!({})).await;
    assert_eq!(body["data"]["datasetPoints"], json!([{ "symbol": "700.HK", "score": "80.1" }]), "{body}");
}

async fn a_new_field_becomes_a_column_and_a_changed_type_is_refused(backend: Backend) {
    let Some((db, fixture)) = shared(backend).await else { return };
    let lines = fixture.manifests.path().join("esg.jsonl");
    std::fs::write(&lines, "{\"symbol\":\"AAPL.US\",\"score\":\"42.0\"}\n").unwrap();
    let (ok, _, err) = text(&db.finql("dataset", &["load", "esg", &lines.display().to_string()]).await);
    assert!(ok, "{err}");

    // A field added to the manifest: a new, empty column; the rows keep their values.
    let manifest = fixture.manifests.path().join("esg.toml");
    std::fs::write(&manifest, format!("{ESG_MANIFEST}[fields.analyst]\ntype = \"text\"\n")).unwrap();
    let (ok, _, err) = text(&db.finql("migrate", &[]).await);
    assert!(ok, "{err}");
    let app = db.spawn(backend, &[]).await;
    let key = app.tenant_key("desk", "full", "market").await;
    let query = r#"{ datasetPoints(name: "esg", symbols: ["AAPL.US"]) { score: decimal(field: "score") analyst: text(field: "analyst") } }"#;
    let (_, _, body) = app.gql_key(&key, query, json!({})).await;
    assert_eq!(body["data"]["datasetPoints"], json!([{ "score": "42.0", "analyst": null }]), "{body}");
    app.shutdown().await.unwrap();

    // A type changed in place: stored values are not converted; the start is refused.
    std::fs::write(&manifest, ESG_MANIFEST.replace("type = \"decimal\"", "type = \"integer\"")).unwrap();
    let (ok, _, err) = text(&db.finql("migrate", &[]).await);
    assert!(!ok);
    assert!(err.contains("field `score` was decimal and the manifest now says integer"), "{err}");
    // And a plan naming a dataset no manifest declares.
    std::fs::write(&manifest, ESG_MANIFEST).unwrap();
    let plans = fixture.settings.iter().find(|(k, _)| k == "FINQL_PLANS_FILE").unwrap().1.clone();
    let text_of_plans = std::fs::read_to_string(&plans).unwrap();
    std::fs::write(&plans, text_of_plans.replace("datasets = [\"esg\"]", "datasets = [\"esg\", \"ratings\"]")).unwrap();
    let (ok, _, err) = text(&db.finql("migrate", &[]).await);
    assert!(!ok);
    assert!(err.contains("plan `esg_only` lists the dataset `ratings`"), "{err}");
}
