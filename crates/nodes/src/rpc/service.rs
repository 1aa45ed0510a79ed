//! One definition per internal operation. [`rpc_service!`] takes a role's API as a
//! list of method signatures and generates, from that one list:
//! - the API trait (`async fn op(&self, args..) -> ApiResult<Reply>`), which the local
//!   role implements and every caller uses, in-process or not;
//! - the wire enum, one variant per operation carrying its arguments, with `name()`
//!   (for spans) and `serve()` (runs the variant on any implementation of the trait
//!   and seals its typed result);
//! - the trait's implementation for the role's RPC client, which seals the variant and
//!   opens the reply as the operation's own result type;
//! - optionally (`local Type;`), the trait's implementation for the local role by
//!   forwarding to its inherent methods of the same names, so a role whose operations
//!   live in several modules still defines each of them once.
//!
//! A request therefore names its reply type: a server cannot answer an operation with
//! another operation's reply, and there is nothing to match replies against.

use std::time::Duration;

use quiver_core::rt::{self, Deadline};
use serde::{de::DeserializeOwned, Serialize};
use tonic::transport::{Channel, Endpoint};

use super::envelope::{open_result, seal, MAX_MESSAGE_BYTES};
use crate::error::{ApiError, ApiResult};
use crate::pb::internal::Envelope;

/// How long an internal call that carries no deadline of its own (catalog, writes,
/// loads) may take before the caller gives up. Reads carry their client's deadline
/// and are given the time it leaves instead.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How much longer than its deadline a caller waits for a call's answer: the callee
/// stops at the deadline and answers "deadline exceeded" itself, and that answer
/// (not a transport timeout) is what should come back.
pub const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// The deadline a request carries, if it carries one (reads do, in their scope).
pub trait RequestDeadline {
    fn deadline(&self) -> Option<Deadline> {
        None
    }
}

/// Defines a role's internal API; see the module docs.
macro_rules! rpc_service {
    (
        $(#[$doc:meta])*
        pub trait $Api:ident;
        $(#[$edoc:meta])*
        pub enum $Req:ident;
        client $Client:ty;
        $(local $Local:ty;)?
        $(
            $(#[$mdoc:meta])*
            fn $op:ident($($arg:ident : $ty:ty $(=> $wty:ty)?),* $(,)?) -> $reply:ty;
        )*
        $( provided { $($provided:tt)* } )?
    ) => {
        $(#[$doc])*
        #[async_trait::async_trait]
        pub trait $Api: Send + Sync {
            $(
                $(#[$mdoc])*
                async fn $op(&self, $($arg: $ty),*) -> $crate::error::ApiResult<$reply>;
            )*
            $( $($provided)* )?
        }

        $(#[$edoc])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[allow(non_camel_case_types)]
        pub enum $Req {
            $( $op { $($arg: $crate::rpc::service::wire_ty!($ty $(=> $wty)?)),* }, )*
        }

        impl $Req {
            /// The operation's name, for spans and logs.
            pub fn name(&self) -> &'static str {
                match self {
                    $( $Req::$op { .. } => stringify!($op), )*
                }
            }

            /// Runs the request on `api` and seals its typed result as the reply.
            pub async fn serve(self, api: &dyn $Api) -> $crate::pb::internal::Envelope {
                match self {
                    $(
                        $Req::$op { $($arg),* } => {
                            let reply = api.$op($($crate::rpc::service::wire_arg!($arg $(=> $wty)?)),*).await;
                            $crate::rpc::envelope::seal_result(reply)
                        }
                    )*
                }
            }
        }

        #[async_trait::async_trait]
        impl $Api for $Client {
            $(
                async fn $op(&self, $($arg: $ty),*) -> $crate::error::ApiResult<$reply> {
                    #[allow(unused_imports)]
                    use $crate::rpc::service::ToWire;
                    let req = $Req::$op { $($arg: $arg.to_wire()),* };
                    let deadline = $crate::rpc::service::RequestDeadline::deadline(&req);
                    self.send_until(req, deadline).await
                }
            )*
        }

        $crate::rpc::service::rpc_service!(@local $Api [$($Local)?] $( fn $op($($arg: $ty),*) -> $reply; )*);
    };
    (@local $Api:ident [] $($rest:tt)*) => {};
    (@local $Api:ident [$Local:ty] $( fn $op:ident($($arg:ident : $ty:ty),*) -> $reply:ty; )*) => {
        /// The local role implements the API with inherent methods of the same names
        /// and signatures (spread over the role's own modules); this forwards to them.
        #[async_trait::async_trait]
        impl $Api for $Local {
            $(
                async fn $op(&self, $($arg: $ty),*) -> $crate::error::ApiResult<$reply> {
                    <$Local>::$op(self, $($arg),*).await
                }
            )*
        }
    };
}
pub(crate) use rpc_service;

/// The wire type of an argument: its own, or the owned form written after `=>`
/// (`db: &str => String`).
macro_rules! wire_ty {
    ($t:ty) => {
        $t
    };
    ($t:ty => $w:ty) => {
        $w
    };
}
pub(crate) use wire_ty;

/// An argument as the API method takes it: moved out of the request, or borrowed from
/// its owned wire form.
macro_rules! wire_arg {
    ($a:ident) => {
        $a
    };
    ($a:ident => $w:ty) => {
        $crate::rpc::service::AsArg::as_arg(&$a)
    };
}
pub(crate) use wire_arg;

/// An API argument turned into its wire form (the identity, or an owned copy of a
/// borrowed string).
pub trait ToWire<W> {
    fn to_wire(self) -> W;
}

impl<T> ToWire<T> for T {
    fn to_wire(self) -> T {
        self
    }
}

impl ToWire<String> for &str {
    fn to_wire(self) -> String {
        self.to_string()
    }
}

impl ToWire<Option<String>> for Option<&str> {
    fn to_wire(self) -> Option<String> {
        self.map(str::to_string)
    }
}

/// A borrowed API argument from its owned wire form.
pub trait AsArg<'a, A> {
    fn as_arg(&'a self) -> A;
}

impl<'a> AsArg<'a, &'a str> for String {
    fn as_arg(&'a self) -> &'a str {
        self
    }
}

impl<'a> AsArg<'a, Option<&'a str>> for Option<String> {
    fn as_arg(&'a self) -> Option<&'a str> {
        self.as_deref()
    }
}

/// Serves a wire enum on a tonic service: opens the request, runs it on the role,
/// returns the sealed reply (a request that cannot be opened gets its error sealed).
macro_rules! serve_envelope {
    ($req:expr, $Req:ty, $api:expr) => {{
        let res = match $crate::rpc::envelope::open::<$Req>($req.get_ref()) {
            Ok(r) => {
                let span = tracing::info_span!("rpc", op = r.name());
                tracing::Instrument::instrument(r.serve($api), span).await
            }
            Err(e) => $crate::rpc::envelope::seal_result::<()>(Err(e)),
        };
        Ok(tonic::Response::new(res))
    }};
}
pub(crate) use serve_envelope;

/// A generated tonic client of one of the internal services (they all carry one
/// `Call(Envelope) -> Envelope` method).
#[async_trait::async_trait]
pub trait EnvelopeClient: Clone + Send + Sync + 'static {
    fn connect(ch: Channel) -> Self;
    async fn call_envelope(&mut self, e: Envelope) -> Result<Envelope, tonic::Status>;
}

macro_rules! envelope_client {
    ($($client:ty),* $(,)?) => {$(
        #[async_trait::async_trait]
        impl EnvelopeClient for $client {
            fn connect(ch: Channel) -> Self {
                <$client>::new(ch)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES)
            }
            async fn call_envelope(&mut self, e: Envelope) -> Result<Envelope, tonic::Status> {
                Ok(self.call(e).await?.into_inner())
            }
        }
    )*};
}

use crate::pb::internal::{
    coordinator_client::CoordinatorClient, data_node_client::DataNodeClient,
    query_node_client::QueryNodeClient, streaming_client::StreamingClient,
};
envelope_client!(
    CoordinatorClient<Channel>,
    StreamingClient<Channel>,
    QueryNodeClient<Channel>,
    DataNodeClient<Channel>,
);

/// A lazily connected channel to `addr` (like `http://10.0.0.1:7000`). Calls are
/// timed by [`RpcClient`], each by its own deadline, not by the channel.
pub fn channel(addr: &str) -> ApiResult<Channel> {
    Ok(Endpoint::from_shared(addr.to_string())
        .map_err(|e| ApiError::internal(format!("bad address {addr}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy())
}

/// A role across the network, reached through its generated client `C`.
#[derive(Clone)]
pub struct RpcClient<C> {
    client: C,
    role: &'static str,
    /// How long a call without a deadline may take.
    timeout: Duration,
}

impl<C: EnvelopeClient> RpcClient<C> {
    /// Connects (lazily) to `addr`; calls without a deadline give up after `timeout`.
    pub fn connect(role: &'static str, addr: &str, timeout: Duration) -> ApiResult<Self> {
        Ok(RpcClient {
            client: C::connect(channel(addr)?),
            role,
            timeout,
        })
    }

    /// Sends one request (with the client's default timeout) and opens its reply.
    pub async fn send<Q: Serialize, R: DeserializeOwned>(&self, req: Q) -> ApiResult<R> {
        self.send_until(req, None).await
    }

    /// Sends one request and opens its typed reply, waiting until the request's
    /// `deadline` (and a grace for the callee's own answer) or, without one, the
    /// client's timeout. A deadline that passes is reported as such — the role is
    /// not unreachable, the time ran out; any other transport failure means the role
    /// could not be reached or did not answer: the request may have run.
    pub async fn send_until<Q: Serialize, R: DeserializeOwned>(
        &self,
        req: Q,
        deadline: Option<Deadline>,
    ) -> ApiResult<R> {
        let budget = match deadline {
            Some(d) if d.expired() => return Err(ApiError::deadline_exceeded(self.role)),
            Some(d) => d.remaining() + DEADLINE_GRACE,
            None => self.timeout,
        };
        let mut c = self.client.clone();
        let reply = match rt::timeout(budget, c.call_envelope(seal(&req))).await {
            Ok(r) => r.map_err(|s| {
                ApiError::unavailable(format!("{} unreachable: {s}", self.role), false)
            })?,
            Err(_) if deadline.is_some() => return Err(ApiError::deadline_exceeded(self.role)),
            Err(_) => {
                return Err(ApiError::unavailable(
                    format!("{} unreachable: no answer within {budget:?}", self.role),
                    false,
                ))
            }
        };
        open_result(&reply)
    }
}
