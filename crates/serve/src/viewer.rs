//! The viewer's pages: plain HTML, CSS and JavaScript compiled into the binary. No build step,
//! no CDN, nothing fetched from elsewhere (the CSP forbids it anyway).
//!
//! `/` lists executions, `/executions/{id}` shows one; the scripts read their data from the
//! API. All log text reaches the page through `textContent`, never as HTML.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("assets/index.html");
const EXECUTION_HTML: &str = include_str!("assets/execution.html");

/// The files under `/assets/`, with their content types.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "viewer.css",
        "text/css; charset=utf-8",
        include_str!("assets/viewer.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "list.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/list.js"),
    ),
    (
        "execution.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/execution.js"),
    ),
];

pub(crate) fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { html(INDEX_HTML) }))
        .route("/executions/{id}", get(|| async { html(EXECUTION_HTML) }))
        .route("/assets/{name}", get(asset))
}

fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
