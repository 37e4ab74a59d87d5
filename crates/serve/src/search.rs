//! `GET /api/search`: the store-wide search (`LogStore::search`) over HTTP.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{ApiError, ApiResult};
use super::params::{Params, RawQuery, MAX_LIMIT};
use super::AppState;
use logstore_search::{Hit, Search, SearchDamage, SearchError, StoreSearch};
use logstore_store::Filter;

/// Matches per answer when `limit` is not given.
const DEFAULT_HITS: usize = 100;

/// `GET /api/search?q=&regex=&level=&source=&task=&execution=&since=&until=&limit=&reverse=`.
pub(crate) async fn search(State(app): State<AppState>, raw: RawQuery) -> ApiResult<Response> {
    let p = Params::parse(
        raw,
        &[
            "q",
            "regex",
            "level",
            "source",
            "task",
            "execution",
            "since",
            "until",
            "limit",
            "reverse",
        ],
    )?;
    let limit = p.count("limit", MAX_LIMIT)?.unwrap_or(DEFAULT_HITS).max(1);
    let reverse = p
        .parse_with("reverse", |v| match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("{v:?} is not true or false")),
        })?
        .unwrap_or(false);
    let search = Search {
        terms: p.get("q").map(terms).unwrap_or_default(),
        regex: p.get("regex").map(str::to_owned),
        filter: Filter {
            // One more than asked: whether there is more.
            limit: Some(limit + 1),
            ..p.filter()?
        },
        execution_prefix: p.get("execution").map(str::to_owned),
        reverse,
    };
    if search.terms.is_empty() && search.regex.is_none() {
        return Err(ApiError::bad(
            "parameter `q` or `regex` is needed: what to search for",
        ));
    }
    let store = std::sync::Arc::clone(&app.store);
    let (hits, damage) = tokio::task::spawn_blocking(move || {
        let mut matches = store.search(&search)?;
        let hits = matches.by_ref().collect::<Result<Vec<Hit>, _>>()?;
        Ok::<_, SearchError>((hits, matches.damage().to_vec()))
    })
    .await?
    .map_err(|e| match e {
        SearchError::BadRegex { .. } => ApiError::bad(format!("parameter `regex`: {e}")),
        SearchError::NoWords { .. } => ApiError::bad(format!("parameter `q`: {e}")),
        SearchError::Store(e) => ApiError::from(e),
    })?;
    let more = hits.len() > limit;
    let hits = &hits[..hits.len().min(limit)];
    let damage: Vec<&SearchDamage> = damage.iter().collect();
    Ok(Json(serde_json::json!({"hits": hits, "more": more, "damage": damage})).into_response())
}

/// The terms of `q`: words separated by spaces; a "quoted phrase" is one term.
fn terms(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in q.split('"').enumerate() {
        if i % 2 == 1 {
            if !part.trim().is_empty() {
                out.push(part.trim().to_owned());
            }
        } else {
            out.extend(part.split_whitespace().map(str::to_owned));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_phrases_are_one_term() {
        assert_eq!(
            super::terms(r#"timeout "connection refused" db"#),
            ["timeout", "connection refused", "db"]
        );
        assert!(super::terms("  ").is_empty());
    }
}
