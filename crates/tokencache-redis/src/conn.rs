//! The connection a [`RedisCache`](crate::RedisCache) uses: one multiplexed,
//! auto-reconnecting connection to a standalone server, or a cluster connection; and how
//! it is opened (ACL user and password, TLS with a custom CA).

use std::fmt;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, Value,
};
use tokencache_core::{Error, Result};

use crate::error::map_redis_error;

/// A cheap-to-clone handle on the cache's connection, usable with any redis-rs command
/// (`redis::cmd("GET").arg(..).query_async(&mut conn)`). Clones share the one
/// multiplexed connection, so commands sent through them run beside the cache's own.
#[derive(Clone)]
pub struct RedisConnection(pub(crate) Inner);

#[derive(Clone)]
pub(crate) enum Inner {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.0, Inner::Cluster(_))
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_cluster() {
            "RedisConnection(cluster)"
        } else {
            "RedisConnection(standalone)"
        })
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Standalone(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Standalone(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

/// How connections authenticate (ACL user and password) and, with the `tls` feature,
/// which certificate authority a `rediss://` server must be signed by. Built by
/// [`RedisCacheBuilder`](crate::RedisCacheBuilder); the password never appears in `Debug`.
#[derive(Clone, Default)]
pub(crate) struct ConnectOptions {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Password>,
    #[cfg(feature = "tls")]
    pub(crate) ca: Option<CaSource>,
}

/// A password, redacted in `Debug`.
#[derive(Clone)]
pub(crate) struct Password(pub(crate) String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the custom certificate authority comes from.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) enum CaSource {
    Pem(Vec<u8>),
    File(std::path::PathBuf),
}

#[cfg(feature = "tls")]
impl fmt::Debug for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaSource::Pem(pem) => write!(f, "Pem({} bytes)", pem.len()),
            CaSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ConnectOptions");
        d.field("username", &self.username)
            .field("password", &self.password);
        #[cfg(feature = "tls")]
        d.field("tls_ca", &self.ca);
        d.finish()
    }
}

impl ConnectOptions {
    /// The custom CA's PEM bytes, checked: at least one certificate, all parseable.
    #[cfg(feature = "tls")]
    fn ca_pem(&self) -> Result<Option<Vec<u8>>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;

        let pem = match &self.ca {
            None => return Ok(None),
            Some(CaSource::Pem(pem)) => pem.clone(),
            Some(CaSource::File(path)) => std::fs::read(path).map_err(|e| {
                Error::config(format!(
                    "cannot read the redis TLS CA file {}",
                    path.display()
                ))
                .with_source(e)
            })?,
        };
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            cert.map_err(|e| Error::config("the redis TLS CA is not valid PEM").with_source(e))?;
            count += 1;
        }
        if count == 0 {
            return Err(Error::config("the redis TLS CA holds no PEM certificate"));
        }
        Ok(Some(pem))
    }

    /// The connection settings of `url` with this builder's user and password applied.
    fn connection_info(&self, url: &str) -> Result<ConnectionInfo> {
        let parsed =
            redis::parse_redis_url(url).ok_or_else(|| Error::config("invalid redis URL"))?;
        // redis-rs reads `rediss://host/#insecure` as "accept any certificate" when its
        // `tls-rustls-insecure` feature is on anywhere in the build: never here.
        if parsed.fragment().is_some() {
            return Err(Error::config(
                "a redis URL must have no #fragment: certificate checks cannot be turned off \
                 (give the server's CA with tls_ca_pem or tls_ca_file)",
            ));
        }
        let info = parsed
            .into_connection_info()
            .map_err(|e| Error::config("invalid redis URL").with_source(e))?;
        let mut redis_info = info.redis_settings().clone();
        if let Some(user) = &self.username {
            redis_info = redis_info.set_username(user);
        }
        if let Some(password) = &self.password {
            redis_info = redis_info.set_password(&password.0);
        }
        Ok(info.set_redis_settings(redis_info))
    }

    /// A client for the standalone server at `url`.
    pub(crate) fn standalone_client(&self, url: &str) -> Result<Client> {
        let info = self.connection_info(url)?;
        self.client(info)
    }

    /// A RESP3 client (push messages: the near cache's invalidations) for the server at
    /// `url`, or at `node` (host and port, same scheme and credentials) when given.
    pub(crate) fn resp3_client(&self, url: &str, node: Option<(&str, u16)>) -> Result<Client> {
        let mut info = self.connection_info(url)?;
        if let Some((host, port)) = node {
            let addr = match info.addr().clone() {
                ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => ConnectionAddr::TcpTls {
                    host: host.to_owned(),
                    port,
                    insecure,
                    tls_params,
                },
                _ => ConnectionAddr::Tcp(host.to_owned(), port),
            };
            info = info.set_addr(addr);
        }
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        self.client(info.set_redis_settings(settings))
    }

    /// A client for `info`, with this builder's CA.
    fn client(&self, info: ConnectionInfo) -> Result<Client> {
        #[cfg(feature = "tls")]
        if let Some(pem) = self.ca_pem()? {
            return Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|e| Error::config("invalid redis TLS configuration").with_source(e));
        }
        Client::open(info).map_err(|e| Error::config("invalid redis URL").with_source(e))
    }

    /// A cluster client builder for `nodes`, with this builder's user, password and CA.
    pub(crate) fn cluster_builder(&self, nodes: Vec<String>) -> Result<ClusterClientBuilder> {
        let mut infos = Vec::with_capacity(nodes.len());
        for node in &nodes {
            infos.push(self.connection_info(node)?);
        }
        #[allow(unused_mut)]
        let mut builder = ClusterClientBuilder::new(infos);
        #[cfg(feature = "tls")]
        if let Some(pem) = self.ca_pem()? {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            });
        }
        Ok(builder)
    }
}

/// Opens the standalone connection and checks that it may run commands (a `PING`), so
/// that a server asking for a password it was not given fails here, not at the first
/// cache operation.
pub(crate) async fn open_standalone(
    client: Client,
    config: ConnectionManagerConfig,
) -> redis::RedisResult<ConnectionManager> {
    let mut manager = ConnectionManager::new_with_config(client, config).await?;
    let _: String = redis::cmd("PING").query_async(&mut manager).await?;
    Ok(manager)
}

/// Opens the cluster connection. redis-rs reports a failed initial connection as text
/// only; on failure, one node is opened alone to find the typed cause (an untrusted
/// certificate, a wrong password), which is a permanent `Config` error.
pub(crate) async fn open_cluster(
    client: ClusterClient,
    opts: &ConnectOptions,
    first_node: &str,
) -> Result<ClusterConnection> {
    let err = match client.get_async_connection().await {
        Ok(conn) => return Ok(conn),
        Err(e) => e,
    };
    if let Ok(node) = opts.standalone_client(first_node) {
        let probe = async {
            let mut conn = node.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        if let Err(cause) = probe.await {
            let cause = map_connect_error(cause);
            if cause.kind() == tokencache_core::ErrorKind::Config {
                return Err(cause);
            }
        }
    }
    Err(map_connect_error(err))
}

/// Maps an error of establishing a connection: a server certificate that TLS rejected is a
/// permanent [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error (retrying
/// will not help); anything else as [`map_redis_error`].
pub(crate) fn map_connect_error(e: RedisError) -> Error {
    #[cfg(feature = "tls")]
    if let Some(tls) = rustls_error(&e) {
        let what = match tls {
            rustls::Error::InvalidCertificate(_) => {
                "redis connect: the server's TLS certificate is not trusted \
                 (wrong or missing CA: see tls_ca_pem / tls_ca_file)"
            }
            _ => "redis connect: TLS handshake failed",
        };
        return Error::config(what).with_source(e);
    }
    if e.code() == Some("NOAUTH") {
        return Error::config(
            "redis connect: the server requires authentication (give a password, and the \
             ACL user if not `default`)",
        )
        .with_source(e);
    }
    map_redis_error("connect", e)
}

/// The rustls error inside `e`, if the connection failed in the TLS handshake.
#[cfg(feature = "tls")]
fn rustls_error(e: &RedisError) -> Option<&rustls::Error> {
    use std::error::Error as _;
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    // redis-rs keeps the I/O error behind an `Arc`; tokio-rustls puts the rustls error
    // inside the I/O error.
    let inner = e.source()?.downcast_ref::<Shared>()?;
    let io = inner.downcast_ref::<std::io::Error>()?;
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_core::ErrorKind;

    // With the `tls` feature the options have one more field (the CA).
    #[allow(clippy::needless_update)]
    fn opts() -> ConnectOptions {
        ConnectOptions {
            username: Some("app".into()),
            password: Some(Password("s3cret-PASSWORD".into())),
            ..Default::default()
        }
    }

    #[test]
    fn the_password_is_redacted() {
        let debug = format!("{:?}", opts());
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(debug.contains("app"), "{debug}");
        assert!(!debug.contains("s3cret-PASSWORD"), "{debug}");
    }

    #[test]
    fn builder_credentials_override_the_url() {
        let info = opts()
            .connection_info("redis://other:urlpass@127.0.0.1:6390/2")
            .unwrap();
        assert_eq!(info.redis_settings().username(), Some("app"));
        assert_eq!(info.redis_settings().password(), Some("s3cret-PASSWORD"));
        assert_eq!(info.redis_settings().db(), 2);
        // Without builder credentials, the URL's are used.
        let info = ConnectOptions::default()
            .connection_info("redis://other:urlpass@127.0.0.1:6390")
            .unwrap();
        assert_eq!(info.redis_settings().username(), Some("other"));
        assert_eq!(info.redis_settings().password(), Some("urlpass"));
    }

    #[test]
    fn bad_urls_and_fragments_are_config_errors() {
        for url in [
            "http://127.0.0.1",
            "not a url",
            "rediss://127.0.0.1:6390/#insecure",
        ] {
            let err = opts().connection_info(url).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        }
    }

    #[test]
    fn noauth_at_connect_is_a_config_error() {
        let e =
            redis::make_extension_error("NOAUTH".into(), Some("Authentication required.".into()));
        assert_eq!(e.code(), Some("NOAUTH"));
        let err = map_connect_error(e);
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(!err.is_temporary());
    }
}
