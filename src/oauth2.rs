//! The [`oauth2`] crate's token responses as cache entries, and its token
//! errors as refresh errors (feature `oauth2`).
//!
//! A token endpoint's answer says nothing of the client that asked, the audience it asked
//! for, or (often) the scope: [`TokenContext`] carries them, and [`cache_entry`] turns
//! the answer into the [`CacheEntry`] that [`CacheManager::set`](crate::CacheManager::set)
//! stores and a refresh function of
//! [`CacheManager::get_or_refresh`](crate::CacheManager::get_or_refresh) returns.
//! [`refresh_error`] sorts an [`oauth2`] request error into the
//! [`RefreshError`] the manager acts on: `invalid_grant` removes the refresh token, a
//! transient failure writes nothing and can be retried.
//!
//! The `oauth2` crate is used without its default features (no `reqwest`, no TLS): bring
//! the HTTP client your application already has, through the crate's
//! [`AsyncHttpClient`](::oauth2::AsyncHttpClient) trait. The version of `oauth2` must be
//! the one this crate depends on (5.x).
//!
//! ```
//! use oauth2::basic::BasicTokenResponse;
//! use tokencache::oauth2::{cache_entry, TokenContext};
//!
//! // What the token endpoint answered (here parsed from its JSON).
//! let response: BasicTokenResponse = serde_json::from_str(
//!     r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}"#,
//! )?;
//! let ctx = TokenContext::new("my-app", "https://api.example.com", "openid read:orders");
//! let entry = cache_entry(&response, &ctx)?;
//! assert_eq!(entry.scope, "openid read:orders"); // no scope in the answer: the requested one
//! assert_eq!(entry.expires_in, 3600.0);
//! assert_eq!(entry.refresh_token.as_deref(), Some("rt-1"));
//! assert_eq!(entry.token_type.as_deref(), Some("Bearer"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The refresh function of `get_or_refresh`, with a `BasicClient` whose token URL is set
//! and any async HTTP client (`examples/oauth2_refresh.rs` runs it against a provider on
//! loopback, with an HTTP client of a few lines):
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use oauth2::basic::BasicClient;
//! use oauth2::{ClientId, HttpRequest, HttpResponse, RefreshToken, TokenUrl};
//! use tokencache::oauth2::{cache_entry, refresh_error, TokenContext};
//! use tokencache::{CacheEntry, CacheKey, GetOptions, RefreshOptions, RefreshRequest};
//!
//! let client = BasicClient::new(ClientId::new("my-app".into()))
//!     .set_token_uri(TokenUrl::new("https://idp.example.com/oauth/token".into())?);
//! // Your HTTP client; this one answers every request with new tokens.
//! let http = |_request: HttpRequest| async {
//!     let body = br#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#;
//!     Ok::<_, std::io::Error>(HttpResponse::new(body.to_vec()))
//! };
//!
//! let manager = tokencache::builder().client_id("my-app").build().await?;
//! // After the login: an access token that expires within the minute, and its refresh token.
//! manager
//!     .set(CacheEntry::new("my-app", "https://api", "read", "at-1", 30.0).with_refresh_token("rt-1"))
//!     .await?;
//! let key = CacheKey::new("my-app", Some("https://api"), Some("read"));
//! // Refresh a minute before the access token expires.
//! let opts = RefreshOptions::default().get(GetOptions::default().leeway(60));
//! let body = manager
//!     .get_or_refresh(&key, opts, |req: RefreshRequest| async {
//!         let ctx = TokenContext::from(&req);
//!         let refresh_token = RefreshToken::new(req.refresh_token);
//!         let response = client
//!             .exchange_refresh_token(&refresh_token)
//!             .add_scopes(ctx.scopes())
//!             .request_async(&http)
//!             .await
//!             .map_err(refresh_error)?;
//!         Ok(cache_entry(&response, &ctx)?)
//!     })
//!     .await?;
//! assert_eq!(body.access_token.as_deref(), Some("at-2"));
//! assert_eq!(body.refresh_token.as_deref(), Some("rt-2"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use ::oauth2::{ErrorResponseType, RequestTokenError, Scope, StandardErrorResponse, TokenResponse};
use tokencache_core::{CacheEntry, RefreshError, RefreshRequest};

/// What the cache needs and a token response does not carry: the client id, the
/// audience and the scope that were asked for, and what to do when the response has no
/// `expires_in`.
///
/// ```
/// use std::time::Duration;
/// use tokencache::oauth2::TokenContext;
///
/// let ctx = TokenContext::new("my-app", "https://api.example.com", "openid read")
///     .default_expires_in(Duration::from_secs(300));
/// let scopes: Vec<String> = ctx.scopes().map(|s| s.to_string()).collect();
/// assert_eq!(scopes, ["openid", "read"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenContext {
    /// The client id the tokens were issued to.
    pub client_id: String,
    /// The audience (API) the access token is for; empty when none was asked for.
    pub audience: String,
    /// The space-separated scopes that were asked for: the entry's scope when the
    /// response names none.
    pub scope: String,
    /// The lifetime to assume when the response has no `expires_in`. `None` (the
    /// default): such a response is an error, [`EntryError::MissingExpiresIn`].
    pub default_expires_in: Option<Duration>,
}

impl TokenContext {
    /// The context of a request by `client_id` for `audience` and `scope`, with no
    /// default lifetime.
    pub fn new(
        client_id: impl Into<String>,
        audience: impl Into<String>,
        scope: impl Into<String>,
    ) -> Self {
        TokenContext {
            client_id: client_id.into(),
            audience: audience.into(),
            scope: scope.into(),
            default_expires_in: None,
        }
    }

    /// Assumes this lifetime when a response has no `expires_in` (RFC 6749 lets a
    /// provider leave it out and document a default instead). Give the provider's
    /// documented value: a guess that is too long serves a dead access token from the
    /// cache until it passes.
    pub fn default_expires_in(mut self, lifetime: Duration) -> Self {
        self.default_expires_in = Some(lifetime);
        self
    }

    /// The requested scopes, one [`Scope`] each, for the request builders'
    /// `add_scopes`.
    pub fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scope
            .split_whitespace()
            .map(|s| Scope::new(s.to_owned()))
    }
}

impl From<&RefreshRequest> for TokenContext {
    /// The client id, audience and scope of a refresh request (the refresh token is not
    /// copied).
    fn from(req: &RefreshRequest) -> Self {
        TokenContext::new(&req.client_id, &req.audience, &req.scope)
    }
}

/// Why a token response cannot become a cache entry. No variant holds a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The response has no `expires_in` and the context gives no default lifetime
    /// ([`TokenContext::default_expires_in`]).
    #[error("the token response has no expires_in and no default lifetime was given")]
    MissingExpiresIn,
    /// The response's access token is empty.
    #[error("the token response has an empty access token")]
    EmptyAccessToken,
}

impl From<EntryError> for RefreshError {
    /// A response that cannot be cached is a fatal refresh failure: nothing is written.
    fn from(e: EntryError) -> Self {
        RefreshError::Fatal(Box::new(e))
    }
}

/// The [`CacheEntry`] of a token response: its access token, lifetime, refresh token
/// and token type, with the client id and audience of `ctx`.
///
/// - **Scope**: the response's scopes, space-separated, when it names any (then also
///   kept as [`CacheEntry::oauth_token_scope`]); else the requested scope, `ctx.scope`
///   (RFC 6749 §5.1: a response leaves the scope out when it is the one requested).
///   The scope decides the cache key: a response that grants fewer scopes than asked for
///   is stored under the granted ones, and a later lookup for the requested scopes does
///   not find it.
/// - **Lifetime**: `expires_in`; when the response has none,
///   [`TokenContext::default_expires_in`], and without one [`EntryError::MissingExpiresIn`].
/// - **Token type**: `bearer` in any case is written `Bearer` (as providers send it and
///   auth0-spa-js stores it); any other type as the `oauth2` crate gives it, lower-case.
/// - **ID token**: not read (the standard response has no field for it): add it with
///   [`CacheEntry::with_id_token`].
///
/// ```
/// use oauth2::basic::BasicTokenResponse;
/// use tokencache::oauth2::{cache_entry, EntryError, TokenContext};
///
/// let ctx = TokenContext::new("my-app", "https://api", "openid read write");
/// let granted: BasicTokenResponse = serde_json::from_str(
///     r#"{"access_token":"at","token_type":"bearer","expires_in":60,"scope":"openid read"}"#,
/// )?;
/// let entry = cache_entry(&granted, &ctx)?;
/// assert_eq!(entry.scope, "openid read");
/// assert_eq!(entry.oauth_token_scope.as_deref(), Some("openid read"));
/// assert_eq!(entry.refresh_token, None);
///
/// let no_lifetime: BasicTokenResponse =
///     serde_json::from_str(r#"{"access_token":"at","token_type":"bearer"}"#)?;
/// assert_eq!(cache_entry(&no_lifetime, &ctx), Err(EntryError::MissingExpiresIn));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cache_entry<TR>(response: &TR, ctx: &TokenContext) -> Result<CacheEntry, EntryError>
where
    TR: TokenResponse,
    TR::TokenType: AsRef<str>,
{
    let access_token = response.access_token().secret();
    if access_token.is_empty() {
        return Err(EntryError::EmptyAccessToken);
    }
    let lifetime = response
        .expires_in()
        .or(ctx.default_expires_in)
        .ok_or(EntryError::MissingExpiresIn)?;
    let granted = response
        .scopes()
        .map(|scopes| {
            scopes
                .iter()
                .map(|s| s.as_str().trim())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|scope| !scope.is_empty());
    let scope = granted.clone().unwrap_or_else(|| ctx.scope.clone());
    let mut entry = CacheEntry::new(
        ctx.client_id.clone(),
        ctx.audience.clone(),
        scope,
        access_token.clone(),
        lifetime.as_secs_f64(),
    );
    entry.refresh_token = response.refresh_token().map(|rt| rt.secret().clone());
    let token_type = response.token_type().as_ref();
    entry.token_type = Some(if token_type.eq_ignore_ascii_case("bearer") {
        "Bearer".to_owned()
    } else {
        token_type.to_owned()
    });
    entry.oauth_token_scope = granted;
    Ok(entry)
}

/// The error codes (RFC 6749 §4.1.2.1) a provider answers when it cannot serve now.
const TRANSIENT_CODES: [&str; 2] = ["server_error", "temporarily_unavailable"];

/// A token error of the provider, by its error code only: the description and URI that
/// came with it are left out, since a provider may echo request values in them.
#[derive(Debug)]
struct ProviderError(String);

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the token endpoint answered error {:?}", self.0)
    }
}

impl StdError for ProviderError {}

/// An answer that could not be read, by where it failed only: the parser's message may
/// quote the answer, tokens included.
#[derive(Debug)]
struct UnreadableAnswer(String);

impl fmt::Display for UnreadableAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the token endpoint's answer could not be read ({})",
            self.0
        )
    }
}

impl StdError for UnreadableAnswer {}

/// The [`RefreshError`] of a failed `oauth2` token request, for the refresh function of
/// [`CacheManager::get_or_refresh`](crate::CacheManager::get_or_refresh):
///
/// | the request's error | becomes | the manager then |
/// |---|---|---|
/// | the provider answered `invalid_grant` | [`RefreshError::InvalidGrant`] | removes the refresh token: log the user in again |
/// | `server_error`, `temporarily_unavailable` | [`RefreshError::Transient`] | writes nothing; retry later |
/// | any other error code (`invalid_client`, `invalid_scope`, …) | [`RefreshError::Fatal`] | writes nothing |
/// | the HTTP client failed | [`RefreshError::Transient`] | writes nothing; retry later |
/// | an answer that does not parse, an empty error answer | [`RefreshError::Transient`] | writes nothing (a 5xx page of a proxy looks like this: the `oauth2` crate does not keep the status) |
///
/// No token reaches the error: only the provider's error code is kept (not its
/// description), a parse failure keeps only the path of the field that failed, and the
/// HTTP client's error is the source as it is (it must not quote the request body).
///
/// ```
/// use oauth2::basic::{BasicErrorResponse, BasicErrorResponseType, BasicRequestTokenError};
/// use tokencache::oauth2::refresh_error;
/// use tokencache::RefreshError;
///
/// let refused: BasicRequestTokenError<std::io::Error> =
///     oauth2::RequestTokenError::ServerResponse(BasicErrorResponse::new(
///         BasicErrorResponseType::InvalidGrant,
///         Some("Unknown or invalid refresh token.".into()),
///         None,
///     ));
/// assert!(matches!(refresh_error(refused), RefreshError::InvalidGrant(_)));
///
/// let offline: BasicRequestTokenError<std::io::Error> =
///     oauth2::RequestTokenError::Request(std::io::ErrorKind::ConnectionRefused.into());
/// assert!(matches!(refresh_error(offline), RefreshError::Transient(_)));
/// ```
pub fn refresh_error<RE, T>(e: RequestTokenError<RE, StandardErrorResponse<T>>) -> RefreshError
where
    RE: StdError + Send + Sync + 'static,
    T: ErrorResponseType + AsRef<str> + fmt::Display + 'static,
{
    match e {
        RequestTokenError::ServerResponse(answer) => {
            let code = answer.error().as_ref();
            let source = Box::new(ProviderError(code.to_owned()));
            if code == "invalid_grant" {
                RefreshError::InvalidGrant(source)
            } else if TRANSIENT_CODES.contains(&code) {
                RefreshError::Transient(source)
            } else {
                RefreshError::Fatal(source)
            }
        }
        RequestTokenError::Request(client) => RefreshError::Transient(Box::new(client)),
        RequestTokenError::Parse(parse, _body) => {
            let path = parse.path().to_string();
            RefreshError::Transient(Box::new(UnreadableAnswer(format!("at {path}"))))
        }
        RequestTokenError::Other(_) => {
            RefreshError::Transient(Box::new(UnreadableAnswer("no JSON body".to_owned())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::oauth2::basic::{
        BasicErrorResponse, BasicErrorResponseType, BasicRequestTokenError, BasicTokenResponse,
        BasicTokenType,
    };
    use ::oauth2::{AccessToken, EmptyExtraTokenFields, RefreshToken, StandardTokenResponse};

    const SECRET_AT: &str = "at-SECRET-0123";
    const SECRET_RT: &str = "rt-SECRET-4567";

    fn ctx() -> TokenContext {
        TokenContext::new("my-app", "https://api.example.com", "openid read:orders")
    }

    fn response(json: &str) -> BasicTokenResponse {
        serde_json::from_str(json).expect("a token response")
    }

    /// The full chain of an error's messages.
    fn chain(e: &dyn StdError) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }

    #[test]
    fn every_field_of_a_full_response() {
        let mut r: StandardTokenResponse<EmptyExtraTokenFields, BasicTokenType> =
            StandardTokenResponse::new(
                AccessToken::new(SECRET_AT.into()),
                BasicTokenType::Bearer,
                EmptyExtraTokenFields {},
            );
        r.set_expires_in(Some(&Duration::from_secs(86_400)));
        r.set_refresh_token(Some(RefreshToken::new(SECRET_RT.into())));
        r.set_scopes(Some(vec![
            Scope::new("openid".into()),
            Scope::new("read:orders".into()),
            Scope::new("offline_access".into()),
        ]));
        let e = cache_entry(&r, &ctx()).unwrap();
        assert_eq!(e.client_id, "my-app");
        assert_eq!(e.audience, "https://api.example.com");
        assert_eq!(e.scope, "openid read:orders offline_access");
        assert_eq!(
            e.oauth_token_scope.as_deref(),
            Some("openid read:orders offline_access")
        );
        assert_eq!(e.access_token, SECRET_AT);
        assert_eq!(e.expires_in, 86_400.0);
        assert_eq!(e.refresh_token.as_deref(), Some(SECRET_RT));
        assert_eq!(e.token_type.as_deref(), Some("Bearer"));
        assert_eq!(e.id_token, None);
        let debug = format!("{e:?} {r:?} {:?}", ctx());
        assert!(
            !debug.contains(SECRET_AT) && !debug.contains(SECRET_RT),
            "{debug}"
        );
    }

    #[test]
    fn the_requested_scope_when_the_response_names_none() {
        for json in [
            r#"{"access_token":"a","token_type":"bearer","expires_in":5}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":5,"scope":null}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":5,"scope":""}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":5,"scope":" "}"#,
        ] {
            let e = cache_entry(&response(json), &ctx()).unwrap();
            assert_eq!(e.scope, "openid read:orders", "{json}");
            assert_eq!(e.oauth_token_scope, None, "{json}");
            assert_eq!(e.refresh_token, None, "{json}");
            assert_eq!(e.expires_in, 5.0);
        }
    }

    #[test]
    fn a_missing_lifetime_is_an_error_unless_a_default_is_given() {
        let r = response(r#"{"access_token":"a","token_type":"Bearer"}"#);
        assert_eq!(cache_entry(&r, &ctx()), Err(EntryError::MissingExpiresIn));
        let e = cache_entry(&r, &ctx().default_expires_in(Duration::from_millis(1_500))).unwrap();
        assert_eq!(e.expires_in, 1.5);
        // The response's own lifetime wins over the default, zero included.
        let r = response(r#"{"access_token":"a","token_type":"Bearer","expires_in":0}"#);
        let e = cache_entry(&r, &ctx().default_expires_in(Duration::from_secs(300))).unwrap();
        assert_eq!(e.expires_in, 0.0);
    }

    #[test]
    fn an_empty_access_token_is_an_error() {
        let r = response(r#"{"access_token":"","token_type":"Bearer","expires_in":60}"#);
        assert_eq!(cache_entry(&r, &ctx()), Err(EntryError::EmptyAccessToken));
        let as_refresh = RefreshError::from(EntryError::EmptyAccessToken);
        assert!(matches!(as_refresh, RefreshError::Fatal(_)));
    }

    #[test]
    fn token_types_other_than_bearer_are_kept() {
        let r = response(r#"{"access_token":"a","token_type":"MAC","expires_in":1}"#);
        assert_eq!(
            cache_entry(&r, &ctx()).unwrap().token_type.as_deref(),
            Some("mac")
        );
        let r = response(r#"{"access_token":"a","token_type":"DPoP","expires_in":1}"#);
        assert_eq!(
            cache_entry(&r, &ctx()).unwrap().token_type.as_deref(),
            Some("dpop")
        );
    }

    #[test]
    fn context_of_a_refresh_request_and_its_scopes() {
        let req = RefreshRequest {
            client_id: "c".into(),
            audience: "https://a".into(),
            scope: "openid  read ".into(),
            refresh_token: SECRET_RT.into(),
        };
        let ctx = TokenContext::from(&req);
        assert_eq!(ctx, TokenContext::new("c", "https://a", "openid  read "));
        let scopes: Vec<String> = ctx.scopes().map(|s| s.as_str().to_owned()).collect();
        assert_eq!(scopes, ["openid", "read"]);
        assert!(!format!("{ctx:?}").contains(SECRET_RT));
    }

    fn server(code: BasicErrorResponseType) -> BasicRequestTokenError<std::io::Error> {
        RequestTokenError::ServerResponse(BasicErrorResponse::new(
            code,
            Some(format!("the token {SECRET_RT} was reused")),
            Some("https://idp.example/errors?rt=".to_owned() + SECRET_RT),
        ))
    }

    #[test]
    fn provider_errors_by_code_without_their_description() {
        let cases = [
            (BasicErrorResponseType::InvalidGrant, "invalid_grant"),
            (BasicErrorResponseType::InvalidClient, "fatal"),
            (BasicErrorResponseType::InvalidScope, "fatal"),
            (BasicErrorResponseType::UnsupportedGrantType, "fatal"),
            (
                BasicErrorResponseType::Extension("temporarily_unavailable".into()),
                "transient",
            ),
            (
                BasicErrorResponseType::Extension("server_error".into()),
                "transient",
            ),
            (
                BasicErrorResponseType::Extension("invalid_dpop_proof".into()),
                "fatal",
            ),
        ];
        for (code, want) in cases {
            let name = code.as_ref().to_owned();
            let e = refresh_error(server(code));
            let got = match &e {
                RefreshError::InvalidGrant(_) => "invalid_grant",
                RefreshError::Transient(_) => "transient",
                RefreshError::Fatal(_) => "fatal",
            };
            assert_eq!(got, want, "{name}");
            let text = chain(&e);
            assert!(text.contains(&name), "{text}");
            assert!(!text.contains(SECRET_RT), "{text}");
        }
    }

    #[test]
    fn client_and_parse_failures_are_transient_and_quote_nothing() {
        let offline: BasicRequestTokenError<std::io::Error> = RequestTokenError::Request(
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        );
        let e = refresh_error(offline);
        assert!(matches!(e, RefreshError::Transient(_)));
        assert!(chain(&e).contains("refused"));

        // A 200 answer whose expires_in is a string holding a token: serde's message
        // would quote it.
        let body = format!(
            r#"{{"access_token":"{SECRET_AT}","token_type":"bearer","expires_in":"{SECRET_RT}"}}"#
        );
        let parse = serde_path_to_json(&body);
        let e = refresh_error::<std::io::Error, BasicErrorResponseType>(RequestTokenError::Parse(
            parse,
            body.into_bytes(),
        ));
        assert!(matches!(e, RefreshError::Transient(_)));
        let text = chain(&e);
        assert!(text.contains("expires_in"), "{text}");
        assert!(
            !text.contains(SECRET_RT) && !text.contains(SECRET_AT),
            "{text}"
        );

        let e = refresh_error::<std::io::Error, BasicErrorResponseType>(RequestTokenError::Other(
            format!("server returned {SECRET_RT}"),
        ));
        assert!(matches!(e, RefreshError::Transient(_)));
        assert!(!chain(&e).contains(SECRET_RT));
    }

    /// The parse error the `oauth2` crate makes of `body`.
    fn serde_path_to_json(body: &str) -> serde_path_to_error::Error<serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(body);
        match serde_path_to_error::deserialize::<_, BasicTokenResponse>(&mut de) {
            Ok(_) => panic!("the body should not parse"),
            Err(e) => e,
        }
    }
}
