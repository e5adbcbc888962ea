//! Two service processes on one Redis stay coherent; Redis killed under load; AOF keeps what the service owns.

use super::*;

#[tokio::test]
pub(super) async fn two_service_processes_see_an_override_and_a_refresh_within_a_second() {
    let setup = Setup::new(3);
    let tokens = setup.tokens();
    let a = setup.serve("a").await;
    let b = setup.serve("b").await;
    let (m1, m2) = (&tokens[&merchant(1)], &tokens[&merchant(2)]);
    // Both processes have both merchants cached, green.
    for service in [&a, &b] {
        assert_eq!(service.grade(m1).await, "green");
        assert_eq!(service.grade(m2).await, "green");
    }

    // An override through A.
    let (status, body) = a
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/merchants/{}/override", merchant(1)),
            &setup.token,
            Some(json!({"grade": "red", "reason": "现场检查发现问题"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let written = Instant::now();
    assert_eq!(a.grade(m1).await, "red", "the writing process itself");
    let on_b = b.wait_for_grade(m1, "red", written, COHERENCE * 5).await;
    println!("override through A: B serves the new grade after {on_b:?}");
    assert!(on_b <= COHERENCE, "B took {on_b:?} (bound {COHERENCE:?})");

    // A refresh by the batch job (another process) with a severe penalty.
    let record = json!({"id": "p1", "merchant": merchant(2), "kind": "penalty", "date": "2026-05-01",
                        "decision_no": "川宜市监罚〔2026〕1号", "severity": "severe", "fine_cny": 20000});
    let out = setup.refresh(&format!("{record}\n"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("regraded 1 merchants"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let written = Instant::now();
    for (name, service) in [("A", &a), ("B", &b)] {
        let took = service
            .wait_for_grade(m2, "red", written, COHERENCE * 5)
            .await;
        println!("refresh: {name} serves the new grade {took:?} after the batch job exited");
        assert!(
            took <= COHERENCE,
            "{name} took {took:?} (bound {COHERENCE:?})"
        );
    }
    // Untouched merchants are unchanged.
    assert_eq!(b.grade(&tokens[&merchant(3)]).await, "green");
}

/// Requests hitting cached merchants in a loop until told to stop.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    slowest_us: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(base: &str, paths: Vec<String>, workers: usize) -> Load {
        let load = Load {
            stop: Arc::default(),
            ok: Arc::default(),
            failed: Arc::default(),
            slowest_us: Arc::default(),
            tasks: Vec::new(),
        };
        let tasks = (0..workers)
            .map(|w| {
                let (stop, ok, failed, slowest) = (
                    load.stop.clone(),
                    load.ok.clone(),
                    load.failed.clone(),
                    load.slowest_us.clone(),
                );
                let urls: Vec<String> = paths.iter().map(|p| format!("{base}{p}")).collect();
                let client = client();
                tokio::spawn(async move {
                    let mut problems = Vec::new();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        let url = &urls[i % urls.len()];
                        i += 1;
                        let started = Instant::now();
                        let outcome = client.get(url).send().await;
                        slowest.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                        match outcome {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                problems.push(format!("{url}: {}", r.status()));
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                problems.push(format!("{url}: {e}"));
                            }
                        }
                    }
                    problems
                })
            })
            .collect();
        Load { tasks, ..load }
    }

    /// Stops the load; returns (ok, failed, slowest, the first problems).
    async fn finish(self) -> (u64, u64, Duration, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut problems = Vec::new();
        for t in self.tasks {
            problems.extend(t.await.unwrap());
        }
        problems.truncate(5);
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            Duration::from_micros(self.slowest_us.load(Ordering::Relaxed)),
            problems,
        )
    }
}

#[tokio::test]
pub(super) async fn redis_killed_under_load_cached_merchants_answer_others_get_a_quick_503_and_the_service_recovers(
) {
    let mut setup = Setup::new(8);
    let tokens = setup.tokens();
    let mut service = setup.serve("service").await;
    // Merchants 1-4 are scanned (cached); 5-8 never are before Redis dies.
    let mut before = Vec::new();
    for i in 1..=4 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        before.push(body);
    }
    let cached: Vec<String> = (1..=4)
        .flat_map(|i| {
            let t = &tokens[&merchant(i)];
            [format!("/api/v1/scan/{t}"), format!("/s/{t}")]
        })
        .collect();
    let load = Load::start(&service.base, cached, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;

    setup.redis.kill();
    let killed = Instant::now();

    // Uncached merchants: 503 JSON and 503 page, none waiting for the store,
    // starting with the very first request after the kill.
    let mut slowest = Duration::ZERO;
    for i in 5..=8 {
        let t = &tokens[&merchant(i)];
        let (status, ctype, body, took) = service
            .timed(&format!("/api/v1/scan/{t}"), "application/json")
            .await;
        assert_eq!(status, 503, "{body}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "unavailable", "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        println!("uncached {} JSON: 503 in {took:?}", merchant(i));
        assert!(took <= known_down(), "JSON 503 took {took:?}");
        slowest = slowest.max(took);

        let (status, ctype, body, took) = service.timed(&format!("/s/{t}"), "text/html").await;
        assert_eq!(status, 503);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(body.contains("暂时无法查询"), "{body}");
        println!("uncached {} page: 503 in {took:?}", merchant(i));
        assert!(took <= known_down(), "page 503 took {took:?}");
        slowest = slowest.max(took);
    }
    println!("slowest 503 while Redis is down: {slowest:?}");

    let (status, body, took) = {
        let (s, _, b, t) = service.timed("/readyz", "application/json").await;
        (s, b, t)
    };
    // Ready all the same: this replica answers its cached merchants
    // (deploy/README.md, "When Redis is down").
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""store":"unreachable""#), "{body}");
    assert!(body.contains(r#""cache":"warm""#), "{body}");
    println!("/readyz while Redis is down: 200 (warm cache) in {took:?}");

    // A regulator's write is refused the same way, not as an internal error.
    let (status, body) = service
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/admin/merchants/{}/codes", merchant(5)),
            &setup.token,
            None,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");

    // Cached merchants still answer with their data.
    for (i, was) in (1..=4).zip(&before) {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["merchant"]["id"], merchant(i));
        assert_eq!(body["grade"], was["grade"]);
        assert_eq!(body["code"]["status"], "valid");
    }
    // Down for a while under load.
    let down = Duration::from_millis(1500).saturating_sub(killed.elapsed());
    tokio::time::sleep(down).await;

    setup.redis.restart();
    let back = Instant::now();
    let uncached = format!("/api/v1/scan/{}", tokens[&merchant(8)]);
    let (mut ready_after, mut scan_after) = (None, None);
    while ready_after.is_none() || scan_after.is_none() {
        assert!(
            back.elapsed() < RECOVERY,
            "not recovered {RECOVERY:?} after Redis came back:\n{}",
            service.log()
        );
        if ready_after.is_none() && service.get("/readyz").await.0 == 200 {
            ready_after = Some(back.elapsed());
        }
        if scan_after.is_none() && service.get(&uncached).await.0 == 200 {
            scan_after = Some(back.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "after Redis restarted: /readyz 200 after {:?}, uncached scan 200 after {:?}",
        ready_after.unwrap(),
        scan_after.unwrap()
    );
    for i in 5..=7 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, ctype, _, _) = service
            .timed(&format!("/s/{}", tokens[&merchant(i)]), "text/html")
            .await;
        assert_eq!(status, 200, "{ctype}");
    }

    let (ok, failed, slowest, problems) = load.finish().await;
    println!("load on cached merchants: {ok} answered 200, {failed} did not, slowest {slowest:?}");
    assert!(ok > 0);
    assert_eq!(failed, 0, "cached merchants failed: {problems:?}");
    // Dozens of 503s and two polls a second of the change stream during an
    // outage of a few seconds: a line or two in the log, not one each.
    let log = service.log();
    let refused = log.matches("store unavailable: answering 503").count();
    assert!((1..=2).contains(&refused), "{refused} lines:\n{log}");
    let polls = log.matches("cannot read store changes").count();
    assert!(polls <= 1, "{polls} lines:\n{log}");
    service.assert_alive_without_panic();
}

#[tokio::test]
pub(super) async fn overrides_codes_and_audit_entries_survive_a_redis_kill_with_aof() {
    let mut setup = Setup::new(3);
    let tokens = setup.tokens();
    let service = setup.serve("before").await;
    let (status, body) = service
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/merchants/{}/override", merchant(1)),
            &setup.token,
            Some(
                json!({"grade": "yellow", "reason": "消费者投诉较多", "expires_at": "2099-12-31"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, issued) = service
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/admin/merchants/{}/codes", merchant(2)),
            &setup.token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let new_token = issued["token"].as_str().unwrap().to_owned();
    let audit_path = "/api/v1/admin/audit?limit=1000";
    let (status, audit_before) = service
        .admin(reqwest::Method::GET, audit_path, &setup.token, None)
        .await;
    assert_eq!(status, 200, "{audit_before}");
    let actions = |audit: &Value| -> Vec<(String, String)> {
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["target"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let wanted = [
        ("override.set".to_owned(), merchant(1)),
        ("code.issue".to_owned(), merchant(2)),
    ];
    for w in &wanted {
        assert!(
            actions(&audit_before).contains(w),
            "{w:?} not in {audit_before}"
        );
    }
    drop(service);

    setup.redis.kill();
    setup.redis.restart();
    assert!(
        setup
            .redis
            .log()
            .contains("DB loaded from append only file"),
        "{}",
        setup.redis.log()
    );

    // A fresh service process: nothing cached, everything from Redis.
    let service = setup.serve("after").await;
    let (status, body) = service
        .get(&format!("/api/v1/merchants/{}", merchant(1)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grade"], "yellow", "{body}");
    assert_eq!(body["override"]["reason"], "消费者投诉较多", "{body}");

    let (status, body) = service.get(&format!("/api/v1/scan/{new_token}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"]["status"], "valid");
    assert_eq!(body["code"]["serial"], issued["serial"]);
    let (status, body) = service
        .get(&format!("/api/v1/scan/{}", tokens[&merchant(2)]))
        .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["code"]["status"], "superseded", "{body}");

    // The token still authenticates and the audit log is whole.
    let (status, audit_after) = service
        .admin(reqwest::Method::GET, audit_path, &setup.token, None)
        .await;
    assert_eq!(status, 200, "{audit_after}");
    assert_eq!(audit_after, audit_before);
    for w in &wanted {
        assert!(
            actions(&audit_after).contains(w),
            "{w:?} not in {audit_after}"
        );
    }
}
