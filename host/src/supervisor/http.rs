//! The host's HTTP endpoint (axum): `GET /` the dashboard, `GET /events` its live feed
//! (server-sent events, one update a second), `GET /status` (JSON, what `adstream status`
//! prints) and `GET /metrics` (OpenMetrics text, which Prometheus reads). Connections are
//! few and must send their headers promptly, requests have a time limit and no body, and
//! live feeds are few at once, since each costs a status snapshot a second. With a token
//! (`auth.rs`) every route requires it.

use super::auth::{Token, guard};
use super::status::Board;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

const DASHBOARD: &str = include_str!("dashboard.html");
/// Dashboards that may follow the feed at once.
const FEEDS: usize = 16;
/// Connections open at once (feeds included).
const CONNECTIONS: usize = 64;
/// Longest a connection may take to send a request's headers (or stay idle between
/// requests).
const HEADERS_WITHIN: Duration = Duration::from_secs(10);
/// How often the feed sends an update.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Shared {
    board: Arc<Board>,
    feeds: Arc<Semaphore>,
}

/// Serves `board` on `listener` until the task is dropped. Each connection is one of at
/// most [`CONNECTIONS`] (more are closed at once) and must send its request headers within
/// [`HEADERS_WITHIN`]; axum's own `serve` bounds neither.
pub async fn serve(listener: TcpListener, board: Arc<Board>, token: Option<Token>) {
    let app = TowerToHyperService::new(router(board, token));
    let open = Arc::new(Semaphore::new(CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            continue; // dropped: closed
        };
        let app = app.clone();
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADERS_WITHIN)
                .serve_connection(TokioIo::new(stream), app)
                .await;
            if let Err(e) = served {
                tracing::debug!("status endpoint: {e}");
            }
            drop(permit);
        });
    }
}

fn router(board: Arc<Board>, token: Option<Token>) -> Router {
    let shared = Shared {
        board,
        feeds: Arc::new(Semaphore::new(FEEDS)),
    };
    Router::new()
        .route("/", get(|| async { Html(DASHBOARD) }))
        .route("/events", get(events))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .layer(RequestBodyLimitLayer::new(0))
        .layer(axum::middleware::from_fn_with_state(token, guard))
        .with_state(shared)
}

async fn status(State(s): State<Shared>) -> Response {
    let json = serde_json::to_string_pretty(&s.board.status()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

async fn metrics(State(s): State<Shared>) -> Response {
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let text = super::metrics_text(&s.board);
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

/// The status and each stage's latest rows, as one JSON object.
fn live(board: &Board) -> String {
    let status = board.status();
    let mut rows = Vec::new();
    for p in &status.pipelines {
        rows.push((
            format!("{}/dead letters", p.name),
            p.recent_dead_letters.json(),
        ));
        for st in &p.stages {
            let key = format!("{}/{}", p.name, st.name);
            rows.push((key, st.stats.recent.json()));
        }
    }
    // The rows are JSON already: they are spliced in, not parsed and written again.
    let mut out = String::from("{\"status\":");
    out += &serde_json::to_string(&status).unwrap_or_default();
    out += ",\"recent\":{";
    for (i, (key, json)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out += &serde_json::to_string(key).unwrap_or_default();
        out.push(':');
        out += json;
    }
    out += "}}";
    out
}

async fn events(State(s): State<Shared>) -> Response {
    let Ok(permit) = s.feeds.clone().try_acquire_owned() else {
        let busy = format!("at most {FEEDS} live dashboards at once\n");
        return (StatusCode::SERVICE_UNAVAILABLE, busy).into_response();
    };
    let state: (Arc<Board>, OwnedSemaphorePermit, bool) = (s.board, permit, true);
    let stream = futures_util::stream::unfold(state, |(board, permit, first)| async move {
        if !first {
            tokio::time::sleep(EVERY).await;
        }
        let event = Event::default().data(live(&board));
        Some((Ok::<_, Infallible>(event), (board, permit, false)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
