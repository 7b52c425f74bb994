//! The receiver's servers: OTLP/HTTP over hyper (plain or rustls), OTLP/gRPC
//! over tonic, and the CA and certificate a TLS receiver presents.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::sync::{oneshot, watch};

use super::{Export, State};

/// Records requests, once the receiver is not held.
#[derive(Clone)]
pub(super) struct Receiver {
    pub(super) state: Arc<State>,
    pub(super) hold: watch::Receiver<bool>,
}

impl Receiver {
    async fn receive(&self, export: Export) {
        let mut hold = self.hold.clone();
        let _ = hold.wait_for(|held| !held).await;
        self.state.push(export);
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export".into();
        let request = request.into_inner();
        self.receive(Export {
            headers,
            path,
            request,
        })
        .await;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

pub(super) async fn serve_grpc(
    listener: tokio::net::TcpListener,
    receiver: Receiver,
    identity: Option<(String, String)>,
    stopped: oneshot::Receiver<()>,
) {
    let mut server = tonic::transport::Server::builder();
    if let Some((cert, key)) = identity {
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key));
        server = server.tls_config(tls).unwrap();
    }
    server
        .add_service(TraceServiceServer::new(receiver))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            async {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
}

pub(super) async fn serve_http(
    listener: tokio::net::TcpListener,
    receiver: Receiver,
    identity: Option<(String, String)>,
    mut stopped: oneshot::Receiver<()>,
) {
    let acceptor = identity.map(|(cert, key)| tls_acceptor(&cert, &key));
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let receiver = receiver.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let receiver = receiver.clone();
                async move { Ok::<_, hyper::Error>(answer(&receiver, request).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match acceptor {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => http.serve_connection(TokioIo::new(tls), service).await,
                    Err(_) => return,
                },
                None => http.serve_connection(TokioIo::new(tcp), service).await,
            };
        });
    }
}

/// Decodes one OTLP/HTTP protobuf request and answers it.
async fn answer(
    receiver: &Receiver,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let reply = |status: u16, body: Vec<u8>| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let Ok(body) = body.collect().await else {
        return reply(400, Vec::new());
    };
    let Ok(request) = ExportTraceServiceRequest::decode(body.to_bytes()) else {
        return reply(400, Vec::new());
    };
    let path = parts.uri.path().to_string();
    receiver
        .receive(Export {
            headers: parts.headers,
            path,
            request,
        })
        .await;
    reply(200, ExportTraceServiceResponse::default().encode_to_vec())
}

fn tls_acceptor(cert: &str, key: &str) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A CA of the receiver's own, written to a temporary file, and a server
/// certificate it signed for the receiver's address.
pub(super) struct Pki {
    pub(super) ca_file: PathBuf,
    pub(super) cert: String,
    pub(super) key: String,
}

impl Pki {
    pub(super) fn new(addr: SocketAddr) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![addr.ip().to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let ca_file = std::env::temp_dir().join(format!(
            "otlp-collector-ca-{}-{}.pem",
            std::process::id(),
            addr.port()
        ));
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Self {
            ca_file,
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}
