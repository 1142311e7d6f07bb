//! The host's HTTP endpoint: `GET /status` (JSON, what `adstream status` prints) and
//! `GET /metrics` (Prometheus text). Two read-only routes do not justify an HTTP server
//! dependency, so this speaks just enough HTTP/1.1 itself.

use super::status::Board;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Requests larger than this are refused; ours are one line.
const MAX_REQUEST: usize = 8 * 1024;

/// Serves `board` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, board: Arc<Board>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let board = board.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &board).await {
                tracing::debug!("status endpoint: {e}");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, board: &Board) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > MAX_REQUEST {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (code, kind, body) = match (method, path) {
        ("GET", "/status") => {
            let json = serde_json::to_string_pretty(&board.status()).unwrap_or_default();
            ("200 OK", "application/json", json)
        }
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", board.prometheus()),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /status or /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
