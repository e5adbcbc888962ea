//! [`Staff`]: the member of staff a workbench request is made by (the
//! extractor, in `session`, finds them from the session cookie).

use crate::auth::Principal;

/// A member of staff with a live session: the token it was opened with is
/// still valid, and its scope is known. Pages take it as an extractor;
/// without a session (or with an expired one) the request is answered 303
/// to `/admin/login`. Derefs to the token's [`Principal`] (name and scope),
/// which the shared actions take.
#[derive(Debug, Clone)]
pub struct Staff {
    pub who: Principal,
    pub token_id: String,
    csrf: String,
}

impl std::ops::Deref for Staff {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.who
    }
}

impl Staff {
    pub(super) fn new(who: Principal, token_id: String, csrf: String) -> Staff {
        Staff {
            who,
            token_id,
            csrf,
        }
    }

    /// The value every state-changing form of this session posts as `csrf`.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `presented` is this session's form token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        presented.len() == self.csrf.len()
            && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}
