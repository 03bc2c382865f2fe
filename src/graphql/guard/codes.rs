//! `extensions.code` for the errors async-graphql produces itself, named as Apollo Server names
//! them, so that a client can tell whose fault an error is and what to do about it:
//!
//! - `GRAPHQL_PARSE_FAILED`: the document is not GraphQL (a syntax error). A bug in the client's
//!   code; retrying or re-entering the form will not help.
//! - `GRAPHQL_VALIDATION_FAILED`: the document is GraphQL but not valid against the schema (an
//!   unknown field, a missing argument, a literal argument of the wrong type). Also a bug in the
//!   client's code, usually an out-of-date generated client.
//! - `BAD_USER_INPUT`: the document is valid, the values it was sent with are not: a variable
//!   that does not coerce to its type (Apollo's choice too: variables carry what a user typed,
//!   and a form can show the error), an argument a resolver refuses, an unknown
//!   `operationName`, and the edge limits (`reason`: `QUERY_TOO_DEEP`, …), which refuse valid
//!   documents this server will not run.
//!
//! async-graphql reports a variable of the wrong type with the same message as a literal of the
//! wrong type ("Invalid value for argument …", at the argument); which it was is read from the
//! document, only when such an error occurs.

use async_graphql::{
    Pos, Positioned, ServerError,
    parser::types::{Directive, ExecutableDocument, Field, Selection, SelectionSet},
};

use super::{coded, limit_error};
use crate::{config::Limits, error::ErrorCode};

/// Gives a code to every error that has none. Resolver errors carry theirs already; what is
/// left comes from async-graphql's request handling (validation, limits, bad variables, unknown
/// operation name) or from argument coercion in a resolver (an error with a path), except a
/// missing context value, which is our bug. `query` is the document's text when the request
/// came with variables (without variables, a value of the wrong type can only be a literal).
pub fn assign_codes(errors: &mut [ServerError], limits: &Limits, query: Option<&str>) {
    let mut document = None;
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
            // Raised while resolving (it has a path): an argument the resolver could not coerce.
            _ if !err.path.is_empty() => (message, ErrorCode::BadUserInput, None),
            m if m.starts_with("Unknown operation named") || m == "Operation name required in request." => {
                (message, ErrorCode::BadUserInput, None)
            }
            m if m.starts_with("Invalid value for argument") => {
                let document =
                    document.get_or_insert_with(|| query.and_then(|q| async_graphql::parser::parse_query(q).ok()));
                let from_variable = document
                    .as_ref()
                    .is_some_and(|doc| err.locations.first().is_some_and(|pos| argument_uses_variable(doc, *pos)));
                let code = if from_variable { ErrorCode::BadUserInput } else { ErrorCode::GraphqlValidationFailed };
                (message, code, None)
            }
            _ => (message, ErrorCode::GraphqlValidationFailed, None),
        };
        err.message = message;
        let ext = err.extensions.get_or_insert_with(Default::default);
        ext.set("code", code.as_str());
        if let Some(reason) = reason {
            ext.set("reason", reason);
        }
    }
}

/// A request error (nothing executed: syntax, validation, limits, variables), as opposed to
/// field errors beside (possibly null) data. Over HTTP it answers 400 under
/// `application/graphql-response+json` and 200 under `application/json` (GraphQL-over-HTTP);
/// over WebSocket, an `error` message instead of `next`.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A document that did not parse: a syntax error (`GRAPHQL_PARSE_FAILED`), or nesting beyond
/// what the parser accepts (which is a depth limit, not a syntax problem).
pub fn parse_error(err: &ServerError, limits: &Limits) -> ServerError {
    if err.message.contains("recursion limit exceeded") || err.message.contains("stack limit reached") {
        return limit_error("QUERY_TOO_DEEP", format!("query is nested too deep (limit {})", limits.max_depth));
    }
    coded(ServerError::new(syntax_message(&err.message), None), ErrorCode::GraphqlParseFailed)
}

/// pest's multi-line syntax report, reduced to one line: "syntax error: expected selection".
fn syntax_message(raw: &str) -> String {
    let expected = raw.lines().map(str::trim).find_map(|l| l.strip_prefix("= ")).unwrap_or("invalid syntax");
    format!("syntax error: {expected}")
}

/// Whether the argument whose name is at `pos` (where async-graphql reports a value of the wrong
/// type) takes its value, or part of it, from a variable.
fn argument_uses_variable(doc: &ExecutableDocument, pos: Pos) -> bool {
    // The parser's `Value` (with variables) is not exported by async-graphql: inferred here.
    macro_rules! in_arguments {
        ($args:expr, $pos:expr) => {
            $args.iter().any(|(name, value)| {
                name.pos == $pos && value.node.clone().into_const_with(|_| Err::<async_graphql::Value, ()>(())).is_err()
            })
        };
    }
    fn in_directives(directives: &[Positioned<Directive>], pos: Pos) -> bool {
        directives.iter().any(|d| in_arguments!(d.node.arguments, pos))
    }
    fn in_field(field: &Field, pos: Pos) -> bool {
        in_arguments!(field.arguments, pos)
            || in_directives(&field.directives, pos)
            || in_set(&field.selection_set.node, pos)
    }
    fn in_set(set: &SelectionSet, pos: Pos) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => in_field(&field.node, pos),
            Selection::FragmentSpread(spread) => in_directives(&spread.node.directives, pos),
            Selection::InlineFragment(fragment) => {
                in_directives(&fragment.node.directives, pos) || in_set(&fragment.node.selection_set.node, pos)
            }
        })
    }
    doc.operations
        .iter()
        .any(|(_, op)| in_directives(&op.node.directives, pos) || in_set(&op.node.selection_set.node, pos))
        || doc
            .fragments
            .values()
            .any(|f| in_directives(&f.node.directives, pos) || in_set(&f.node.selection_set.node, pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Schema, Value, Variables};

    struct Query;

    #[Object]
    impl Query {
        async fn twice(&self, n: i32) -> i32 {
            n * 2
        }
    }

    use crate::graphql::guard::tests::limits;

    async fn codes_of(query: &str, variables: serde_json::Value) -> Vec<String> {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let variables = Variables::from_json(variables);
        let with_variables = (!variables.is_empty()).then_some(query);
        let mut response = schema.execute(Request::new(query).variables(variables)).await;
        assign_codes(&mut response.errors, &limits(), with_variables);
        response
            .errors
            .iter()
            .map(|e| e.extensions.as_ref().unwrap().get("code").unwrap().to_string().trim_matches('"').to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_literal_of_the_wrong_type_is_invalid_a_variable_of_the_wrong_type_is_bad_input() {
        let (validation, bad_input) = ("GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT");
        assert_eq!(codes_of(r#"{ twice(n: "x") }"#, serde_json::json!({})).await, [validation]);
        assert_eq!(codes_of("{ nope }", serde_json::json!({})).await, [validation]);
        let query = r#"query($n: Int!, $m: Int!) { a: twice(n: $n) b: twice(n: "x") c: twice(n: $m) }"#;
        let codes = codes_of(query, serde_json::json!({ "n": "x", "m": 1 })).await;
        assert_eq!(codes, [bad_input, validation]);
    }

    #[test]
    fn a_syntax_error_is_a_parse_failure() {
        let err = async_graphql::parser::parse_query("{ a").map_err(ServerError::from).unwrap_err();
        let err = parse_error(&err, &limits());
        assert_eq!(err.extensions.unwrap().get("code"), Some(&Value::from("GRAPHQL_PARSE_FAILED")));
    }
}
