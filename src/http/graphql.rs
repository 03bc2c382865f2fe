//! GraphQL over HTTP, following the GraphQL-over-HTTP specification.
//!
//! Written by hand rather than with async-graphql-axum's handler, which (in 7.x) runs mutations
//! from `text/plain`, form and multipart POSTs and from GET (CSRF), runs batches of any size,
//! reads bodies of any size, answers `application/graphql-response+json` whatever the client
//! accepts, and echoes Rust debug text for bad requests. Here:
//! - POST must be `application/json` (a cross-site form cannot send that without a preflight);
//! - GET runs queries only: a mutation answers 405; a query's answer carries `Cache-Control` by
//!   data tier and an ETag, and `If-None-Match` answers 304 (`http::caching`); POST is `no-store`;
//! - the body is capped (413) and batches are capped (`FINQL_MAX_BATCH`);
//! - `Accept` picks `application/graphql-response+json` or `application/json` (406 otherwise);
//! - a request may name a persisted document instead of sending its text (APQ's
//!   `extensions.persistedQuery`, or `documentId`), by POST or GET (`persisted`);
//! - malformed JSON and requests answer 400 with a GraphQL error document; a document that
//!   does not parse (`GRAPHQL_PARSE_FAILED`), validate (`GRAPHQL_VALIDATION_FAILED`) or pass
//!   the edge limits, or variables that do not coerce, answer 400 under
//!   `application/graphql-response+json` and 200 under `application/json`, as the spec says;
//! - every operation of a batch passes the edge guards (`graphql::guard`) before any runs, and
//!   the batch as a whole holds at most one `login`, `signUp` or `refreshToken`;
//! - execution stops at `FINQL_REQUEST_TIMEOUT_MS` (504 `TIMEOUT`, see `guard::deadline`);
//! - every request is admitted on its caller's plan limits before anything runs
//!   (`tenancy::limits`: each operation of a batch is a request, and pays its estimated cost,
//!   `guard::demand`, returned as `extensions.cost`); a refusal is 429 with `Retry-After`, and
//!   every answer, refused or not, carries the `RateLimit-Policy` and `RateLimit` fields.

use async_graphql::{
    BatchRequest, BatchResponse, Request, Response as GqlResponse, ServerError, Value, parser::types::OperationType,
};
use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request as HttpRequest, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{FutureExt, StreamExt, stream::FuturesOrdered};
use serde_json::json;
use tracing::Instrument;

use super::{REQUEST_ID, caching};
use crate::{
    audit::edge::{Answer, HttpAudit},
    error::ErrorCode,
    graphql::{ClientInfo, cache_control::Ceiling, guard, provenance::SourcesUsed},
    identity::{Credentials, Principal},
    metrics::graphql as graphql_metrics,
    persisted::Registration,
    state::AppState,
    telemetry,
    tenancy::limits::Refusal,
    usage::{self, UsageRecord},
};
use std::net::SocketAddr;

/// The header an API key may come in (the other way is `Authorization: Bearer fq_…`).
pub(super) const API_KEY: header::HeaderName = header::HeaderName::from_static("x-api-key");
/// The IETF rate-limit fields (draft-ietf-httpapi-ratelimit-headers): the limits that apply to
/// the caller, and what is left of each (`tenancy::limits`).
const RATELIMIT_POLICY: header::HeaderName = header::HeaderName::from_static("ratelimit-policy");
const RATELIMIT: header::HeaderName = header::HeaderName::from_static("ratelimit");
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

/// The response media type the client accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    GraphqlResponseJson,
    Json,
}

impl Media {
    /// The status of a GraphQL request error (a well-formed HTTP request whose document did not
    /// parse, validate or pass the edge limits, or whose variables did not coerce: no `data`).
    /// GraphQL-over-HTTP: 400 under `application/graphql-response+json` (the media type says the
    /// status is meaningful), 200 under `application/json` (legacy clients read the body of a
    /// 200 only). Malformed HTTP requests (bad JSON, no `query`) are 400 under both.
    fn request_error_status(self) -> StatusCode {
        match self {
            Self::GraphqlResponseJson => StatusCode::BAD_REQUEST,
            Self::Json => StatusCode::OK,
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }
}

/// A refusal before execution: status, the error, and the media type to answer in.
struct Rejection {
    status: StatusCode,
    error: Box<ServerError>,
    media: Media,
    allow_post_only: bool,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>, media: Media) -> Self {
        let code =
            if status == StatusCode::INTERNAL_SERVER_ERROR { ErrorCode::Internal } else { ErrorCode::BadUserInput };
        let mut error = ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
        Self { status, error: Box::new(error), media, allow_post_only: false }
    }

    /// A document the edge guards or the parser refused (the guard's error as it is): a GraphQL
    /// request error, answered as async-graphql's own validation errors are.
    fn refused(error: ServerError, media: Media) -> Self {
        Self { status: media.request_error_status(), error: Box::new(error), media, allow_post_only: false }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = json!({ "errors": [self.error] });
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, self.media.content_type());
        if self.allow_post_only {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// `POST /graphql`.
pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let prepared = post_inner(&state, &headers, body).await;
    detached(state, peer, headers, prepared, Method::POST).await.0
}

/// [`respond`] on a task of its own. A client that disconnects mid-request drops the handler's
/// future; were the execution part of it, a statement in flight would be cut off and its pooled
/// connection closed rather than returned, and the next burst would wait to open new ones (the
/// stalls of seconds seen under load). Detached, the operation runs to its end or its deadline
/// (`FINQL_REQUEST_TIMEOUT_MS`), is metered and audited as answered, and its connections go back
/// to the pool. The headers come back with the answer (the GET edge reads them after).
async fn detached(
    state: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    prepared: Result<Prepared, Rejection>,
    method: Method,
) -> (Response, HeaderMap) {
    let media = match &prepared {
        Ok((_, media)) => *media,
        Err(rejection) => rejection.media,
    };
    let task = tokio::spawn(
        async move {
            let response = respond(&state, peer, &headers, prepared, method).await;
            (response, headers)
        }
        .in_current_span(),
    );
    match task.await {
        Ok(answered) => answered,
        Err(err) => {
            // `respond` catches a resolver's panic; this is one outside execution.
            tracing::error!(%err, "the task answering a GraphQL request failed");
            (
                Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", media).into_response(),
                HeaderMap::new(),
            )
        }
    }
}

/// A request ready to run: its operations (parsed and past the edge guards) and the media type
/// to answer in.
type Prepared = (BatchRequest, Media);

async fn post_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Prepared, Rejection> {
    let media = negotiate(headers)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(APPLICATION_JSON) {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST requests must have `Content-Type: application/json`",
            media,
        ));
    }
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Rejection::new(
                status,
                format!("request body is larger than {} bytes", state.config.limits.max_body_bytes),
                media,
            )
        } else {
            Rejection::new(StatusCode::BAD_REQUEST, "could not read the request body", media)
        }
    })?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|err| {
        Rejection::new(StatusCode::BAD_REQUEST, format!("request body is not valid JSON: {err}"), media)
    })?;
    let mut registrations = Vec::new();
    let mut batch = match json {
        serde_json::Value::Array(items) => {
            let max = state.config.limits.max_batch;
            if max == 0 {
                return Err(Rejection::new(StatusCode::BAD_REQUEST, "batched requests are disabled", media));
            }
            if items.is_empty() || items.len() > max {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    format!("a batch must hold 1 to {max} operations, not {}", items.len()),
                    media,
                ));
            }
            let mut requests = Vec::with_capacity(items.len());
            for item in items {
                requests.push(read_request(state, item, media, &mut registrations).await?);
            }
            BatchRequest::Batch(requests)
        }
        other => BatchRequest::Single(read_request(state, other, media, &mut registrations).await?),
    };
    let mut auth_mutations = 0u64;
    for request in batch.iter_mut() {
        let (operation, checked) = inspect(state, request, media)?;
        if operation == Some(OperationType::Subscription) {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "subscriptions are served over WebSocket at /graphql",
                media,
            ));
        }
        auth_mutations = auth_mutations.saturating_add(checked.auth_mutations());
    }
    guard::check_auth_mutations(auth_mutations).map_err(|error| Rejection::refused(error, media))?;
    state.persisted.register(registrations).await;
    Ok((batch, media))
}

/// `GET /graphql`: a WebSocket upgrade, or a query in the URL.
pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: HttpRequest,
) -> Response {
    if request.headers().contains_key(header::UPGRADE) {
        // Idempotency keys travel in a mutation's input over WebSocket, not in the upgrade.
        let client = ClientInfo { idempotency_key: None, ..client_info(&state, peer, request.headers()) };
        return super::ws::upgrade(state, client, request).await;
    }
    // The head alone: a body is not `Sync`, so a reference to the whole request cannot be held
    // across the awaits below.
    let (request, _) = request.into_parts();
    let prepared = get_inner(&state, &request).await;
    let (response, headers) = detached(state, peer, request.headers, prepared, Method::GET).await;
    caching::conditional(&headers, response)
}

async fn get_inner(state: &AppState, request: &axum::http::request::Parts) -> Result<Prepared, Rejection> {
    let media = negotiate(&request.headers)?;
    let mut fields = serde_json::Map::new();
    for (key, value) in url::form_urlencoded::parse(request.uri.query().unwrap_or("").as_bytes()) {
        let value = match key.as_ref() {
            "query" | "operationName" | "documentId" => serde_json::Value::String(value.into_owned()),
            "variables" | "extensions" => serde_json::from_str(&value).map_err(|_| {
                Rejection::new(StatusCode::BAD_REQUEST, format!("`{key}` must be a JSON object"), media)
            })?,
            _ => continue,
        };
        fields.insert(key.into_owned(), value);
    }
    let mut registrations = Vec::new();
    let mut gql = read_request(state, serde_json::Value::Object(fields), media, &mut registrations).await?;
    match inspect(state, &mut gql, media)?.0 {
        Some(OperationType::Query) | None => {}
        Some(OperationType::Mutation) => {
            let mut rejection =
                Rejection::new(StatusCode::METHOD_NOT_ALLOWED, "mutations must be sent with POST", media);
            rejection.allow_post_only = true;
            return Err(rejection);
        }
        Some(OperationType::Subscription) => {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "subscriptions are served over WebSocket at /graphql",
                media,
            ));
        }
    }
    state.persisted.register(registrations).await;
    Ok((BatchRequest::Single(gql), media))
}

/// One request object, its persisted document's text filled in (`persisted`; a document
/// to register once the request passes the guards goes into `registrations`), then read.
async fn read_request(
    state: &AppState,
    mut value: serde_json::Value,
    media: Media,
    registrations: &mut Vec<Registration>,
) -> Result<Request, Rejection> {
    let registration = state.persisted.resolve(&mut value).await.map_err(|refusal| {
        let status = if refusal.is_malformed() { StatusCode::BAD_REQUEST } else { media.request_error_status() };
        Rejection { status, error: refusal.into_error(), media, allow_post_only: false }
    })?;
    registrations.extend(registration);
    parse_request(value, media)
}

fn parse_request(value: serde_json::Value, media: Media) -> Result<Request, Rejection> {
    let bad = |message: String| Rejection::new(StatusCode::BAD_REQUEST, message, media);
    let serde_json::Value::Object(fields) = &value else {
        return Err(bad("a GraphQL request must be a JSON object with a `query`".into()));
    };
    match fields.get("query") {
        Some(serde_json::Value::String(query)) if !query.trim().is_empty() => {}
        Some(serde_json::Value::String(_)) | None => return Err(bad("the request has no `query`".into())),
        Some(_) => return Err(bad("`query` must be a string".into())),
    }
    if let Some(variables) = fields.get("variables")
        && !(variables.is_object() || variables.is_null())
    {
        return Err(bad("`variables` must be an object".into()));
    }
    serde_json::from_value(value).map_err(|err| bad(format!("invalid GraphQL request: {err}")))
}

/// Counts the document's tokens, parses it (once: the parsed form is kept for execution),
/// applies the edge guards, and finds the type of the operation that will run (`None` when
/// that is for execution to decide). A document seen before comes from the cache, which holds
/// only documents that passed.
fn inspect(
    state: &AppState,
    request: &mut Request,
    media: Media,
) -> Result<(Option<OperationType>, guard::Checked), Rejection> {
    let limits = &state.config.limits;
    let refused = |error: ServerError| Rejection::refused(error, media);
    let known = state.documents.get(&request.query);
    crate::metrics::cache_lookup("documents", crate::metrics::hit_or_miss(known.is_some()));
    let checked = match known {
        Some((known, checked)) => {
            request.set_parsed_query(known);
            checked
        }
        None => {
            guard::check_tokens(&request.query, limits).map_err(refused)?;
            let query = request.query.clone();
            let document = request.parsed_query().map_err(|err| refused(guard::parse_error(&err, limits)))?;
            let checked = guard::check_document(document, limits).map_err(refused)?;
            state.documents.insert(&query, document, checked);
            checked
        }
    };
    let operation_name = request.operation_name.clone();
    let document = request.parsed_query().map_err(|err| refused(guard::parse_error(&err, limits)))?;
    Ok((guard::operation_type(document, operation_name.as_deref()), checked))
}

/// Resolves who is calling, admits the request on its plan's limits (a refused request, or one
/// the edge refused already, runs nothing), runs it, and puts the `RateLimit-Policy` and
/// `RateLimit` fields on the answer, whatever it is.
async fn respond(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    prepared: Result<Prepared, Rejection>,
    method: Method,
) -> Response {
    let started = std::time::Instant::now();
    let media = match &prepared {
        Ok((_, media)) => *media,
        Err(rejection) => rejection.media,
    };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let api_key = headers.get(API_KEY).and_then(|v| v.to_str().ok());
    let client = client_info(state, peer, headers);
    let principal = match state.principal(authorization, api_key).await {
        Ok(principal) => principal,
        Err(err) => {
            let err = async_graphql::Error::from(err).into_server_error(Default::default());
            unchecked(state, prepared, &client, &err, started);
            return Rejection {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: Box::new(err),
                media,
                allow_post_only: false,
            }
            .into_response();
        }
    };
    let mut audit = HttpAudit::begin(&principal, client.trace_id.clone(), started);
    let tenant = principal.tenant_label();
    // What each operation will cost; a request the edge refused counts as one operation that
    // costs nothing (it still took the server's time, and a client hammering bad documents is
    // held to its rate like any other).
    let mut prepared = prepared;
    let costs: Vec<u64> = match &mut prepared {
        Ok((batch, _)) => batch.iter_mut().map(|request| estimate(state, request)).collect(),
        Err(_) => vec![0],
    };
    let kinds = read_operations(state, &mut audit, &mut prepared);
    let operations = u32::try_from(costs.len()).unwrap_or(u32::MAX);
    let total_cost = costs.iter().fold(0u64, |sum, cost| sum.saturating_add(*cost));
    let admission = state.plan_limits.admit(&principal, client.addr, operations, total_cost).await;
    // Kept to meter the request once it is answered (only callers with a tenant are metered).
    let metered = principal.tenant.is_some().then(|| principal.clone());
    let (mut response, record, codes) = match (prepared, admission.refusal) {
        (_, Some(refusal)) => {
            audit.refused(&state.audit, &refusal.error());
            let code = graphql_metrics::code_of(std::slice::from_ref(&refusal.error()));
            let response = refused(&refusal, media);
            (response, UsageRecord::refused(operations.into(), refusal.is_rate_limited()), vec![code; kinds.len()])
        }
        (Err(rejection), None) => {
            audit.refused(&state.audit, &rejection.error);
            let code = graphql_metrics::code_of(std::slice::from_ref(&*rejection.error));
            (rejection.into_response(), UsageRecord::refused(1, false), vec![code])
        }
        (Ok((batch, media)), None) => {
            let (response, record, answers) = execute(state, principal, client, batch, &costs, media, method).await;
            let codes = answers.iter().map(|answer| graphql_metrics::code_of(answer.errors())).collect();
            audit.answered(&state.audit, answers);
            (response, record, codes)
        }
    };
    let elapsed = started.elapsed();
    for (kind, code) in kinds.into_iter().zip(codes) {
        graphql_metrics::record(kind, tenant.clone(), code, elapsed);
    }
    if let Some(principal) = &metered {
        // Bytes as sent: every body here is whole, so its size is known.
        let bytes = axum::body::HttpBody::size_hint(response.body()).exact().unwrap_or(0);
        state.usage.record(principal, UsageRecord { response_bytes: bytes, ..record });
    }
    if let Some((policy, current)) = admission.headers()
        && let (Ok(policy), Ok(current)) = (HeaderValue::from_str(&policy), HeaderValue::from_str(&current))
    {
        response.headers_mut().insert(RATELIMIT_POLICY, policy);
        response.headers_mut().insert(RATELIMIT, current);
    }
    response
}

/// A request whose credentials could not be checked (the database did not answer): nothing
/// ran, but it is counted and audited like any refusal, as an anonymous caller's (who it was
/// is unknown), so that an outage of the check shows in the metrics and the trail.
fn unchecked(
    state: &AppState,
    mut prepared: Result<Prepared, Rejection>,
    client: &ClientInfo,
    error: &ServerError,
    started: std::time::Instant,
) {
    let unknown = Principal::without_tenant(Credentials::Anonymous, None);
    let mut audit = HttpAudit::begin(&unknown, client.trace_id.clone(), started);
    let kinds = read_operations(state, &mut audit, &mut prepared);
    audit.refused(&state.audit, error);
    let code = graphql_metrics::code_of(std::slice::from_ref(error));
    for kind in kinds {
        graphql_metrics::record(kind, unknown.tenant_label(), code.clone(), started.elapsed());
    }
}

/// Hands each operation's shape to the request's audit and returns their types (metric
/// labels); a request the edge refused counts as one operation of no known type.
fn read_operations(
    state: &AppState,
    audit: &mut HttpAudit,
    prepared: &mut Result<Prepared, Rejection>,
) -> Vec<&'static str> {
    match prepared {
        Ok((batch, _)) => {
            audit.shape(&state.audit, batch);
            batch.iter_mut().map(operation_type).collect()
        }
        Err(_) => vec![graphql_metrics::operation_type(None)],
    }
}

/// The type of one prepared operation, as a metric label.
fn operation_type(request: &mut Request) -> &'static str {
    let operation_name = request.operation_name.clone();
    let operation =
        request.parsed_query().ok().and_then(|document| guard::operation_type(document, operation_name.as_deref()));
    graphql_metrics::operation_type(operation)
}

/// The estimated cost of one prepared operation (`graphql::guard::demand`).
fn estimate(state: &AppState, request: &mut Request) -> u64 {
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    match request.parsed_query() {
        Ok(document) => state.demand.cost(document, operation_name.as_deref(), &variables),
        // Parsed by `inspect` already: unreachable, and execution would report it.
        Err(_) => 0,
    }
}

/// A request the plan limits refused: 429 with `Retry-After` when waiting helps, 400 for a
/// query no budget holds; the error alone, nothing ran.
fn refused(refusal: &Refusal, media: Media) -> Response {
    let status = match refusal.retry_after() {
        Some(_) => StatusCode::TOO_MANY_REQUESTS,
        None => StatusCode::BAD_REQUEST,
    };
    let mut response =
        Rejection { status, error: Box::new(refusal.error()), media, allow_post_only: false }.into_response();
    if let Some(wait) = refusal.retry_after() {
        // Whole seconds, rounded up: a client retrying at once would only be refused again.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn execute(
    state: &AppState,
    principal: Principal,
    client: ClientInfo,
    batch: BatchRequest,
    costs: &[u64],
    media: Media,
    method: Method,
) -> (Response, UsageRecord, Vec<Answer>) {
    let trace_id = client.trace_id.clone();
    // What the resolvers found of the answer's freshness (`graphql::cache_control`).
    let ceiling = Ceiling::default();
    let batch = match batch {
        BatchRequest::Single(request) => {
            BatchRequest::Single(state.prepare(request, principal, client).data(ceiling.clone()))
        }
        BatchRequest::Batch(requests) => BatchRequest::Batch(
            requests.into_iter().map(|request| state.prepare(request, principal.clone(), client.clone())).collect(),
        ),
    };
    let limits = &state.config.limits;
    // One deadline for the whole HTTP request: a batch shares it.
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    let run = |mut request: Request| {
        let operation_name = request.operation_name.clone();
        let (ty, name) = request
            .parsed_query()
            .map(|doc| guard::operation_label(doc, operation_name.as_deref()))
            .unwrap_or_default();
        let span = telemetry::trace::operation_span(ty, name.as_deref());
        let sources = SourcesUsed::default();
        let request = request.data(sources.clone());
        // The text, to tell a variable of the wrong type from a literal (`guard::assign_codes`;
        // without variables, only a literal can be), and for null propagation.
        let query = request.query.clone();
        let variables = !request.variables.is_empty();
        // Each operation on its own, as async-graphql's `execute_batch` does (concurrently), so
        // a panic or the deadline costs only the operations it hits.
        let execution = guard::catch_panic(state.schema.execute(request), || {
            GqlResponse::from_errors(vec![guard::internal_error()])
        });
        guard::deadline::run_until(execution, deadline, limits.request_timeout).instrument(span).map(
            move |mut response| {
                guard::assign_codes(&mut response.errors, limits, variables.then_some(query.as_str()));
                state.propagate_nulls(&mut response, &query, operation_name.as_deref());
                sources.annotate(&mut response);
                response
            },
        )
    };
    let mut response = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(run(request).await),
        BatchRequest::Batch(requests) => {
            BatchResponse::Batch(requests.into_iter().map(run).collect::<FuturesOrdered<_>>().collect().await)
        }
    };
    let mut validator = None;
    // Each operation's estimated cost, as `extensions.cost`.
    match &mut response {
        BatchResponse::Single(single) => set_cost(single, costs.first().copied().unwrap_or(0)),
        BatchResponse::Batch(all) => all.iter_mut().zip(costs).for_each(|(single, cost)| set_cost(single, *cost)),
    }
    let (status, body) = match &mut response {
        BatchResponse::Single(single) => {
            // Before `finish` adds the trace id: equal data, equal ETag.
            validator =
                (method == Method::GET).then(|| caching::Validator::of(single, &ceiling, &media.content_type()));
            finish(single, trace_id.as_deref());
            if guard::deadline::is_timeout(single) {
                // No result at all: the errors alone, as for any request without one.
                let body = json!({ "errors": single.errors, "extensions": single.extensions });
                (StatusCode::GATEWAY_TIMEOUT, serde_json::to_vec(&body).map(|body| (body, Vec::new())))
            } else if guard::is_request_error(single) {
                (media.request_error_status(), serde_json::to_vec(&single).map(|body| (body, Vec::new())))
            } else {
                (StatusCode::OK, serde_json::to_vec(&single).map(|body| (body, Vec::new())))
            }
        }
        BatchResponse::Batch(all) => {
            all.iter_mut().for_each(|single| finish(single, trace_id.as_deref()));
            (StatusCode::OK, batch_body(all))
        }
    };
    let responses = responses_of(&response);
    let (body, answers) = match body {
        Ok((body, sizes)) => {
            // A single answer's size is the body's; a batch's are each item's.
            let sizes = if sizes.is_empty() { vec![body.len()] } else { sizes };
            (body, responses.iter().zip(sizes).map(|(r, size)| Answer::of(r, size)).collect())
        }
        Err(err) => {
            tracing::error!(%err, "serialising a GraphQL response");
            let record = usage_of(&response, costs);
            let failed = Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", media);
            let answers = responses.iter().map(|_| Answer::failed((*failed.error).clone(), 0)).collect();
            return (failed.into_response(), UsageRecord { errors: record.requests, ..record }, answers);
        }
    };
    let record = usage_of(&response, costs);
    let retry_after = match &response {
        BatchResponse::Single(single) => retry_after(single),
        BatchResponse::Batch(all) => all.iter().filter_map(retry_after).max(),
    };
    let mut http = Response::new(Body::from(body));
    *http.status_mut() = status;
    let headers = http.headers_mut();
    if let Some(seconds) = retry_after {
        // The status stays 200 (GraphQL-over-HTTP: the request was well-formed and executed);
        // the header tells HTTP-level clients and proxies when to come back, as 429s do.
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    headers.insert(header::CONTENT_TYPE, media.content_type());
    // Never stored, unless the GET edge finds the answer cacheable (`caching::conditional`).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding, Authorization, X-API-Key"));
    if let Some(validator) = validator {
        http.extensions_mut().insert(validator);
    }
    (http, record, answers)
}

/// A batch's body, `[a,b,…]` (what serialising the `BatchResponse` writes), item by item so
/// that each operation's size is known for its audit record.
fn batch_body(all: &[GqlResponse]) -> serde_json::Result<(Vec<u8>, Vec<usize>)> {
    let mut body = vec![b'['];
    let mut sizes = Vec::with_capacity(all.len());
    for (i, single) in all.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let before = body.len();
        serde_json::to_writer(&mut body, single)?;
        sizes.push(body.len() - before);
    }
    body.push(b']');
    Ok((body, sizes))
}

fn set_cost(response: &mut GqlResponse, cost: u64) {
    response.extensions.insert("cost".into(), Value::from(cost));
}

/// What the transport knows of the caller: its address and, for writes, its idempotency key.
/// The address is the TCP peer's, or behind `FINQL_TRUSTED_PROXIES` the one they forwarded.
fn client_info(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> ClientInfo {
    // Lossy rather than dropped: a key with bytes outside printable ASCII must be refused by
    // the write it was meant to protect, not silently ignored.
    let idempotency_key = headers.get("idempotency-key").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let addr = state.config.trusted_proxies.client_addr(peer.ip(), forwarded);
    // The request's W3C trace id, which the HTTP layer (`telemetry::trace`) put there: the one
    // place the GraphQL handlers read it (error extensions, audit records, spans).
    let trace_id = headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ClientInfo { addr: Some(addr), idempotency_key, trace_id }
}

/// What an executed request used, for usage metering (each operation of a batch is a request,
/// charged its estimated cost); the response's bytes are counted once it is sent.
fn usage_of(response: &BatchResponse, costs: &[u64]) -> UsageRecord {
    let responses = responses_of(response);
    let cost = costs.iter().fold(0u64, |sum, cost| sum.saturating_add(*cost));
    UsageRecord { cost, ..usage::graphql::record_of(responses, 0) }
}

/// The operations' responses, one for a single request.
fn responses_of(response: &BatchResponse) -> &[GqlResponse] {
    match response {
        BatchResponse::Single(single) => std::slice::from_ref(single),
        BatchResponse::Batch(all) => all,
    }
}

/// The longest `extensions.retryAfter` (seconds) of a response's `RATE_LIMITED` errors.
fn retry_after(response: &GqlResponse) -> Option<u64> {
    let seconds = |err: &ServerError| match err.extensions.as_ref()?.get("retryAfter")? {
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    response.errors.iter().filter_map(seconds).max()
}

/// The request's trace id (the W3C trace id of its spans, also its
/// `x-request-id`) as the response's `extensions.traceId`, as a WebSocket operation's first
/// result has it (clients that never see headers, e.g. behind a GraphQL client library, can
/// still quote it), and on `INTERNAL` errors, so a support request can be matched to the
/// logged cause and the audit record.
fn finish(response: &mut GqlResponse, trace_id: Option<&str>) {
    let Some(trace_id) = trace_id else { return };
    response.extensions.insert("traceId".into(), Value::from(trace_id));
    for err in &mut response.errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code") == Some(&Value::from(ErrorCode::Internal.as_str())) {
            ext.set("traceId", trace_id);
        }
    }
}

/// Picks the response media type from `Accept` (highest q wins; on a tie, the newer
/// `application/graphql-response+json`). No `Accept`, or `*/*`, gets `application/json`, as
/// the spec says for legacy clients.
fn negotiate(headers: &HeaderMap) -> Result<Media, Rejection> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Media::Json);
    };
    let mut best: Option<(f32, Media)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q =
            parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let media = match essence.as_str() {
            GRAPHQL_RESPONSE_JSON => Media::GraphqlResponseJson,
            APPLICATION_JSON | "application/*" | "*/*" => Media::Json,
            _ => continue,
        };
        if q <= 0.0 {
            continue;
        }
        let better = match best {
            None => true,
            Some((best_q, best_media)) => {
                q > best_q || (q == best_q && media == Media::GraphqlResponseJson && best_media == Media::Json)
            }
        };
        if better {
            best = Some((q, media));
        }
    }
    best.map(|(_, media)| media).ok_or_else(|| {
        Rejection::new(
            StatusCode::NOT_ACCEPTABLE,
            "responses are application/graphql-response+json or application/json",
            Media::Json,
        )
    })
}
