//! The records this service owns and must never lose: issued codes, the
//! audit log and regulators' API tokens (the secret only as its SHA-256).

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::newtypes::{Grade, MerchantId};

/// The life of an issued code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeStatus {
    Active,
    Superseded,
    Revoked,
}

impl CodeStatus {
    pub fn name(self) -> &'static str {
        match self {
            CodeStatus::Active => "active",
            CodeStatus::Superseded => "superseded",
            CodeStatus::Revoked => "revoked",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "active" => Some(CodeStatus::Active),
            "superseded" => Some(CodeStatus::Superseded),
            "revoked" => Some(CodeStatus::Revoked),
            _ => None,
        }
    }
}

/// A code handed to a merchant (printed on its door).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub serial: u32,
    pub merchant: MerchantId,
    pub kid: u16,
    /// The signed token, parsed (digits and payload layout checked) when
    /// read from the store as when issued.
    pub token: yisaozhi_codes::Token,
    pub issued_at: Date,
    pub expires_at: Date,
    pub printed_grade: Grade,
    pub status: CodeStatus,
}

/// One audited change: who did what to which target, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub reason: Option<String>,
}

/// A regulator's API token, as stored: the secret only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    #[serde(with = "hex32")]
    pub secret_sha256: [u8; 32],
    pub scope: String,
    pub created_at: Timestamp,
    pub revoked: bool,
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let bytes = data_encoding::HEXLOWER
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}
