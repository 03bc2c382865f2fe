//! Self-hosted GraphiQL playground at `GET /graphiql`.
//!
//! finql is deployed in bank private clouds with no internet access, and
//! async-graphql's `GraphiQLSource` page loads React and GraphiQL from a CDN,
//! so it stays blank there. This module serves the page and pinned copies of
//! its assets from the binary itself (`assets/graphiql/`, versions and refresh
//! steps in `assets/graphiql/VERSIONS.md`), under a strict
//! Content-Security-Policy: the page's own script is a file, never inline.
//!
//! That script (`finql-graphiql.js`) is the fetcher: it decides from the text GraphiQL sends
//! whether an operation is a subscription (WebSocket) or not (HTTP), and which operation it
//! is, since GraphiQL's own parse of the editor lags an edit by 100 ms. Its tests run it in
//! Node on the vendored bundles: `node --test tests/graphiql/` (CI runs them).

use axum::{
    Router,
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// CSP of the page. GraphiQL needs `'unsafe-inline'` styles (its dialogs
/// inject a `<style>` element) and `data:` fonts (its CSS embeds its fonts).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     connect-src 'self' ws: wss:; \
     style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; \
     font-src 'self' data:; \
     base-uri 'none'; \
     form-action 'none'; \
     frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("../../assets/graphiql/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Cache policy of an asset.
#[derive(Clone, Copy)]
enum Cache {
    /// Vendored file, referenced with a `?v=<version>` that changes with it.
    Immutable,
    /// finql's own file, which may change with any release.
    Revalidate,
}

struct Asset {
    name: &'static str,
    content_type: &'static str,
    cache: Cache,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr, $cache:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            cache: $cache,
            body: include_bytes!(concat!("../../assets/graphiql/", $name)),
        }
    };
}

/// Files served under `/graphiql/assets/`.
const ASSETS: &[Asset] = &[
    asset!("react.production.min.js", JS, Cache::Immutable),
    asset!("react-dom.production.min.js", JS, Cache::Immutable),
    asset!("graphql-ws.min.js", JS, Cache::Immutable),
    asset!("graphiql.min.js", JS, Cache::Immutable),
    asset!("graphiql.min.css", CSS, Cache::Immutable),
    asset!("finql-graphiql.js", JS, Cache::Revalidate),
    asset!("finql-graphiql.css", CSS, Cache::Revalidate),
    asset!("LICENSE.react", TEXT, Cache::Revalidate),
    asset!("LICENSE.react-dom", TEXT, Cache::Revalidate),
    asset!("LICENSE.graphql-ws", TEXT, Cache::Revalidate),
    asset!("LICENSE.graphiql", TEXT, Cache::Revalidate),
];

/// `GET /graphiql` and `GET /graphiql/assets/{file}`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/graphiql", get(index)).route("/graphiql/assets/{file}", get(asset_file))
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset_file(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache_control = match asset.cache {
        Cache::Immutable => "public, max-age=31536000, immutable",
        Cache::Revalidate => "no-cache",
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache_control),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str) -> Response {
        routes::<()>().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap()
    }

    fn header_str(response: &Response, name: header::HeaderName) -> &str {
        response.headers()[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn page_is_html_under_csp() {
        let response = get("/graphiql").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_str(&response, header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(header_str(&response, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header_str(&response, header::CONTENT_SECURITY_POLICY), CONTENT_SECURITY_POLICY);
        assert_eq!(header_str(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    }

    #[tokio::test]
    async fn every_asset_the_page_references_is_served() {
        let prefix = "/graphiql/assets/";
        let referenced: Vec<&str> = INDEX_HTML
            .match_indices(prefix)
            .map(|(at, _)| {
                let rest = &INDEX_HTML[at + prefix.len()..];
                &rest[..rest.find(['"', '?']).unwrap()]
            })
            .collect();
        assert_eq!(referenced.len(), 7, "{referenced:?}");
        for file in referenced {
            let response = get(&format!("{prefix}{file}?v=1")).await;
            assert_eq!(response.status(), StatusCode::OK, "{file}");
            assert_eq!(header_str(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        }
    }

    #[tokio::test]
    async fn assets_have_content_type_and_cache_policy() {
        let response = get("/graphiql/assets/graphiql.min.js").await;
        assert_eq!(header_str(&response, header::CONTENT_TYPE), JS);
        assert_eq!(header_str(&response, header::CACHE_CONTROL), "public, max-age=31536000, immutable");
        let response = get("/graphiql/assets/graphiql.min.css").await;
        assert_eq!(header_str(&response, header::CONTENT_TYPE), CSS);
        let response = get("/graphiql/assets/finql-graphiql.js").await;
        assert_eq!(header_str(&response, header::CACHE_CONTROL), "no-cache");
    }

    #[tokio::test]
    async fn unknown_asset_is_not_found() {
        for uri in ["/graphiql/assets/nope.js", "/graphiql/assets/..%2FCargo.toml", "/graphiql/assets/index.html"] {
            assert_eq!(get(uri).await.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }
}
