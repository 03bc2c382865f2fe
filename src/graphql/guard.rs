//! Guards applied at the edges (HTTP and WebSocket), for what async-graphql does not do itself:
//!
//! - count aliases (async-graphql limits depth and complexity, not aliases; aliases multiply
//!   the work of one field, e.g. a thousand `login`s in one request);
//! - give every error async-graphql produces (syntax, validation, limits, argument coercion)
//!   an `extensions.code`, and a `reason` for limit rejections;
//! - turn a panic during execution into an `INTERNAL` error instead of a dropped connection.
//!
//! These are plain functions, not an async-graphql extension: with any extension registered,
//! async-graphql leaves its fast path and runs a boxed extension chain for every field it
//! resolves, which cost a large share of a 50-row page (see README, Benchmarks).

use std::{future::Future, panic::AssertUnwindSafe};

use async_graphql::{
    ServerError,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};
use futures::FutureExt;

use crate::{config::Limits, error::ErrorCode};

/// Checks what the schema's own limits do not: the number of aliases, and (when introspection
/// is off) that no introspection field is asked for. async-graphql would answer `__schema` with
/// a silent null; a client deserves to know why.
pub fn check_document(doc: &ExecutableDocument, limits: &Limits) -> Result<(), ServerError> {
    if !limits.introspection && asks_introspection(doc) {
        return Err(limit_error(
            ServerError::new("", None),
            "INTROSPECTION_DISABLED",
            "introspection is disabled on this server".into(),
        ));
    }
    let aliases = count_aliases(doc);
    if aliases > limits.max_aliases {
        return Err(limit_error(
            ServerError::new("", None),
            "TOO_MANY_ALIASES",
            format!("query uses {aliases} aliases (limit {})", limits.max_aliases),
        ));
    }
    Ok(())
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

/// Gives a code to every error that has none. Resolver errors carry theirs already; what is
/// left comes from async-graphql's request handling and is about the request itself (limits,
/// validation, bad variables, unknown operation name), except a missing context value, which
/// is our bug.
pub fn assign_codes(errors: &mut [ServerError], limits: &Limits) {
    for err in errors.iter_mut() {
        if err.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some()) {
            continue;
        }
        let message = std::mem::take(&mut err.message);
        let too_deep = || format!("query is nested too deep (limit {})", limits.max_depth);
        let (message, code, reason) = match message.as_str() {
            "Query is too complex." => (
                format!("query is too complex (limit {})", limits.max_complexity),
                ErrorCode::BadUserInput,
                Some("QUERY_TOO_COMPLEX"),
            ),
            "Query is nested too deep." => (too_deep(), ErrorCode::BadUserInput, Some("QUERY_TOO_DEEP")),
            m if m.starts_with("The recursion depth of the query") => {
                (too_deep(), ErrorCode::BadUserInput, Some("QUERY_TOO_DEEP"))
            }
            m if m.starts_with("Data `") && m.ends_with("does not exist.") => {
                tracing::error!(message = m, "missing context data");
                ("internal error".into(), ErrorCode::Internal, None)
            }
            _ => (message, ErrorCode::BadUserInput, None),
        };
        err.message = message;
        let ext = err.extensions.get_or_insert_with(Default::default);
        ext.set("code", code.as_str());
        if let Some(reason) = reason {
            ext.set("reason", reason);
        }
    }
}

/// A request error (nothing executed: syntax, validation, limits), as opposed to field errors
/// beside (possibly null) data. The GraphQL-over-HTTP spec answers the first with 400; the
/// WebSocket protocols with an `error` message instead of `next`.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

fn coded(mut err: ServerError, code: ErrorCode) -> ServerError {
    err.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    err
}

fn limit_error(mut err: ServerError, reason: &str, message: String) -> ServerError {
    err.message = message;
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", ErrorCode::BadUserInput.as_str());
    ext.set("reason", reason);
    err
}

/// A document that did not parse: a syntax error, or nesting beyond what the parser accepts
/// (which is a depth problem, not a syntax one).
pub fn parse_error(err: &ServerError, limits: &Limits) -> ServerError {
    if err.message.contains("recursion limit exceeded") || err.message.contains("stack limit reached") {
        return limit_error(
            ServerError::new("", None),
            "QUERY_TOO_DEEP",
            format!("query is nested too deep (limit {})", limits.max_depth),
        );
    }
    coded(ServerError::new(syntax_message(&err.message), None), ErrorCode::BadUserInput)
}

/// pest's multi-line syntax report, reduced to one line: "syntax error: expected selection".
fn syntax_message(raw: &str) -> String {
    let expected = raw.lines().map(str::trim).find_map(|l| l.strip_prefix("= ")).unwrap_or("invalid syntax");
    format!("syntax error: {expected}")
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

fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + walk(&field.node.selection_set.node)
                }
                Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = doc.operations.iter().map(|(_, op)| walk(&op.node.selection_set.node)).sum();
    let fragments: usize = doc.fragments.values().map(|f| walk(&f.node.selection_set.node)).sum();
    operations + fragments
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

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1024,
            max_batch: 1,
            max_depth: 3,
            max_complexity: 5,
            max_aliases: 2,
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
        assign_codes(&mut response.errors, &limits());
        let ext = response.errors[0].extensions.as_ref().unwrap();
        assert_eq!(ext.get("reason"), Some(&Value::from("QUERY_TOO_COMPLEX")));
        assert_eq!(response.errors[0].message, "query is too complex (limit 5)");
        let mut response = schema.execute("{ nope }").await;
        assign_codes(&mut response.errors, &limits());
        assert_eq!(code(&response.errors[0]), Some(&Value::from("BAD_USER_INPUT")));
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
