//! Conversions every concern of the Redis store shares: its errors and JSON.

use ::redis::RedisError;

use crate::model::MerchantId;
use crate::store::types::{StoreError, StoreResult};

pub(super) fn redis_err(e: RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(corrupt)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(corrupt)
}

pub(super) fn merchant_id(s: &str) -> StoreResult<MerchantId> {
    MerchantId::parse(s).map_err(corrupt)
}
