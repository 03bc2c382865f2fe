//! `schema.graphql` is the contract clients generate code from: it must be exactly what the
//! code produces.

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
