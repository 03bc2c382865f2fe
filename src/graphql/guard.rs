//! The guard extension: what async-graphql does not do by itself.
//!
//! - counts aliases (async-graphql limits depth and complexity, not aliases; aliases multiply
//!   the work of one field, e.g. a thousand `login`s in one request);
//! - gives every error async-graphql produces (syntax, validation, limits, argument coercion)
//!   an `extensions.code`, and a `reason` for limit rejections;
//! - turns a panic in a resolver into an `INTERNAL` error instead of a dropped connection.

use std::{panic::AssertUnwindSafe, sync::Arc};

use async_graphql::{
    Response, ServerError, ServerResult, ValidationResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextResolve, NextValidation,
        ResolveInfo,
    },
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};
use futures::FutureExt;

use crate::error::ErrorCode;

pub struct Guard {
    pub max_aliases: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension {
            max_aliases: self.max_aliases,
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
        })
    }
}

struct GuardExtension {
    max_aliases: usize,
    max_depth: usize,
    max_complexity: usize,
}

#[async_trait::async_trait]
impl Extension for GuardExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = match AssertUnwindSafe(next.run(ctx)).catch_unwind().await {
            Ok(response) => response,
            Err(panic) => {
                tracing::error!(panic = panic_message(&panic), "panic while executing a request");
                Response::from_errors(vec![coded(ServerError::new("internal error", None), ErrorCode::Internal)])
            }
        };
        assign_codes(&mut response.errors);
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await.map_err(|err| {
            if err.message.starts_with("The recursion depth") {
                limit_error(err, "QUERY_TOO_DEEP", format!("query is nested too deep (limit {})", self.max_depth))
            } else {
                coded(ServerError { message: syntax_message(&err.message), ..err }, ErrorCode::BadUserInput)
            }
        })?;
        let aliases = count_aliases(&doc);
        if aliases > self.max_aliases {
            return Err(limit_error(
                ServerError::new("", None),
                "TOO_MANY_ALIASES",
                format!("query uses {aliases} aliases (limit {})", self.max_aliases),
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|err| match err.message.as_str() {
                    "Query is too complex." => limit_error(
                        err,
                        "QUERY_TOO_COMPLEX",
                        format!("query is too complex (limit {})", self.max_complexity),
                    ),
                    "Query is nested too deep." => limit_error(
                        err,
                        "QUERY_TOO_DEEP",
                        format!("query is nested too deep (limit {})", self.max_depth),
                    ),
                    _ => coded(err, ErrorCode::BadUserInput),
                })
                .collect()
        })
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let path = info.path_node.to_string();
        match AssertUnwindSafe(next.run(ctx, info)).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                tracing::error!(path, panic = panic_message(&panic), "panic in resolver");
                Err(coded(ServerError::new("internal error", None), ErrorCode::Internal))
            }
        }
    }
}

/// Gives a code to every error that has none. Resolver errors carry theirs already; what is
/// left comes from async-graphql's request handling, and is about the request itself (bad
/// variables, unknown operation name), except a missing context value, which is our bug.
pub fn assign_codes(errors: &mut [ServerError]) {
    for err in errors.iter_mut() {
        if err.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some()) {
            continue;
        }
        let code = if err.message.starts_with("Data `") && err.message.ends_with("does not exist.") {
            tracing::error!(message = err.message, "missing context data");
            err.message = "internal error".into();
            ErrorCode::Internal
        } else {
            ErrorCode::BadUserInput
        };
        err.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    }
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

/// pest's multi-line syntax report, reduced to one line: "syntax error: expected selection".
pub fn syntax_message(raw: &str) -> String {
    let expected = raw.lines().map(str::trim).find_map(|l| l.strip_prefix("= ")).unwrap_or("invalid syntax");
    format!("syntax error: {expected}")
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
