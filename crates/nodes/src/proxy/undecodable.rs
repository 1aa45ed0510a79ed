//! Requests the server cannot decode, answered as Milvus answers bad input: a response
//! whose `Status` says what is wrong (code 1100), not gRPC INTERNAL. The generated
//! server decodes a request before any handler runs, and prost refuses a `string`
//! field that is not UTF-8 (a name, a filter, a VarChar value); tonic turns that into
//! INTERNAL, which pymilvus retries and then reports as a server fault. This wrapper
//! sees that answer and replaces it with the RPC's own response type carrying the
//! status: `common.Status` itself, or a message whose field 1 is the status (every
//! other Milvus response; `status_is_field_one_of_every_other_response` pins it).
//!
//! Only the real transport decodes bytes; the simulator passes messages as values.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::Frame;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::Service;
use tonic::server::NamedService;

use crate::error::ApiError;

/// The Milvus API as Quiver serves it: which RPCs return a bare `common.Status`.
const MILVUS_PROTO: &str = include_str!("../../proto/milvus.proto");

/// The names of the RPCs whose response is `common.Status` itself.
fn bare_status_rpcs() -> &'static BTreeSet<String> {
    static RPCS: OnceLock<BTreeSet<String>> = OnceLock::new();
    RPCS.get_or_init(|| {
        MILVUS_PROTO
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let name = l.strip_prefix("rpc ")?.split('(').next()?.trim();
                l.contains("returns (common.Status)")
                    .then(|| name.to_string())
            })
            .collect()
    })
}

/// The status a request that could not be decoded gets.
pub(super) fn undecodable(detail: &str) -> ApiError {
    // The usual cause a client can fix; other decode errors (a bad varint, a wrong
    // wire type) speak for themselves in `detail`.
    let hint = if detail.contains("UTF-8") {
        " (every string must be valid UTF-8)"
    } else {
        ""
    };
    ApiError::invalid(format!("the request could not be decoded{hint}: {detail}"))
}

/// The protobuf bytes of RPC `method`'s response carrying only `err`'s status.
pub(super) fn response_bytes(method: &str, err: &ApiError) -> Vec<u8> {
    let status = err.status();
    if bare_status_rpcs().contains(method) {
        prost::Message::encode_to_vec(&status)
    } else {
        let mut out = Vec::new();
        prost::encoding::message::encode(1, &status, &mut out);
        out
    }
}

/// Wraps the Milvus service (see the module docs).
#[derive(Clone)]
pub struct DecodeErrorsAsStatus<S> {
    inner: S,
}

impl<S> DecodeErrorsAsStatus<S> {
    pub fn new(inner: S) -> Self {
        DecodeErrorsAsStatus { inner }
    }
}

impl<S: NamedService> NamedService for DecodeErrorsAsStatus<S> {
    const NAME: &'static str = S::NAME;
}

type ResponseFuture =
    Pin<Box<dyn std::future::Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> Service<http::Request<Body>> for DecodeErrorsAsStatus<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> ResponseFuture {
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(match decode_failure(&resp) {
                Some(detail) => {
                    tracing::debug!(%method, %detail, "undecodable request");
                    status_response(&response_bytes(&method, &undecodable(&detail)))
                }
                None => resp,
            })
        })
    }
}

/// The decoder's message, when `resp` is tonic's answer to a request it could not
/// decode (INTERNAL, before any handler ran).
fn decode_failure(resp: &http::Response<Body>) -> Option<String> {
    let status = tonic::Status::from_header_map(resp.headers())?;
    (status.code() == tonic::Code::Internal
        && status
            .message()
            .starts_with("failed to decode Protobuf message"))
    .then(|| status.message().to_string())
}

/// A successful gRPC response with one message, `msg`.
fn status_response(msg: &[u8]) -> http::Response<Body> {
    let mut frame = BytesMut::with_capacity(msg.len() + 5);
    frame.put_u8(0); // not compressed
    frame.put_u32(msg.len() as u32);
    frame.put_slice(msg);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let body = OneMessage {
        data: Some(frame.freeze()),
        trailers: Some(trailers),
    };
    let mut resp = http::Response::new(Body::new(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    resp
}

/// A body of one data frame, then the trailers.
struct OneMessage {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl http_body::Body for OneMessage {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests;
