//! `GET /metrics` over HTTP/1.1 (hyper, on the server's smol executor): the metrics in the
//! Prometheus text format, for a scraper on the operator's network.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use smol::{Async, Executor, Timer};
use smol_hyper::rt::FuturesIo;

/// The longest one scrape's connection may stay open: a scraper that stalls (or a peer
/// that never sends its request) is dropped then.
const CONNECTION_LIMIT: Duration = Duration::from_secs(10);

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answers scrapes on `listener` until the returned future is dropped.
pub async fn serve(listener: Async<TcpListener>, ex: Arc<Executor<'static>>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(%err, "metrics: accept failed");
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        ex.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(FuturesIo::new(stream), hyper::service::service_fn(answer));
            future::or(
                async {
                    if let Err(err) = connection.await {
                        tracing::debug!(%err, "metrics: connection failed");
                    }
                },
                async {
                    Timer::after(CONNECTION_LIMIT).await;
                },
            )
            .await;
        })
        .detach();
    }
}

/// The answer to one request: the metrics at `/metrics`, else 404 (or 405 for a method
/// other than GET and HEAD).
async fn answer(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::http::Error> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (
            StatusCode::OK,
            TEXT_FORMAT,
            Bytes::from(super::get().render()),
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"only GET /metrics\n"),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"the metrics are at /metrics\n"),
        ),
    };
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
}
