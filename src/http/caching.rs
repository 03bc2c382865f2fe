//! HTTP caching of GraphQL answers over GET: `Cache-Control` by data tier, a strong `ETag`,
//! `If-None-Match` answered 304, and the compression of every answer.
//!
//! **Policy.** A document's policy is the most restrictive of the fields it selects, as
//! async-graphql's cache hints merge them (`graphql::cache_control` has the tiers), capped by
//! what its resolvers found (klines of an open window are live). Then:
//! - an answer with errors, a refusal, a mutation or a POST: `no-store` (a failure must not
//!   outlive its cause, and POST is not cacheable);
//! - a document that selects anything personal (the user, the ledger, the tenant): `private,
//!   no-store`;
//! - a document without a hint (introspection, `__typename`): `no-store`, the safe default;
//! - otherwise `max-age` of its tier, `public` without credentials, `private` with them.
//!
//! **Credentials.** What a caller sees of the market depends on its plan (real-time or
//! delayed, how far back): the same URL answers differently per tenant. Rather than rely on
//! every shared cache honouring `Vary: Authorization, X-API-Key` (RFC 9111 holds only
//! `Authorization` back from shared caches, not `X-API-Key`), a request with credentials is
//! answered `private`: its own browser or client may keep it, no proxy or CDN shares it.
//! Anonymous callers all get the anonymous plan's answer, so theirs is `public`. `Vary` still
//! names the credential headers, and `Accept` and `Accept-Encoding`.
//!
//! **ETag.** A hash of the answer as executed, before its per-request `extensions.traceId` is
//! added (equal data, equal tag), and of its media type (the same data as
//! `application/json` and as `application/graphql-response+json` are different
//! representations). Compression makes another representation again, so the tag is
//! suffixed with the coding (`"…-br"`) on the way out (`tag_encoding`) and the suffix is
//! ignored when comparing `If-None-Match`: a cache revalidating its gzip copy gets its own
//! tag back on the 304.

use async_graphql::Response as GqlResponse;
use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use base64::Engine;
use sha2::{Digest, Sha256};
use tower_http::{
    CompressionLevel,
    compression::{
        CompressionLayer,
        predicate::{NotForContentType, Predicate, SizeAbove},
    },
};

use crate::graphql::cache_control::Ceiling;

/// Answers smaller than this go uncompressed: below about a kilobyte the codings' framing and
/// dictionary warm-up save a few dozen bytes at best, the whole answer fits one TCP segment
/// either way, and the CPU is better spent elsewhere.
const MIN_COMPRESSED_BYTES: u16 = 1024;
/// One level for every coding: brotli's default (11) is meant for static files and takes tens
/// of milliseconds per hundred kilobytes; at 4, brotli still beats gzip's default on JSON,
/// zstd is at its own default's speed, and gzip a little faster than its default.
const COMPRESSION_LEVEL: i32 = 4;
/// The content codings whose tag suffix `If-None-Match` ignores (`tag_encoding`).
const CODINGS: [&str; 3] = ["br", "zstd", "gzip"];

/// How an answer may be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// Not at all: errors, no hint, or a hint of `no_cache`.
    NoStore,
    /// Personal data: not at all, and never by a shared cache.
    Personal,
    /// For this many seconds.
    Fresh(u32),
}

/// What the GET edge needs to answer conditionally, attached to an executed answer as a
/// response extension by `http::graphql` (`Validator::of`) and taken off by
/// `conditional`.
#[derive(Clone, Debug)]
pub struct Validator {
    policy: Policy,
    /// The opaque part of the strong ETag (no quotes, no coding suffix); `None` for answers
    /// with errors, which are never revalidated.
    tag: Option<String>,
}

impl Validator {
    /// The policy and tag of one executed answer in `media` (its `Content-Type`), before
    /// `extensions.traceId` is added.
    pub fn of(response: &GqlResponse, ceiling: &Ceiling, media: &HeaderValue) -> Self {
        if response.is_err() {
            return Self { policy: Policy::NoStore, tag: None };
        }
        let hint = response.cache_control;
        let policy = match (hint.public, u32::try_from(hint.max_age)) {
            (false, _) => Policy::Personal,
            (true, Ok(seconds)) if seconds > 0 => Policy::Fresh(ceiling.seconds().map_or(seconds, |c| c.min(seconds))),
            _ => Policy::NoStore,
        };
        let mut hash = Sha256::new();
        hash.update(media.as_bytes());
        hash.update([0]);
        // Serialising into the hash cannot fail where serialising the body succeeds; if it
        // did, the answer simply has no tag.
        let tag = serde_json::to_writer(&mut hash, response)
            .ok()
            .map(|()| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hash.finalize()[..16]));
        Self { policy, tag }
    }

    fn cache_control(&self, credentialed: bool) -> HeaderValue {
        match self.policy {
            Policy::NoStore => HeaderValue::from_static("no-store"),
            Policy::Personal => HeaderValue::from_static("private, no-store"),
            Policy::Fresh(seconds) => {
                let scope = if credentialed { "private" } else { "public" };
                HeaderValue::from_str(&format!("{scope}, max-age={seconds}"))
                    .unwrap_or(HeaderValue::from_static("no-store"))
            }
        }
    }
}

/// The caching headers of a GET answer, and 304 (no body, the same headers) when the client's
/// `If-None-Match` names it. Anything but an executed 200 answer is `no-store`.
pub fn conditional(request: &HeaderMap, mut response: Response) -> Response {
    let validator = response.extensions_mut().remove::<Validator>();
    let Some(validator) = validator.filter(|_| response.status() == StatusCode::OK) else {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    let credentialed = request.contains_key(header::AUTHORIZATION) || request.contains_key(super::graphql::API_KEY);
    response.headers_mut().insert(header::CACHE_CONTROL, validator.cache_control(credentialed));
    let Some(tag) = validator.tag else { return response };
    let matched = request.get_all(header::IF_NONE_MATCH).iter().find_map(|value| matching(value, &tag));
    let not_modified = matched.is_some();
    let etag = matched.unwrap_or_else(|| format!("\"{tag}\""));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.body_mut() = Body::empty();
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
}

/// The entity tag of an `If-None-Match` value that names `tag` (weak comparison, as RFC 9110
/// says for `If-None-Match`; any coding suffix), as the client sent it; `*` names the
/// current tag itself.
fn matching(value: &HeaderValue, tag: &str) -> Option<String> {
    let value = value.to_str().ok()?;
    if value.trim() == "*" {
        return Some(format!("\"{tag}\""));
    }
    value.split(',').map(str::trim).find_map(|candidate| {
        let opaque = candidate.strip_prefix("W/").unwrap_or(candidate).strip_prefix('"')?.strip_suffix('"')?;
        let base = CODINGS
            .iter()
            .find_map(|coding| opaque.strip_suffix(coding).and_then(|rest| rest.strip_suffix('-')))
            .unwrap_or(opaque);
        (base == tag).then(|| candidate.to_owned())
    })
}

/// The compression of every answer: zstd, brotli or gzip as the client prefers (zstd, then
/// brotli, on a tie), for bodies of at least `MIN_COMPRESSED_BYTES`. A WebSocket upgrade
/// has no body and is never touched; `/metrics` is compressed like anything else when its
/// scraper asks (Prometheus asks for gzip).
pub fn compression() -> CompressionLayer<impl Predicate> {
    let predicate = SizeAbove::new(MIN_COMPRESSED_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new().no_deflate().quality(CompressionLevel::Precise(COMPRESSION_LEVEL)).compress_when(predicate)
}

/// Outside the compression layer: a compressed answer's ETag names its coding (`"tag"`
/// becomes `"tag-br"`), since a strong tag names one representation's exact bytes.
pub async fn tag_encoding(mut response: Response) -> Response {
    let headers = response.headers();
    let (Some(coding), Some(etag)) = (headers.get(header::CONTENT_ENCODING), headers.get(header::ETAG)) else {
        return response;
    };
    let (Ok(coding), Ok(etag)) = (coding.to_str(), etag.to_str()) else { return response };
    if let Some(opaque) = etag.strip_prefix('"').and_then(|etag| etag.strip_suffix('"'))
        && let Ok(tagged) = HeaderValue::from_str(&format!("\"{opaque}-{coding}\""))
    {
        response.headers_mut().insert(header::ETAG, tagged);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn if_none_match_compares_weakly_and_ignores_the_coding() {
        assert_eq!(matching(&value("\"abc\""), "abc").as_deref(), Some("\"abc\""));
        assert_eq!(matching(&value("W/\"abc\""), "abc").as_deref(), Some("W/\"abc\""));
        assert_eq!(matching(&value("\"x\", \"abc-br\""), "abc").as_deref(), Some("\"abc-br\""));
        assert_eq!(matching(&value("\"abc-zstd\""), "abc").as_deref(), Some("\"abc-zstd\""));
        assert_eq!(matching(&value("*"), "abc").as_deref(), Some("\"abc\""));
        assert_eq!(matching(&value("\"abcd\""), "abc"), None);
        assert_eq!(matching(&value("\"abc-deflate\""), "abc"), None);
        assert_eq!(matching(&value("abc"), "abc"), None);
    }

    /// The tiers are literals in attributes all over the schema (`graphql::cache_control`):
    /// every root field must carry one of them, or be personal, and `Query` itself none (a
    /// merged part's type-level hint would apply to every document).
    #[test]
    fn every_root_field_has_a_tier() {
        use crate::graphql::cache_control::{CLOSED, LIVE, REFERENCE};
        use async_graphql::{
            CacheControl, OutputType,
            registry::{MetaType, Registry},
        };

        let mut registry = Registry::default();
        <crate::schema::Query as OutputType>::create_type_info(&mut registry);
        let name = <crate::schema::Query as OutputType>::type_name();
        let Some(MetaType::Object { fields, cache_control, .. }) = registry.types.get(name.as_ref()) else {
            panic!("Query is not an object")
        };
        assert_eq!(*cache_control, CacheControl::default());
        assert!(fields.len() > 10, "{}", fields.len());
        for field in fields.values() {
            let hint = field.cache_control;
            let personal = !hint.public && hint.max_age == -1;
            let tiered =
                hint.public && [LIVE, REFERENCE, CLOSED].iter().any(|tier| i64::from(*tier) == i64::from(hint.max_age));
            assert!(personal || tiered, "Query.{} has no tier: {hint:?}", field.name);
        }
    }

    #[test]
    fn credentials_make_a_fresh_answer_private() {
        let fresh = Validator { policy: Policy::Fresh(300), tag: None };
        assert_eq!(fresh.cache_control(false), "public, max-age=300");
        assert_eq!(fresh.cache_control(true), "private, max-age=300");
        let personal = Validator { policy: Policy::Personal, tag: None };
        assert_eq!(personal.cache_control(false), "private, no-store");
    }
}
