//! The store conformance suite: every test is written once over `SharedStore`
//! and run against the embedded store (a temporary directory), a real Redis
//! and a real three-master Redis Cluster (see `redis_helpers`).
//!
//! Each test gets a fresh store: a new directory, or a new key prefix on the
//! shared servers. Test names read `store::<backend>::<test>`.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::civil::{date, Date};
use jiff::Timestamp;
use serde_json::json;
use tempfile::TempDir;
use yisaozhi::grading::{self, Rules};
use yisaozhi::model::{
    ApiToken, AuditEntry, CodeStatus, Grade, IssuedCode, Merchant, MerchantId, Override,
    Projection, Record,
};
use yisaozhi::records;
use yisaozhi::store::embedded::EmbeddedStore;
use yisaozhi::store::query::MerchantQuery;
use yisaozhi::store::redis::{slot_of, RedisOptions, RedisStore, MAX_CHANGES_LISTED};
use yisaozhi::store::{
    AuditFilter, BatchStore, Imported, RecordsAdded, SharedStore, StoreError, StoreSpec,
    StoredProjection,
};

use crate::redis_helpers::{self, redis_cli, unique_prefix};

mod batch;
mod documents;
mod feed;
mod layouts;
mod merchants_records;
mod queries;
mod redis_only;
mod review_queue;
mod service;
mod shop;

use self::batch::*;
use self::documents::*;
use self::feed::*;
use self::layouts::*;
use self::merchants_records::*;
use self::queries::*;
use self::redis_only::redis_of;
use self::review_queue::*;
use self::service::*;
use self::shop::*;

const AS_OF: Date = date(2026, 3, 1);

/// A fresh store of one kind, and what a backend-specific test needs.
pub struct Backend {
    pub store: SharedStore,
    /// The Redis store behind `store`, for Redis-only checks.
    pub redis: Option<RedisStore>,
    /// Above this many pending changes `changes_since` says "everything".
    pub max_changes_listed: u64,
    _dir: Option<TempDir>,
}

impl Backend {
    async fn embedded() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("open embedded store");
        Backend {
            store: Arc::new(store),
            redis: None,
            // The embedded store's fixed limit (the same number as Redis's default).
            max_changes_listed: MAX_CHANGES_LISTED,
            _dir: Some(dir),
        }
    }

    /// Redis's limit is an option: a small one keeps the test of it quick.
    const REDIS_CHANGES_LISTED: u64 = 1_000;

    fn options() -> RedisOptions {
        RedisOptions {
            prefix: unique_prefix(),
            max_changes_listed: Self::REDIS_CHANGES_LISTED,
            ..RedisOptions::default()
        }
    }

    async fn redis() -> Backend {
        let server = redis_helpers::standalone();
        let store = RedisStore::connect(&server.url(), Self::options())
            .await
            .unwrap_or_else(|e| panic!("connect to Redis: {e:#}\n{}", server.log()));
        Backend {
            store: Arc::new(store.clone()),
            redis: Some(store),
            max_changes_listed: Self::REDIS_CHANGES_LISTED,
            _dir: None,
        }
    }

    async fn cluster() -> Backend {
        let cluster = redis_helpers::cluster();
        let store = RedisStore::connect_cluster(&cluster.urls(), Self::options())
            .await
            .unwrap_or_else(|e| panic!("connect to Redis Cluster: {e:#}"));
        assert!(store.is_cluster());
        Backend {
            store: Arc::new(store.clone()),
            redis: Some(store),
            max_changes_listed: Self::REDIS_CHANGES_LISTED,
            _dir: None,
        }
    }
}

/// Runs each listed test against all three backends.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Backend::embedded().await).await;
            })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Backend::redis().await).await;
            })*
        }
        mod cluster {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Backend::cluster().await).await;
            })*
        }
    };
}

conformance!(
    ping_answers,
    upsert_merchants_counts_new_and_changed_ones,
    add_records_keeps_import_order_and_skips_duplicate_ids,
    projection_round_trip,
    due_for_regrade_is_marked_ungraded_and_expiring_only,
    a_batch_of_projections_clears_marks_and_keeps_each_merchants_last_due_day,
    override_set_and_clear_write_projection_and_audit,
    next_serial_is_unique_and_increasing,
    issue_code_supersedes_the_active_code,
    revoke_code_returns_the_code_as_it_was,
    audit_filters_by_target_actor_since_and_limit_newest_first,
    tokens_round_trip,
    grading_inputs_bring_merchant_records_override_and_previous_grade,
    last_refresh_round_trip,
    changes_since_lists_changed_merchants,
    changes_since_says_everything_when_too_much_changed,
    projection_pages_and_queries,
    bulk_import_marks_exactly_the_merchants_it_changed,
    a_bulk_import_stores_the_first_of_each_record_id_across_batches_and_runs,
    the_grading_inputs_after_a_first_bulk_load_are_the_stored_records,
    the_sampling_inputs_are_each_merchants_sampling_records_in_id_order,
    scan_view_is_the_projection_and_every_code_status,
    inactive_codes_are_the_revoked_and_superseded_serials_in_order,
    a_second_refresh_of_records_with_a_space_after_each_colon_changes_nothing,
    documents_put_get_insert_swap_remove,
    documents_list_in_key_order_in_pages,
    a_document_write_and_its_audit_entry_land_together,
    of_concurrent_swaps_from_one_text_exactly_one_wins,
    a_document_key_must_be_short_and_printable,
    an_activation_code_opens_one_session_of_concurrent_logins,
    revoking_access_ends_sessions_and_a_new_code_replaces_the_old,
    a_submission_is_decided_once_and_becomes_a_graded_record,
    the_pending_queue_reads_a_regions_range_and_drops_stale_entries,
    the_feed_lists_each_public_change_once_in_order,
    concurrent_writers_leave_each_change_once,
    searches_and_stats_answer_what_reading_every_projection_answers,
    stats_count_each_merchant_once_per_category,
    the_index_holds_when_codes_are_issued_during_a_projection_write,
    the_refresh_notes_each_days_counts_and_the_dashboard_reads_them,
);

// ---------- fixtures ----------

fn id(s: &str) -> MerchantId {
    MerchantId::parse(s).expect("merchant id")
}

fn ids(list: &[&str]) -> Vec<MerchantId> {
    list.iter().map(|s| id(s)).collect()
}

/// Parses a fixture written compact and in Python's layout (see
/// [`python_style`]): both give the same value, so no store test depends
/// on the layout of its input.
fn in_both_layouts<T: PartialEq + std::fmt::Debug>(
    v: serde_json::Value,
    parse: fn(&str) -> Result<T, String>,
) -> T {
    let compact = parse(&v.to_string()).expect("fixture line");
    assert_eq!(parse(&python_style(&v)).as_ref(), Ok(&compact), "{v}");
    compact
}

fn merchant(mid: &str, name: &str) -> Merchant {
    in_both_layouts(
        json!({
            "id": mid, "name": name, "kind": "shop", "address": "叙州区南岸东路1号",
            "region": "511521", "categories": ["食品"],
            "contact_name": "张三", "contact_phone": "13800001234"
        }),
        records::parse_merchant,
    )
}

fn merchants(list: &[&str]) -> Vec<Merchant> {
    list.iter()
        .map(|m| merchant(m, &format!("商户{m}")))
        .collect()
}

fn record(rid: &str, mid: &str, day: &str) -> Record {
    in_both_layouts(
        json!({"id": rid, "merchant": mid, "kind": "complaint", "date": day, "substantiated": false}),
        records::parse_record,
    )
}

fn failed_sampling(rid: &str, mid: &str, day: &str) -> Record {
    in_both_layouts(
        json!({"id": rid, "merchant": mid, "kind": "sampling", "date": day,
                "product": "散装白酒", "passed": false, "failed_items": ["甲醇"]}),
        records::parse_record,
    )
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_772_000_000 + second).expect("timestamp")
}

fn project(m: &Merchant, records: &[Record], ovr: Option<&Override>) -> Projection {
    grading::project(m, records, ovr, &Rules::default(), AS_OF, at(0))
}

/// A projection of `mid` with no records and the given `next_change_at`.
fn plain(mid: &str, next: Option<Date>) -> Projection {
    let mut p = project(&merchant(mid, &format!("商户{mid}")), &[], None);
    p.next_change_at = next;
    p
}

fn entry(second: i64, actor: &str, action: &str, target: &str) -> AuditEntry {
    AuditEntry {
        at: at(second),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        before: json!({"n": second}),
        after: json!(null),
        reason: Some(format!("reason {second}")),
    }
}

/// A real token for the fixture code `serial` (a fixed test key): the
/// store parses the tokens it reads.
fn signed_token(serial: u32, mid: &str, grade: Grade) -> yisaozhi_codes::Token {
    let key = yisaozhi_codes::SigningKey::from_bytes(&[7; 32]);
    let claims = yisaozhi_codes::Claims {
        kid: yisaozhi_codes::KeyId(1),
        merchant: mid.into(),
        serial,
        issued: yisaozhi::clock::to_day(AS_OF).unwrap(),
        expires: yisaozhi::clock::to_day(date(2027, 3, 1)).unwrap(),
        grade,
    };
    yisaozhi_codes::sign(&claims, &key).unwrap()
}

fn code(serial: u32, mid: &str, grade: Grade) -> IssuedCode {
    IssuedCode {
        serial,
        merchant: id(mid),
        kid: 1,
        token: signed_token(serial, mid, grade),
        issued_at: AS_OF,
        expires_at: date(2027, 3, 1),
        printed_grade: grade,
        status: CodeStatus::Active,
    }
}

fn sorted(v: Vec<MerchantId>) -> Vec<MerchantId> {
    let set: BTreeSet<_> = v.into_iter().collect();
    set.into_iter().collect()
}

/// Reads the changes after `cursor` as a sorted list; panics on `None`.
async fn changed_since(b: &Backend, cursor: u64) -> (Vec<MerchantId>, u64) {
    let (changed, next) = b.store.changes_since(cursor).await.expect("changes_since");
    let changed = changed.unwrap_or_else(|| panic!("everything changed after {cursor}"));
    (sorted(changed), next)
}

/// The cursor after everything so far.
async fn cursor_now(b: &Backend) -> u64 {
    b.store.changes_since(0).await.expect("changes_since").1
}
