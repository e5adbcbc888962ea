//! Secrets kept out of what the service prints: a leaf module, so that the
//! store and the settings (which names the store) can both use it without
//! importing each other.

/// A store URL with any password replaced by `***`.
pub fn redact_url(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => raw.to_owned(),
    }
}
