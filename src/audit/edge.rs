//! The HTTP edge's side of the audit: the records of one HTTP request (one per operation of a
//! batch), begun when the caller is known, shaped from the parsed documents before they run,
//! and completed from the answers. Kept here so that `http::graphql` only hands over what it
//! has at each step.

use std::{sync::Arc, time::Instant};

use async_graphql::{BatchRequest, Request, Response, ServerError};

use super::{AuditLog, AuditRecord, Event, Operation, Transport, document::document_hash};
use crate::identity::Principal;

/// The audit of one HTTP request, until its answer is known.
pub struct HttpAudit {
    /// A record with what every operation of the request shares (who, when, trace id).
    template: AuditRecord,
    started: Instant,
    operations: Vec<Arc<Operation>>,
}

/// What one answered operation amounts to for its record.
#[derive(Clone, Debug)]
pub struct Answer {
    errors: Vec<ServerError>,
    bytes: u64,
}

impl Answer {
    /// `response` (error codes assigned), sent in `bytes` bytes.
    pub fn of(response: &Response, bytes: usize) -> Self {
        Self { errors: response.errors.clone(), bytes: u64::try_from(bytes).unwrap_or(u64::MAX) }
    }

    /// The errors the operation was answered with (codes assigned).
    pub fn errors(&self) -> &[ServerError] {
        &self.errors
    }

    /// An operation answered with `error` alone (e.g. the response could not be serialised).
    pub fn failed(error: ServerError, bytes: usize) -> Self {
        Self { errors: vec![error], bytes: u64::try_from(bytes).unwrap_or(u64::MAX) }
    }
}

impl HttpAudit {
    /// Begins the audit of a request from `principal`, which arrived at `started`.
    pub fn begin(principal: &Principal, trace_id: Option<String>, started: Instant) -> Self {
        let template =
            AuditRecord::new(principal, trace_id, Event::Request, Transport::Http, Arc::new(Operation::default()));
        Self { template, started, operations: Vec::new() }
    }

    /// Reads each operation's shape from its parsed document (parsed already by the edge
    /// guards: this only walks it, or finds it walked before).
    pub fn shape(&mut self, log: &AuditLog, batch: &mut BatchRequest) {
        self.operations = batch.iter_mut().map(|request| log.shape(request)).collect();
    }

    /// Every operation refused before it ran, with `error` (one record when the request could
    /// not be read at all).
    pub fn refused(self, log: &AuditLog, error: &ServerError) {
        let elapsed = self.started.elapsed();
        for operation in self.operations_or_one() {
            let mut record = self.template.clone();
            record.operation = operation;
            record.refused(error);
            record.duration = elapsed;
            log.record(record);
        }
    }

    /// The operations answered, in order, each with its answer.
    pub fn answered(self, log: &AuditLog, answers: Vec<Answer>) {
        let elapsed = self.started.elapsed();
        for (operation, answer) in self.operations_or_one().into_iter().zip(answers) {
            let mut record = self.template.clone();
            record.operation = operation;
            record.errors(&answer.errors);
            record.response_bytes = answer.bytes;
            record.duration = elapsed;
            log.record(record);
        }
    }

    fn operations_or_one(&self) -> Vec<Arc<Operation>> {
        if self.operations.is_empty() { vec![self.template.operation.clone()] } else { self.operations.clone() }
    }
}

/// A WebSocket operation refused before it ran: `message` (the `error` sent, `bytes` long)
/// carries the codes.
pub fn ws_refused(
    log: &AuditLog,
    principal: &Principal,
    operation: Arc<Operation>,
    message: &serde_json::Value,
    bytes: usize,
) {
    let subscription = operation.operation_type == Some(async_graphql::parser::types::OperationType::Subscription);
    let event = if subscription { Event::SubscriptionStart } else { Event::Request };
    let mut record = AuditRecord::new(principal, None, event, Transport::WebSocket, operation);
    let errors: Vec<ServerError> = message["payload"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| serde_json::from_value(e.clone()).ok()).collect())
        .unwrap_or_default();
    record.outcome = super::Outcome::Refused;
    record.errors(&errors);
    record.response_bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
    log.record(record);
}

/// What is known of a request the guards refused before reading it (too many tokens, too deep,
/// unparsable): its name as the client gave it and the hash of its text, nothing parsed.
pub fn unread(request: &Request) -> Operation {
    Operation {
        operation_name: request.operation_name.clone(),
        document_hash: Some(document_hash(&request.query)),
        ..Operation::default()
    }
}

/// The shape of one request's operation (the empty shape, with the hash, when it does not
/// parse: execution reports why).
pub fn shape_of(request: &mut Request) -> Operation {
    let hash = document_hash(&request.query);
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    match request.parsed_query() {
        Ok(document) => Operation::of(hash, document, operation_name.as_deref(), &variables),
        Err(_) => Operation { document_hash: Some(hash), ..Operation::default() },
    }
}
