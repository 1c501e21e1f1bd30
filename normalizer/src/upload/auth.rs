//! Bearer tokens for `https://monitor.azure.com/.default`, chosen from the environment the
//! way Azure's SDKs do (`EnvironmentCredential`, then `ManagedIdentityCredential`):
//!
//! - `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET`: client credentials
//!   against `{AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token` (default authority
//!   `https://login.microsoftonline.com`).
//! - otherwise a managed identity: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service,
//!   Functions, Container Apps), else the VM instance metadata service. `AZURE_CLIENT_ID`,
//!   if set, picks a user-assigned identity.

use super::client::check_url;
use std::time::{Duration, Instant};

/// The token scope of the Logs Ingestion API (reference §4).
pub const SCOPE: &str = "https://monitor.azure.com/.default";
/// Managed identity endpoints take a resource, not a scope.
pub const RESOURCE: &str = "https://monitor.azure.com";
const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// Tokens are renewed this long before they expire.
const EARLY: Duration = Duration::from_secs(300);

/// Where tokens come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A service principal's secret.
    ClientSecret {
        /// Token endpoint.
        token_url: String,
        /// Application (client) id.
        client_id: String,
        /// Its secret.
        client_secret: String,
    },
    /// A managed identity.
    ManagedIdentity {
        /// Token endpoint (IMDS or `IDENTITY_ENDPOINT`).
        endpoint: String,
        /// `IDENTITY_HEADER`, for the App Service flavour; `None` for IMDS.
        identity_header: Option<String>,
        /// User-assigned identity's client id.
        client_id: Option<String>,
    },
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// Whether trying again later may help (network trouble, 5xx, throttling).
    pub retryable: bool,
    /// One line naming the cause.
    pub message: String,
}

impl Credential {
    /// The credential the environment describes.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Credential, String> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let (tenant, client, secret) = (
            get("AZURE_TENANT_ID"),
            get("AZURE_CLIENT_ID"),
            get("AZURE_CLIENT_SECRET"),
        );
        if let Some(secret) = secret {
            let (Some(tenant), Some(client_id)) = (tenant, client.clone()) else {
                return Err(
                    "AZURE_CLIENT_SECRET is set, so AZURE_TENANT_ID and AZURE_CLIENT_ID must be too"
                        .into(),
                );
            };
            if !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(format!(
                    "AZURE_TENANT_ID {tenant:?} is not a tenant id or domain"
                ));
            }
            let authority = get("AZURE_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_AUTHORITY.into());
            check_url(&authority, "AZURE_AUTHORITY_HOST")?;
            return Ok(Credential::ClientSecret {
                token_url: format!(
                    "{}/{tenant}/oauth2/v2.0/token",
                    authority.trim_end_matches('/')
                ),
                client_id,
                client_secret: secret,
            });
        }
        match (get("IDENTITY_ENDPOINT"), get("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) => {
                check_identity_endpoint(&endpoint)?;
                Ok(Credential::ManagedIdentity {
                    endpoint,
                    identity_header: Some(header),
                    client_id: client,
                })
            }
            _ => Ok(Credential::ManagedIdentity {
                endpoint: IMDS.into(),
                identity_header: None,
                client_id: client,
            }),
        }
    }

    /// Asks for a new token: (token, lifetime).
    fn fetch(&self, agent: &ureq::Agent) -> Result<(String, Duration), AuthError> {
        let result = match self {
            Credential::ClientSecret {
                token_url,
                client_id,
                client_secret,
            } => agent.post(token_url).send_form([
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
                ("scope", SCOPE),
            ]),
            Credential::ManagedIdentity {
                endpoint,
                identity_header,
                client_id,
            } => {
                let mut req = agent.get(endpoint).query("resource", RESOURCE);
                req = match identity_header {
                    Some(h) => req
                        .query("api-version", "2019-08-01")
                        .header("X-IDENTITY-HEADER", h),
                    None => req
                        .query("api-version", "2018-02-01")
                        .header("Metadata", "true"),
                };
                if let Some(id) = client_id {
                    req = req.query("client_id", id);
                }
                req.call()
            }
        };
        let what = match self {
            Credential::ClientSecret { .. } => "client credentials",
            Credential::ManagedIdentity { .. } => "managed identity",
        };
        let mut resp = result.map_err(|e| AuthError {
            retryable: true,
            message: format!("token request ({what}) failed: {e}"),
        })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let detail = v["error_description"]
                .as_str()
                .or(v["error"].as_str())
                .or(v["message"].as_str())
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            return Err(AuthError {
                retryable: status == 429 || status >= 500,
                message: format!("token request ({what}) answered HTTP {status}: {detail}"),
            });
        }
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| AuthError {
            retryable: false,
            message: format!("token response ({what}) is not JSON: {e}"),
        })?;
        let token = v["access_token"].as_str().ok_or_else(|| AuthError {
            retryable: false,
            message: format!("token response ({what}) has no access_token"),
        })?;
        // AAD sends a number, managed identity endpoints a string.
        let lifetime = v["expires_in"]
            .as_u64()
            .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(300);
        Ok((token.to_owned(), Duration::from_secs(lifetime)))
    }
}

/// Identity endpoints are plain HTTP by design, but only on this host or link-local.
fn check_identity_endpoint(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("IDENTITY_ENDPOINT {url:?} is not a URL: {e}"))?;
    let host = uri.host().unwrap_or("").trim_matches(['[', ']']);
    let local = host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| {
            ip.is_loopback() || matches!(ip, std::net::IpAddr::V4(v4) if v4.is_link_local())
        });
    if uri.scheme_str() == Some("https") || local {
        Ok(())
    } else {
        Err(format!(
            "IDENTITY_ENDPOINT {url:?} must be https, or http on a loopback or link-local address"
        ))
    }
}

/// A credential plus its current token.
pub struct Tokens {
    credential: Credential,
    current: Option<(String, Instant)>,
}

impl Tokens {
    /// No token yet.
    pub fn new(credential: Credential) -> Tokens {
        Tokens {
            credential,
            current: None,
        }
    }

    /// A token valid for at least a few more minutes.
    pub fn get(&mut self, agent: &ureq::Agent) -> Result<String, AuthError> {
        if let Some((token, until)) = &self.current {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.credential.fetch(agent)?;
        self.current = Some((
            token.clone(),
            Instant::now() + lifetime.saturating_sub(EARLY),
        ));
        Ok(token)
    }

    /// Forgets the token (after the service refused it).
    pub fn invalidate(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env as env;

    #[test]
    fn environment_picks_the_credential() {
        let c = Credential::from_env(&env(&[
            ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
            ("AZURE_CLIENT_ID", "app"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
        ]))
        .unwrap();
        assert!(matches!(c, Credential::ClientSecret { ref token_url, .. }
            if token_url == "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"));

        let e = Credential::from_env(&env(&[("AZURE_CLIENT_SECRET", "s")])).unwrap_err();
        assert!(e.contains("AZURE_TENANT_ID"), "{e}");
        let e = Credential::from_env(&env(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "a"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_AUTHORITY_HOST", "http://login.example.com"),
        ]))
        .unwrap_err();
        assert!(
            e.contains("AZURE_AUTHORITY_HOST") && e.contains("https"),
            "{e}"
        );

        let c = Credential::from_env(&env(&[("AZURE_CLIENT_ID", "uami")])).unwrap();
        assert_eq!(
            c,
            Credential::ManagedIdentity {
                endpoint: IMDS.into(),
                identity_header: None,
                client_id: Some("uami".into())
            }
        );
        let c = Credential::from_env(&env(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ]))
        .unwrap();
        assert!(matches!(
            c,
            Credential::ManagedIdentity {
                identity_header: Some(_),
                ..
            }
        ));
        assert!(Credential::from_env(&env(&[
            ("IDENTITY_ENDPOINT", "http://identity.example.com/token"),
            ("IDENTITY_HEADER", "h"),
        ]))
        .is_err());
    }
}
