//! A merchant as registered upstream, and the only shape of it the public
//! sees ([`PublicMerchant`]: personal data masked, no id number).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::newtypes::{CreditCode, MerchantId, RegionCode};

named_enum! {
    /// A shop with premises, or a registered itinerant vendor (游商).
    MerchantKind { Shop = "shop", Vendor = "vendor" }
}

/// A merchant as registered upstream. `contact_*` and `id_number` are
/// personal data: they never leave the service unmasked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub kind: MerchantKind,
    pub uscc: Option<CreditCode>,
    pub address: String,
    pub region: RegionCode,
    pub categories: Vec<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub id_number: Option<String>,
}

/// The merchant as the public may see it: personal data masked, no id number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicMerchant {
    pub id: MerchantId,
    pub name: String,
    pub kind: MerchantKind,
    pub uscc: Option<CreditCode>,
    pub address: String,
    pub region: RegionCode,
    pub categories: Vec<String>,
    /// The contact person, masked (`张*`).
    pub contact: Option<String>,
    /// The contact phone, masked (`138****5678`).
    pub phone: Option<String>,
}

impl PublicMerchant {
    pub fn from_merchant(m: &Merchant) -> PublicMerchant {
        PublicMerchant {
            id: m.id.clone(),
            name: m.name.clone(),
            kind: m.kind,
            uscc: m.uscc.clone(),
            address: m.address.clone(),
            region: m.region.clone(),
            categories: m.categories.clone(),
            contact: m.contact_name.as_deref().map(mask_name),
            phone: m.contact_phone.as_deref().map(mask_phone),
        }
    }
}

/// Masks a person's name: the first character, then one `*` per remaining
/// character (`张三` → `张*`). One character or less becomes `*`.
pub fn mask_name(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.len() <= 1 {
        return "*".to_owned();
    }
    let mut out = String::with_capacity(chars.len() + 3);
    out.push(chars[0]);
    out.extend(std::iter::repeat_n('*', chars.len() - 1));
    out
}

/// Masks a phone number: keeps the first 3 and last 4 characters of 11 or
/// more (`13812345678` → `138****5678`), only the last 4 of 8–10, nothing of
/// shorter input (`****`).
pub fn mask_phone(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        11.. => (3, 4),
        8..=10 => (0, 4),
        _ => (0, 0),
    };
    // Short input shows nothing, not even its length.
    let stars = if head + tail == 0 { 4 } else { n - head - tail };
    let mut out = String::with_capacity(n + 4);
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', stars));
    out.extend(&chars[n - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_never_returns_the_input() {
        let cases = [
            ("张三", "张*"),
            ("欧阳娜娜", "欧***"),
            ("张", "*"),
            ("", "*"),
            (" 李四 ", "李*"),
            ("Li Wei", "L*****"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_name(input), want, "{input:?}");
        }
        let cases = [
            ("13812345678", "138****5678"),
            ("+8613812345678", "+86*******5678"),
            ("028-12345678", "028*****5678"),
            ("12345678", "****5678"),
            ("1234567", "****"),
            ("110", "****"),
            ("", "****"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_phone(input), want, "{input:?}");
        }
    }
}
