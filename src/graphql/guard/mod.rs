//! Guards applied at the edges (HTTP and WebSocket), for what async-graphql does not do itself:
//!
//! - refuse a document of more than `FINQL_MAX_TOKENS` tokens before parsing it (`tokens`);
//! - measure each operation as it would execute, fragments expanded, without expanding them
//!   (`cost`), and refuse it past `FINQL_MAX_FIELDS` fields, `FINQL_MAX_DEPTH` levels or
//!   `FINQL_MAX_ALIASES` aliases, or with more than one `login`, `signUp` or `refreshToken`.
//!   async-graphql's own depth and complexity checks expand every spread (exponential work on a
//!   fragment bomb) and ignore `__typename`; these run first, so they never see such a bomb;
//! - estimate what a request will cost before it runs (`demand`: each object 1, lists
//!   multiplied by their page size or symbol count), the units of the plans' cost budgets;
//! - bound execution in time (`deadline`);
//! - give every error async-graphql produces an `extensions.code` (`codes`: syntax
//!   `GRAPHQL_PARSE_FAILED`, validation `GRAPHQL_VALIDATION_FAILED`, bad variable and argument
//!   values `BAD_USER_INPUT`), and a `reason` for limit rejections;
//! - turn a panic during execution into an `INTERNAL` error instead of a dropped connection.
//!
//! These are plain functions, not an async-graphql extension: with any extension registered,
//! async-graphql leaves its fast path and runs a boxed extension chain for every field it
//! resolves, which cost a large share of a 50-row page (see README, Benchmarks). They run once
//! per distinct document: the documents cache keeps only documents that passed them.

use std::{future::Future, panic::AssertUnwindSafe};

use async_graphql::{
    ServerError,
    parser::types::{
        DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
    },
};
use futures::FutureExt;

use crate::{config::Limits, error::ErrorCode};

/// What an operation costs once executed, measured without expanding its fragments.
pub mod cost;
/// The execution deadline and the `TIMEOUT` error.
pub mod deadline;
/// The estimated cost of a request (Apollo-style demand control), for the plans' cost budgets.
pub mod demand;
/// A token count of the query text, taken before parsing.
pub mod tokens;

mod codes;
pub use codes::{assign_codes, is_request_error, parse_error};

/// How deep selections may nest once fragments are expanded, a spread or an inline fragment
/// counting as a level like a field with a selection set. async-graphql refuses deeper documents
/// itself (`limit_recursive_depth`, default 32), but only after its own recursive walk, which
/// follows every spread: exponential on a fragment bomb. The same limit, checked here first and
/// in linear time, also tells the client what it hit.
const MAX_NESTING: u64 = 32;

/// A document that passed [`check_document`], as the documents cache keeps it: what a request
/// needs to know of it without walking it again. Only `check_document` makes one.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    auth_mutations: u64,
}

impl Checked {
    /// `login`, `signUp` and `refreshToken` fields at the root of the operation (at most 1).
    pub fn auth_mutations(&self) -> u64 {
        self.auth_mutations
    }
}

/// Refuses a query text of more than `FINQL_MAX_TOKENS` tokens; runs before the parser.
pub fn check_tokens(query: &str, limits: &Limits) -> Result<(), ServerError> {
    if tokens::count(query, limits.max_tokens) > limits.max_tokens {
        return Err(limit_error(
            "TOO_MANY_TOKENS",
            format!("query has more than {} tokens (names, values and punctuation)", limits.max_tokens),
        ));
    }
    Ok(())
}

/// Checks what the schema's own limits do not, on every operation of the document as it would
/// execute: fields, depth, aliases, authentication mutations, fragment cycles; and (when
/// introspection is off) that no introspection field is asked for. async-graphql would answer
/// `__schema` with a silent null; a client deserves to know why.
pub fn check_document(doc: &ExecutableDocument, limits: &Limits) -> Result<Checked, ServerError> {
    if !limits.introspection && asks_introspection(doc) {
        return Err(limit_error("INTROSPECTION_DISABLED", "introspection is disabled on this server".into()));
    }
    let costs = cost::measure(doc).map_err(|cost::FragmentCycle(name)| {
        limit_error("FRAGMENT_CYCLE", format!("fragment `{name}` spreads itself, directly or through other fragments"))
    })?;
    let worst = costs.into_iter().fold(cost::Cost::default(), cost::Cost::worst);
    if worst.fields > limits.max_fields as u64 {
        return Err(limit_error(
            "TOO_MANY_FIELDS",
            format!(
                "query selects {} fields once its fragments are expanded (limit {})",
                amount(worst.fields),
                limits.max_fields
            ),
        ));
    }
    if worst.depth > limits.max_depth as u64 {
        return Err(limit_error("QUERY_TOO_DEEP", format!("query is nested too deep (limit {})", limits.max_depth)));
    }
    if worst.nesting > MAX_NESTING {
        return Err(limit_error(
            "QUERY_TOO_DEEP",
            format!("selections nest {} levels deep through fragments (limit {MAX_NESTING})", amount(worst.nesting)),
        ));
    }
    if worst.aliases > limits.max_aliases as u64 {
        return Err(limit_error(
            "TOO_MANY_ALIASES",
            format!("query uses {} aliases (limit {})", amount(worst.aliases), limits.max_aliases),
        ));
    }
    check_auth_mutations(worst.auth_mutations)?;
    Ok(Checked { auth_mutations: worst.auth_mutations })
}

/// One `login`, `signUp` or `refreshToken` per request (a document, or all documents of an
/// HTTP batch): each is a password guess or a new account, and throttling counts requests.
pub fn check_auth_mutations(count: u64) -> Result<(), ServerError> {
    if count > 1 {
        return Err(limit_error(
            "TOO_MANY_AUTH_OPERATIONS",
            format!("a request may hold one `login`, `signUp` or `refreshToken` mutation, not {}", amount(count)),
        ));
    }
    Ok(())
}

/// The type of the operation that will run. `None` when that is for execution to decide
/// (several operations and no or an unknown `operationName`, which it rejects clearly).
pub fn operation_type(doc: &ExecutableDocument, operation_name: Option<&str>) -> Option<OperationType> {
    operation(doc, operation_name).map(|op| op.ty)
}

/// The operation that will run: the document's only one, or the one `operation_name` names.
/// `None` when that is for execution to decide (and refuse).
pub fn operation<'a>(doc: &'a ExecutableDocument, operation_name: Option<&str>) -> Option<&'a OperationDefinition> {
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|op| &op.node),
        _ => None,
    }
}

/// The operation that will run, as tracing names it (`graphql.operation.type` and
/// `graphql.operation.name`): its type in lower case (`query`, `mutation`, `subscription`) and
/// its name (`None` for an anonymous operation). Both `None` when execution will decide.
pub fn operation_label(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
) -> (Option<&'static str>, Option<String>) {
    let ty = operation_type(doc, operation_name).map(|ty| match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    });
    let name = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(_), _) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.contains_key(name).then(|| name.to_owned()),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.keys().next().map(|name| name.to_string()),
        _ => None,
    };
    (ty, name)
}

/// A count for a message: a saturated one (a bomb of more than 2^64 fields) is not a number.
fn amount(count: u64) -> String {
    if count == u64::MAX { "more than 18446744073709551614".into() } else { count.to_string() }
}

/// Runs `execution`; a panic inside it is logged and replaced by `on_panic()`.
pub async fn catch_panic<T>(execution: impl Future<Output = T>, on_panic: impl FnOnce() -> T) -> T {
    match AssertUnwindSafe(execution).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            tracing::error!(panic = panic_message(&*panic), "panic while executing a GraphQL operation");
            on_panic()
        }
    }
}

/// The error that stands for a caught panic.
pub fn internal_error() -> ServerError {
    coded(ServerError::new("internal error", None), ErrorCode::Internal)
}

pub(super) fn coded(mut err: ServerError, code: ErrorCode) -> ServerError {
    err.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    err
}

pub(super) fn limit_error(reason: &str, message: String) -> ServerError {
    let mut err = ServerError::new(message, None);
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", ErrorCode::BadUserInput.as_str());
    ext.set("reason", reason);
    err
}

fn asks_introspection(doc: &ExecutableDocument) -> bool {
    fn walk(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type") || walk(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    doc.operations.iter().any(|(_, op)| walk(&op.node.selection_set.node))
        || doc.fragments.values().any(|f| walk(&f.node.selection_set.node))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Response, Schema, Value};

    struct Query;

    #[Object]
    impl Query {
        #[allow(unreachable_code, clippy::diverging_sub_expression)]
        async fn boom(&self) -> i32 {
            panic!("resolver bug")
        }
        async fn fine(&self) -> i32 {
            1
        }
    }

    /// Small limits for the guards' tests (`codes` uses them too).
    pub(super) fn limits() -> Limits {
        Limits {
            max_body_bytes: 1024,
            max_batch: 1,
            max_depth: 3,
            max_complexity: 5,
            max_aliases: 2,
            max_fields: 20,
            max_tokens: 100,
            request_timeout: std::time::Duration::from_secs(1),
            introspection: true,
        }
    }

    fn code(err: &ServerError) -> Option<&Value> {
        err.extensions.as_ref().and_then(|e| e.get("code"))
    }

    #[tokio::test]
    async fn a_panicking_resolver_is_an_internal_error_not_a_crash() {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let response =
            catch_panic(schema.execute("{ fine boom }"), || Response::from_errors(vec![internal_error()])).await;
        assert_eq!(response.errors.len(), 1);
        assert_eq!(response.errors[0].message, "internal error");
        assert_eq!(code(&response.errors[0]), Some(&Value::from("INTERNAL")));
    }

    #[tokio::test]
    async fn limit_and_validation_errors_get_codes() {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription).limit_complexity(1).finish();
        let mut response = schema.execute("{ fine fine2: fine }").await;
        assign_codes(&mut response.errors, &limits(), None);
        let ext = response.errors[0].extensions.as_ref().unwrap();
        assert_eq!(ext.get("reason"), Some(&Value::from("QUERY_TOO_COMPLEX")));
        assert_eq!(response.errors[0].message, "query is too complex (limit 5)");
        let mut response = schema.execute("{ nope }").await;
        assign_codes(&mut response.errors, &limits(), None);
        assert_eq!(code(&response.errors[0]), Some(&Value::from("GRAPHQL_VALIDATION_FAILED")));
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc =
            async_graphql::parser::parse_query("{ a: fine ...F } fragment F on Query { b: fine c: fine }").unwrap();
        let err = check_document(&doc, &limits()).unwrap_err();
        assert_eq!(err.message, "query uses 3 aliases (limit 2)");
        let doc = async_graphql::parser::parse_query("{ a: fine b: fine }").unwrap();
        assert!(check_document(&doc, &limits()).is_ok());
    }

    fn reason(err: &ServerError) -> Option<&Value> {
        err.extensions.as_ref().and_then(|e| e.get("reason"))
    }

    fn refusal(query: &str, limits: &Limits) -> ServerError {
        let doc = async_graphql::parser::parse_query(query).expect("valid syntax");
        let err = check_document(&doc, limits).expect_err("refused");
        assert_eq!(code(&err), Some(&Value::from("BAD_USER_INPUT")), "{}", err.message);
        err
    }

    #[test]
    fn fields_are_counted_after_expansion() {
        let within = "{ ...F ...F } fragment F on Query { a b c d e f g h i j }";
        assert!(check_document(&async_graphql::parser::parse_query(within).unwrap(), &limits()).is_ok());
        let err = refusal("{ ...F ...F ...F } fragment F on Query { a b c d e f g h i j }", &limits());
        assert_eq!(reason(&err), Some(&Value::from("TOO_MANY_FIELDS")));
        assert_eq!(err.message, "query selects 30 fields once its fragments are expanded (limit 20)");
    }

    #[test]
    fn aliases_in_a_fragment_spread_twice_count_twice() {
        let err = refusal("{ ...F ...F } fragment F on Query { a: fine b: fine }", &limits());
        assert_eq!(reason(&err), Some(&Value::from("TOO_MANY_ALIASES")));
        assert_eq!(err.message, "query uses 4 aliases (limit 2)");
    }

    #[test]
    fn depth_is_measured_through_spreads() {
        let err = refusal("{ a { ...F } } fragment F on A { b { ...G } } fragment G on B { c { d } }", &limits());
        assert_eq!(reason(&err), Some(&Value::from("QUERY_TOO_DEEP")));
        assert_eq!(err.message, "query is nested too deep (limit 3)");
    }

    #[test]
    fn long_spread_chains_are_too_deep_and_cycles_are_refused() {
        let mut chain = String::from("{ ...F0 }");
        for level in 0..100 {
            chain.push_str(&format!(" fragment F{level} on Query {{ ...F{} }}", level + 1));
        }
        chain.push_str(" fragment F100 on Query { __typename }");
        let err = refusal(&chain, &limits());
        assert_eq!(reason(&err), Some(&Value::from("QUERY_TOO_DEEP")));
        assert_eq!(err.message, "selections nest 101 levels deep through fragments (limit 32)");
        let err = refusal("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", &limits());
        assert_eq!(reason(&err), Some(&Value::from("FRAGMENT_CYCLE")));
    }

    #[test]
    fn one_auth_mutation_per_document() {
        let login = r#"login(email: "a@b.c", password: "x") { accessToken }"#;
        let doc = async_graphql::parser::parse_query(format!("mutation {{ {login} }}")).unwrap();
        assert_eq!(check_document(&doc, &limits()).unwrap().auth_mutations(), 1);
        let err =
            refusal(&format!("mutation {{ ...L }} fragment L on Mutation {{ {login} signUp {{ id }} }}"), &limits());
        assert_eq!(reason(&err), Some(&Value::from("TOO_MANY_AUTH_OPERATIONS")));
        assert_eq!(err.message, "a request may hold one `login`, `signUp` or `refreshToken` mutation, not 2");
    }

    #[test]
    fn a_saturated_count_is_not_printed_as_a_number() {
        let mut bomb = String::from("{ ...F0 }");
        for level in 0..70 {
            bomb.push_str(&format!(" fragment F{level} on Query {{ ...F{0} ...F{0} }}", level + 1));
        }
        bomb.push_str(" fragment F70 on Query { __typename }");
        let err = refusal(&bomb, &Limits { max_fields: 1000, ..limits() });
        assert!(err.message.contains("more than 18446744073709551614 fields"), "{}", err.message);
    }

    #[test]
    fn too_many_tokens_are_refused_before_parsing() {
        assert!(check_tokens("{ a b c }", &limits()).is_ok());
        let err = check_tokens(&format!("{{ {} }}", "a ".repeat(200)), &limits()).unwrap_err();
        assert_eq!(reason(&err), Some(&Value::from("TOO_MANY_TOKENS")));
        assert_eq!(err.message, "query has more than 100 tokens (names, values and punctuation)");
    }

    #[test]
    fn the_operation_that_runs_is_found_by_name() {
        let doc = async_graphql::parser::parse_query("query A { a } mutation B { b }").unwrap();
        assert_eq!(operation_type(&doc, Some("B")), Some(OperationType::Mutation));
        assert_eq!(operation_type(&doc, None), None);
        assert_eq!(operation_type(&doc, Some("C")), None);
        let single = async_graphql::parser::parse_query("subscription { s }").unwrap();
        assert_eq!(operation_type(&single, None), Some(OperationType::Subscription));
        assert_eq!(operation_label(&doc, Some("B")), (Some("mutation"), Some("B".to_owned())));
        assert_eq!(operation_label(&doc, None), (None, None));
        assert_eq!(operation_label(&single, None), (Some("subscription"), None));
    }

    #[test]
    fn syntax_messages_are_one_line() {
        let err = async_graphql::parser::parse_query("{ fine ").unwrap_err();
        let message = parse_error(&err.into(), &limits()).message;
        assert!(message.starts_with("syntax error: ") && !message.contains('\n'), "{message}");
    }

    #[test]
    fn introspection_is_refused_only_when_disabled() {
        let doc =
            async_graphql::parser::parse_query("{ ...F } fragment F on Query { __schema { queryType { name } } }")
                .unwrap();
        assert!(check_document(&doc, &limits()).is_ok());
        let off = Limits { introspection: false, ..limits() };
        let err = check_document(&doc, &off).unwrap_err();
        assert_eq!(err.extensions.unwrap().get("reason"), Some(&Value::from("INTROSPECTION_DISABLED")));
        let typename = async_graphql::parser::parse_query("{ __typename }").unwrap();
        assert!(check_document(&typename, &off).is_ok());
    }
}
