//! `schema.graphql` is the contract clients generate code from: it must be exactly what the
//! code produces, and it documents itself.

use serde_json::{Value, json};

use crate::helpers::*;

#[test]
fn schema_file_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql is committed");
    let generated = finql::schema::sdl();
    assert!(
        committed == generated,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql` and commit it"
    );
}

#[test]
fn schema_is_stable_across_builds() {
    assert_eq!(finql::schema::sdl(), finql::schema::sdl());
}

/// Every type, field, argument, enum value and input field of the schema the server serves
/// has a description (introspection over HTTP, so what clients see): the rule
/// `graphql-schema-linter` checks in CI, held here without Node. Introspection's own types
/// and GraphQL's built-in scalars are the specification's, not ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_in_the_schema_is_described() {
    const INTROSPECTION: &str = "{ __schema { types { name description
      fields(includeDeprecated: true) { name description args { name description } }
      inputFields { name description }
      enumValues(includeDeprecated: true) { name description } } } }";
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let schema = app.data(None, INTROSPECTION, json!({})).await;
    let described = |v: &Value| v["description"].as_str().is_some_and(|d| !d.trim().is_empty());
    let mut missing = Vec::new();
    let mut checked = 0;
    for ty in schema["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") || ["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
            continue;
        }
        let mut check = |what: String, v: &Value| {
            checked += 1;
            if !described(v) {
                missing.push(what);
            }
        };
        check(name.to_owned(), ty);
        for field in ty["fields"].as_array().into_iter().flatten() {
            let field_name = field["name"].as_str().unwrap();
            check(format!("{name}.{field_name}"), field);
            for arg in field["args"].as_array().unwrap() {
                check(format!("{name}.{field_name}({})", arg["name"].as_str().unwrap()), arg);
            }
        }
        for input in ty["inputFields"].as_array().into_iter().flatten() {
            check(format!("{name}.{}", input["name"].as_str().unwrap()), input);
        }
        for value in ty["enumValues"].as_array().into_iter().flatten() {
            check(format!("{name}.{}", value["name"].as_str().unwrap()), value);
        }
    }
    // The walk saw the schema, not an empty answer: finql has well over 400 of these.
    assert!(checked > 400, "only {checked} items in the introspected schema");
    assert!(missing.is_empty(), "{} without a description: {missing:?}", missing.len());
}

/// The custom scalars say what they are and where they are specified, in the committed file
/// (what code generators read) and in introspection alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_scalars_carry_their_specification() {
    let expected = [
        ("Date", "https://datatracker.ietf.org/doc/html/rfc3339#section-5.6"),
        ("DateTime", "https://scalars.graphql.org/andimarek/date-time"),
        ("Decimal", "https://speleotrove.com/decimal/daconvs.html#refnumsyn"),
    ];
    let sdl = finql::schema::sdl();
    for (name, url) in expected {
        assert!(sdl.contains(&format!("scalar {name} @specifiedBy(url: \"{url}\")")), "{name} in schema.graphql");
    }
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let query = "{ __schema { types { name kind description specifiedByURL } } }";
    let types = app.data(None, query, json!({})).await["__schema"]["types"].clone();
    for (name, url) in expected {
        let ty = types.as_array().unwrap().iter().find(|t| t["name"] == name).unwrap();
        assert_eq!((&ty["kind"], &ty["specifiedByURL"]), (&json!("SCALAR"), &json!(url)), "{ty}");
        assert!(ty["description"].as_str().unwrap().len() > 80, "{ty}");
    }
}
