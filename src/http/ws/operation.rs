//! One operation on a connection (`subscribe`, legacy `start`): checked and admitted like an
//! HTTP request (a persisted document resolved, the document guard, the plan's rate and cost),
//! then run in its own task that sends its results through the connection's bounded outbox,
//! metered, audited and timed.

use std::sync::Arc;

use async_graphql::{Request, Response as GqlResponse, parser::types::OperationType};
use axum::extract::ws::Message;
use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use metrics::SharedString;
use serde_json::json;
use tracing::Instrument;

use super::{Connection, Protocol};
use crate::{
    audit::{self, Operation},
    error::ErrorCode,
    graphql::{ClientInfo, guard},
    identity::Principal,
    live::graphql::{
        LiveServices,
        projection::{self, Projection},
    },
    metrics::graphql as graphql_metrics,
    state::AppState,
    telemetry,
    usage::{self, OperationMeter},
};

impl Connection {
    /// Answers an operation refused before it ran with its `error` message, metered as a
    /// request with an error (`rate_limited`: refused by the plan's limits).
    async fn refuse_operation(
        &self,
        principal: &Principal,
        operation: Arc<Operation>,
        message: serde_json::Value,
        rate_limited: bool,
    ) {
        let code = message["payload"][0]["extensions"]["code"].as_str().unwrap_or("INTERNAL").to_owned();
        graphql_metrics::record(
            graphql_metrics::operation_type(None),
            principal.tenant_label(),
            code.into(),
            std::time::Duration::ZERO,
        );
        let mut usage = self.state.usage.operation(principal, false);
        let bytes = message.to_string().len();
        meter(&mut usage, bytes, true, rate_limited);
        audit::edge::ws_refused(&self.state.audit, principal, operation, &message, bytes);
        self.send(message).await;
    }

    /// Checks and admits an operation, then runs it in its own task.
    pub(super) async fn start(&mut self, id: String, mut payload: serde_json::Value, principal: Principal) {
        let (next, error) = match self.protocol {
            Protocol::TransportWs => ("next", "error"),
            Protocol::Legacy => ("data", "error"),
        };
        let limit = self.state.config.websocket.max_subscriptions;
        if self.operations.len() >= limit {
            let message = format!("too many operations on this connection (limit {limit})");
            self.refuse_operation(
                &principal,
                Arc::default(),
                error_message(error, &id, &message, ErrorCode::BadUserInput),
                false,
            )
            .await;
            return;
        }
        // The client's trace, if it sent one: `{"extensions": {"traceparent": "00-…"}}`.
        let traceparent = payload.pointer("/extensions/traceparent").and_then(|v| v.as_str()).map(str::to_owned);
        // A persisted document's text, as over HTTP (`persisted`).
        let registration = match self.state.persisted.resolve(&mut payload).await {
            Ok(registration) => registration,
            Err(refusal) => {
                let message = json!({ "type": error, "id": id, "payload": [refusal.into_error()] });
                self.refuse_operation(&principal, Arc::default(), message, false).await;
                return;
            }
        };
        // A payload without a `query` deserialises with an empty one: not a request (as over
        // HTTP), rather than a document that fails to parse.
        let mut request: Request = match serde_json::from_value::<Request>(payload) {
            Ok(request) if !request.query.trim().is_empty() => request,
            _ => {
                let message = "payload must be a GraphQL request with a `query`";
                self.refuse_operation(
                    &principal,
                    Arc::default(),
                    error_message(error, &id, message, ErrorCode::BadUserInput),
                    false,
                )
                .await;
                return;
            }
        };
        let limits = self.state.config.limits.clone();
        let operation_name = request.operation_name.clone();
        let checked = guard::check_tokens(&request.query, &limits).and_then(|()| match request.parsed_query() {
            Ok(document) => guard::check_document(document, &limits)
                .map(|_| guard::operation_type(document, operation_name.as_deref())),
            Err(err) => Err(guard::parse_error(&err, &limits)),
        });
        let operation = match checked {
            Ok(operation) => {
                self.state.persisted.register(registration).await;
                operation
            }
            Err(mut rejected) => {
                guard::assign_codes(std::slice::from_mut(&mut rejected), &limits, None);
                self.refuse_operation(
                    &principal,
                    Arc::new(audit::edge::unread(&request)),
                    json!({ "type": error, "id": id, "payload": [rejected] }),
                    false,
                )
                .await;
                return;
            }
        };
        // Each operation is a request on the plan's limits, as over HTTP; a subscription pays
        // its estimated cost once, when it starts.
        // Cloned once, for the cost here and for recognising a plain projection below (the
        // document is borrowed from the request mutably).
        let values = request.variables.clone();
        let cost =
            request.parsed_query().map_or(0, |doc| self.state.demand.cost(doc, operation_name.as_deref(), &values));
        let shape = self.state.audit.shape(&mut request);
        let admission = self.state.plan_limits.admit(&principal, self.client.addr, 1, cost).await;
        if let Some(refusal) = admission.refusal {
            let message = json!({ "type": error, "id": id, "payload": [refusal.error()] });
            self.refuse_operation(&principal, shape, message, refusal.is_rate_limited()).await;
            return;
        }
        // Queries and mutations end by `FINQL_REQUEST_TIMEOUT_MS`; subscriptions are meant to last.
        let deadline = (operation != Some(OperationType::Subscription))
            .then(|| tokio::time::Instant::now() + limits.request_timeout);
        // Counted when the operation ends, however it ends (the meter goes with the task).
        let mut usage = self.state.usage.operation(&principal, operation == Some(OperationType::Subscription));
        if let Some(usage) = &mut usage {
            usage.charged(cost);
        }
        let (ty, name) = request
            .parsed_query()
            .map(|doc| guard::operation_label(doc, operation_name.as_deref()))
            .unwrap_or_default();
        let (span, trace_id) = telemetry::trace::ws_operation_span(ty, name.as_deref(), traceparent.as_deref());
        let trace_id = trace_id.to_string();
        let client = ClientInfo { trace_id: Some(trace_id.clone()), ..self.client.clone() };
        // Likewise its audit record (a subscription's start is recorded now).
        let subscription = operation == Some(OperationType::Subscription);
        let mut audit = self.state.audit.operation(&principal, Some(trace_id.clone()), shape, subscription);
        // Counted at its first answer (a subscription's first event), timed from its start.
        let mut timing =
            Some((std::time::Instant::now(), graphql_metrics::operation_type(operation), principal.tenant_label()));
        let mut answered = move |code: SharedString| {
            if let Some((started, kind, tenant)) = timing.take() {
                graphql_metrics::record(kind, tenant, code, started.elapsed());
            }
        };
        // The text, to tell a variable of the wrong type from a literal (`guard::assign_codes`),
        // and for null propagation.
        let query = request.query.clone();
        let variables = !request.variables.is_empty();
        // A subscription that only projects quote fields is rendered without the schema.
        let projection = if subscription {
            let document = request.parsed_query().ok();
            document.and_then(|document| Projection::of(document, operation_name.as_deref(), &values))
        } else {
            None
        };
        let state = self.state.clone();
        let outbox = self.outbox.clone();
        let finished = self.finished.clone();
        let task_id = id.clone();
        // The start of every `next` (or legacy `data`) message of this operation.
        let prefix = format!(r#"{{"type":"{next}","id":{},"payload":"#, json!(task_id));
        let seq = self.next_seq;
        self.next_seq += 1;
        // One box for what only the operation's start needs: captured one by one, each would
        // take room in the operation's future (and so in its task) for its whole life.
        let opening = Box::new((request, principal, client, projection));
        let task = tokio::spawn(
            async move {
                let (request, principal, client, projection) = *opening;
                // Boxed, as it runs once: the request and the admission need not stay in the
                // operation's future for its whole life.
                let mut answers = Box::pin(answers(&state, request, principal, client, projection)).await;
                let mut first = true;
                let mut panicked = false;
                while !panicked {
                    // A stream that panicked is not polled again: the error ends the operation.
                    let next_answer = guard::catch_panic(answers.next(), || {
                        panicked = true;
                        Some(Answer::Response(GqlResponse::from_errors(vec![guard::internal_error()])))
                    });
                    // A subscription has no deadline, and no timer in its future (boxed otherwise).
                    let next_answer = match deadline {
                        None => Some(next_answer.await),
                        Some(_) => Box::pin(guard::deadline::before(deadline, next_answer)).await,
                    };
                    let Some(next_answer) = next_answer else {
                        // Like a failed request: an `error` ends the operation.
                        let timeout = guard::deadline::timeout_error(limits.request_timeout);
                        answered(graphql_metrics::code_of(std::slice::from_ref(&timeout)));
                        let message = json!({ "type": error, "id": task_id, "payload": [&timeout] });
                        let bytes = message.to_string().len();
                        meter(&mut usage, bytes, true, false);
                        audit.sent(bytes, std::slice::from_ref(&timeout));
                        finished.report(task_id.clone(), seq);
                        let _ = Box::pin(outbox.send_json(message)).await;
                        return;
                    };
                    let message = match next_answer {
                        None => break,
                        Some(Answer::Rendered(payload)) => {
                            answered(graphql_metrics::OK.into());
                            let trace = first.then_some(trace_id.as_str());
                            first = false;
                            let message = rendered_message(&prefix, &payload, trace);
                            meter(&mut usage, message.len(), false, false);
                            audit.sent(message.len(), &[]);
                            message
                        }
                        Some(Answer::Response(mut response)) => {
                            guard::assign_codes(&mut response.errors, &limits, variables.then_some(query.as_str()));
                            state.propagate_nulls(&mut response, &query, operation_name.as_deref());
                            answered(graphql_metrics::code_of(&response.errors));
                            if first {
                                // Once per operation (not on every live update): the client has
                                // it from then on.
                                let trace = async_graphql::Value::from(trace_id.as_str());
                                response.extensions.insert("traceId".into(), trace);
                            }
                            let (errored, rate_limited) =
                                (!response.errors.is_empty(), usage::graphql::is_rate_limited(&response));
                            let failed_request = first && guard::is_request_error(&response);
                            first = false;
                            if failed_request {
                                // An `error` ends the operation: no `complete` follows.
                                let message = json!({ "type": error, "id": task_id, "payload": response.errors });
                                let bytes = message.to_string().len();
                                meter(&mut usage, bytes, errored, rate_limited);
                                audit.sent(bytes, &response.errors);
                                finished.report(task_id.clone(), seq);
                                let _ = Box::pin(outbox.send_json(message)).await;
                                return;
                            }
                            // Written straight to text (no JSON tree in between): this runs once
                            // per subscriber per live update.
                            let message =
                                match serde_json::to_string(&Next { kind: next, id: &task_id, payload: &response }) {
                                    Ok(text) => text,
                                    Err(_) => {
                                        json!({ "type": error, "id": task_id, "payload": [guard::internal_error()] })
                                            .to_string()
                                    }
                                };
                            meter(&mut usage, message.len(), errored, rate_limited);
                            audit.sent(message.len(), &response.errors);
                            message
                        }
                    };
                    if outbox.send(Message::Text(message.into())).await.is_err() {
                        return;
                    }
                }
                answered(graphql_metrics::OK.into());
                finished.report(task_id.clone(), seq);
                let _ = Box::pin(outbox.send_json(json!({ "type": "complete", "id": task_id }))).await;
            }
            .instrument(span),
        );
        self.operations.insert(id, (seq, task.abort_handle()));
    }
}

/// An operation's answers: a plain projection's shared renderings when it is one and is
/// admitted, else the schema's execution of the request.
async fn answers(
    state: &AppState,
    request: Request,
    principal: Principal,
    client: ClientInfo,
    projection: Option<Projection>,
) -> BoxStream<'static, Answer> {
    if let Some(projection) = projection {
        let services = LiveServices {
            settings: &state.config.live,
            market: &state.market,
            quotas: &state.live_quotas,
            hub: &state.live,
        };
        if let Some(rendered) = projection::start(services, &principal, projection).await {
            return rendered.map(Answer::Rendered).boxed();
        }
    }
    let request = state.prepare(request, principal, client);
    state.schema.execute_stream(request).map(Answer::Response).boxed()
}

/// Counts a message sent for an operation (metered callers only).
fn meter(usage: &mut Option<OperationMeter>, bytes: usize, errored: bool, rate_limited: bool) {
    if let Some(usage) = usage {
        usage.sent(bytes, errored, rate_limited);
    }
}

/// What an operation answers with: an execution's response, or a payload rendered without
/// one (`live::graphql::projection`).
enum Answer {
    Response(GqlResponse),
    Rendered(Bytes),
}

/// A `next` message around a rendered payload (`{"data":…}`), with the trace id in its
/// extensions when `trace` is given (the operation's first).
fn rendered_message(prefix: &str, payload: &[u8], trace: Option<&str>) -> String {
    let payload = String::from_utf8_lossy(payload);
    let mut message = String::with_capacity(prefix.len() + payload.len() + 64);
    message.push_str(prefix);
    match (trace, payload.strip_suffix('}')) {
        (Some(trace), Some(open)) => {
            message.push_str(open);
            message.push_str(r#","extensions":{"traceId":"#);
            message.push_str(&json!(trace).to_string());
            message.push_str("}}");
        }
        _ => message.push_str(&payload),
    }
    message.push('}');
    message
}

/// A `next` (or legacy `data`) message.
#[derive(serde::Serialize)]
struct Next<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    payload: &'a GqlResponse,
}

fn error_message(kind: &str, id: &str, message: &str, code: ErrorCode) -> serde_json::Value {
    json!({ "type": kind, "id": id, "payload": [{ "message": message, "extensions": { "code": code.as_str() } }] })
}
