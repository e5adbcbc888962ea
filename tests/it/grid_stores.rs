//! The roster, the grid and plans on every store: the same calls the
//! command line and the admin API make, run against the embedded store, a
//! real Redis and a real Redis Cluster.

use std::sync::Arc;

use jiff::civil::{date, Date};
use serde_json::json;
use tempfile::TempDir;
use yisaozhi::grading::{self, Rules};
use yisaozhi::model::{MerchantId, Record};
use yisaozhi::plan::{PlanRequest, Weights};
use yisaozhi::records::{parse_merchant, parse_record};
use yisaozhi::roster::{self, Role, StaffId};
use yisaozhi::store::embedded::EmbeddedStore;
use yisaozhi::store::redis::{RedisOptions, RedisStore};
use yisaozhi::store::SharedStore;

use crate::redis_helpers::{self, unique_prefix};

const AS_OF: Date = date(2026, 6, 1);

async fn embedded() -> (SharedStore, Option<TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    (Arc::new(store), Some(dir))
}

fn options() -> RedisOptions {
    RedisOptions {
        prefix: unique_prefix(),
        ..RedisOptions::default()
    }
}

async fn redis() -> (SharedStore, Option<TempDir>) {
    let server = redis_helpers::standalone();
    (
        Arc::new(RedisStore::connect(&server.url(), options()).await.unwrap()),
        None,
    )
}

async fn cluster() -> (SharedStore, Option<TempDir>) {
    let cluster = redis_helpers::cluster();
    let store = RedisStore::connect_cluster(&cluster.urls(), options())
        .await
        .unwrap();
    (Arc::new(store), None)
}

/// 30 merchants in 511425 (every third a restaurant, with a failed sampling
/// test at XB-05), 6 in 511502, graded.
async fn county(store: &SharedStore) {
    let mut merchants = Vec::new();
    for i in 0..36 {
        let (id, region) = if i < 30 {
            (format!("XB-{i:02}"), "511425")
        } else {
            (format!("CP-{i:02}"), "511502")
        };
        let category = if i % 3 == 0 { "餐饮" } else { "食品" };
        let line = json!({"id": id, "name": format!("商户{i}"), "kind": "shop",
            "address": format!("{i}号"), "region": region, "categories": [category]});
        merchants.push(parse_merchant(&line.to_string()).unwrap());
    }
    store.upsert_merchants(merchants.clone()).await.unwrap();
    let failed = parse_record(
        &json!({"id": "S1", "merchant": "XB-03", "kind": "sampling", "date": "2026-03-01",
            "product": "凉拌菜", "passed": false})
        .to_string(),
    )
    .unwrap();
    store.add_records(vec![failed.clone()]).await.unwrap();
    let projections = merchants
        .iter()
        .map(|m| {
            let records: Vec<Record> = if m.id.as_str() == "XB-03" {
                vec![failed.clone()]
            } else {
                vec![]
            };
            grading::project(
                m,
                &records,
                None,
                &Rules::default(),
                AS_OF,
                jiff::Timestamp::now(),
            )
        })
        .collect();
    store.put_projections(projections).await.unwrap();
}

const ROSTER: &str = r#"{"id":"A1","name":"甲","unit":"城区所","region":"511425","role":"assistant"}
{"id":"A2","name":"乙","unit":"城区所","region":"511425","role":"assistant"}
{"id":"A3","name":"丙","unit":"城区所","region":"511425","role":"chief"}
{"id":"J1","name":"丁","unit":"执法大队","region":"511400","role":"inspector"}
{"id":"A1","name":"甲","unit":"城区所","region":"511425","role":"inspector"}
{"id":"J2","name":"戊","unit":"执法大队","region":"511425","role":"inspector"}
{"id":"J1","name":"丁二","unit":"执法大队","region":"511400","role":"inspector"}
{"id":"J3","name":"己","unit":"南岸所","region":"5114","role":"inspector"}
"#;

async fn roster_grid_and_plans(store: SharedStore) {
    let s = store.as_ref();
    county(&store).await;

    // Roster: bad lines rejected by line and reason; (role, id) twice refused.
    let (members, rejects) = roster::read_jsonl_roster(ROSTER.as_bytes(), "roster.jsonl");
    let report = roster::import_members(s, "roster.jsonl", members, rejects, &|_| true, "test")
        .await
        .unwrap();
    assert_eq!((report.imported, report.rejected), (5, 3), "{report:?}");
    let lines: Vec<u64> = report.rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 8, 7], "{report:?}");
    assert!(report.rejects[2]
        .reason
        .contains("appears twice (first on line 4)"));
    let all = roster::load(s).await.unwrap();
    assert_eq!(all.len(), 5);
    let again =
        roster::import_members(s, "x", vec![(1, all[0].clone())], vec![], &|_| true, "test")
            .await
            .unwrap();
    assert_eq!((again.imported, again.unchanged), (0, 1));

    // Grid: 30 merchants of 511425 over two assistants, 12 each at most.
    let run = yisaozhi::grid::assign_and_store(s, 12, "test")
        .await
        .unwrap()
        .run;
    assert_eq!((run.merchants, run.assigned, run.unassigned), (36, 24, 12));
    let a1 = yisaozhi::grid::assistant_grid(s, &StaffId::parse("A1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let a2 = yisaozhi::grid::assistant_grid(s, &StaffId::parse("A2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a1.merchants.len(), a2.merchants.len()), (12, 12));
    let unassigned = yisaozhi::grid::unassigned_page(s, 0).await.unwrap();
    assert_eq!(unassigned.len(), 12);
    assert!(
        unassigned
            .iter()
            .filter(|m| m.as_str().starts_with("CP-"))
            .count()
            == 6
    );
    // Again, with room for all: nobody who had an assistant moves.
    let report = yisaozhi::grid::assign_and_store(s, 15, "test")
        .await
        .unwrap();
    assert_eq!(
        (report.run.moved, report.run.kept, report.run.newly_assigned),
        (0, 24, 6)
    );
    assert_eq!(report.run.unassigned, 6);
    let report = yisaozhi::grid::assign_and_store(s, 15, "test")
        .await
        .unwrap();
    assert_eq!((report.run.moved, report.run.kept), (0, 30));
    assert_eq!(
        report.documents_written, 0,
        "an unchanged grid writes nothing"
    );

    // A plan over 511425: inspectors J1, J2, A1 (A1 never for its own merchants).
    let req = PlanRequest {
        name: "2026-W23".into(),
        seed: "福彩3D 2026152".into(),
        size: 10,
        region: Some(yisaozhi::model::RegionCode::parse("511425").unwrap()),
        weights: Weights::default(),
        team_size: 2,
        as_of: AS_OF,
    };
    let (plan, input) = yisaozhi::plan::create(s, &req, "test").await.unwrap();
    assert_eq!(plan.entries.len(), 10);
    assert_eq!(plan.doubled_categories, vec!["餐饮"]);
    assert_eq!(input.merchants.len(), 30);
    assert_eq!(plan.input_sha256, yisaozhi::plan::input_digest(&input));
    let own: std::collections::HashMap<&MerchantId, &str> =
        a1.merchants.iter().map(|m| (m, "A1")).collect();
    for e in &plan.entries {
        // Three inspectors cover 511425; a team is missing only when the
        // load limit (⌈2 × 10 ÷ 3⌉ + 1 = 8) left too few.
        match &e.team {
            Some(team) => assert!(team
                .iter()
                .all(|m| !(own.contains_key(&e.merchant_id) && m.id.as_str() == "A1"))),
            None => assert_eq!(e.no_team, Some(yisaozhi::plan::NoTeam::LoadLimit)),
        }
        assert_eq!(
            e.doubled,
            e.merchant_id.as_str()[3..].parse::<u32>().unwrap() % 3 == 0
        );
    }
    assert_eq!(plan.load_limit, 8);
    assert!(plan.entries.iter().filter(|e| e.team.is_some()).count() >= 8);
    assert!(matches!(
        yisaozhi::plan::create(s, &req, "test").await,
        Err(yisaozhi::plan::PlanError::Exists(_))
    ));
    let stored = yisaozhi::plan::get(s, "2026-W23").await.unwrap().unwrap();
    assert_eq!(stored, plan);

    // Results: an inspection naming the plan, for a drawn merchant.
    let target = &plan.entries[0].merchant_id;
    let record = parse_record(
        &json!({"id": "P-1", "merchant": target, "kind": "inspection", "date": "2026-06-03",
            "hazards": 1, "rectified": false, "plan": "2026-W23"})
        .to_string(),
    )
    .unwrap();
    store.add_records(vec![record]).await.unwrap();
    let results = yisaozhi::plan::results(s, &plan).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!((&results[0].merchant_id, results[0].hazards), (target, 1));
    assert_eq!(yisaozhi::plan::list(s).await.unwrap().len(), 1);
    assert_eq!(
        roster::member(s, Role::Inspector, &StaffId::parse("A1").unwrap())
            .await
            .unwrap()
            .unwrap()
            .unit,
        "城区所"
    );
}

#[tokio::test]
async fn roster_grid_and_plans_on_the_embedded_store() {
    let (store, _dir) = embedded().await;
    roster_grid_and_plans(store).await;
}

#[tokio::test]
async fn roster_grid_and_plans_on_redis() {
    let (store, _) = redis().await;
    roster_grid_and_plans(store).await;
}

#[tokio::test]
async fn roster_grid_and_plans_on_a_redis_cluster() {
    let (store, _) = cluster().await;
    roster_grid_and_plans(store).await;
}
