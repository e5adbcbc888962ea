//! A Redis hung by SIGSTOP: the scan's budget, the admin budget, recovery on SIGCONT.

use super::*;

/// Times sorted, and the value at `q` (0..=1) of them.
pub(super) fn quantile(times: &mut [Duration], q: f64) -> Duration {
    times.sort();
    times[((times.len() - 1) as f64 * q).round() as usize]
}

/// How many audit entries of `action` on `target` the service lists.
pub(super) async fn audit_count(
    service: &Service,
    token: &str,
    action: &str,
    target: &str,
) -> usize {
    let (status, audit) = service
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/admin/audit?target={target}&limit=1000"),
            token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .count()
}

#[tokio::test]
pub(super) async fn redis_hung_by_sigstop_uncached_scans_get_a_503_at_the_budget_then_at_once_cached_ones_answer_and_sigcont_recovers(
) {
    let setup = Setup::new(12);
    let tokens = setup.tokens();
    let mut service = setup.serve("warm").await;
    let mut cold = setup.serve("cold").await;
    // Merchants 1-4 are scanned on `warm` (cached); 5-12 never are before
    // Redis hangs; `cold` scans nothing.
    let mut before = Vec::new();
    for i in 1..=4 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        before.push(body);
    }
    let issued_before = audit_count(&service, &setup.token, "code.issue", &merchant(6)).await;

    setup.redis.pause();
    let paused = Instant::now();

    // The first uncached scan: the store read gives up within the budget.
    let t = &tokens[&merchant(5)];
    let (status, ctype, body, took) = service
        .timed(&format!("/api/v1/scan/{t}"), "application/json")
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    println!("first uncached scan with Redis hung: 503 in {took:?}");
    assert!(
        took <= fail_fast(),
        "first 503 took {took:?} (bound {:?})",
        fail_fast()
    );

    // Redis is known down: none of the next 42 waits for it.
    let mut times = Vec::new();
    for _ in 0..3 {
        for i in 6..=12 {
            let t = &tokens[&merchant(i)];
            let (status, ctype, body, took) = service
                .timed(&format!("/api/v1/scan/{t}"), "application/json")
                .await;
            assert_eq!(status, 503, "{body}");
            assert!(ctype.starts_with("application/json"), "{ctype}");
            times.push(took);
            let (status, ctype, body, took) = service.timed(&format!("/s/{t}"), "text/html").await;
            assert_eq!(status, 503);
            assert!(ctype.starts_with("text/html"), "{ctype}");
            assert!(body.contains("暂时无法查询"), "{body}");
            times.push(took);
        }
    }
    let (median, p90, slowest) = (
        quantile(&mut times, 0.5),
        quantile(&mut times, 0.9),
        quantile(&mut times, 1.0),
    );
    println!("uncached scans once Redis is known down: median {median:?}, p90 {p90:?}, slowest {slowest:?}");
    assert!(
        slowest <= known_down(),
        "slowest {slowest:?} (median {median:?}, p90 {p90:?})"
    );

    // Cached merchants answer with their data.
    for (i, was) in (1..=4).zip(&before) {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["merchant"]["id"], merchant(i));
        assert_eq!(body["grade"], was["grade"]);
    }

    // A regulator's write and read: 503 JSON at once, nothing sent.
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/api/v1/admin/merchants/{}/codes", merchant(6)),
        ),
        (reqwest::Method::GET, "/api/v1/admin/audit".to_owned()),
    ] {
        let started = Instant::now();
        let (status, body) = service
            .admin(method.clone(), &path, &setup.token, None)
            .await;
        let took = started.elapsed();
        println!("{method} {path} with Redis hung: {status} in {took:?}");
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "unavailable", "{body}");
        assert!(took <= known_down(), "{method} {path} took {took:?}");
    }

    // Readiness: the warm replica stays in, the cold one goes out.
    let (status, body) = service.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"], "unreachable", "{body}");
    assert_eq!(body["cache"], "warm", "{body}");
    let (status, body) = cold.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"], "unreachable", "{body}");
    assert_eq!(body["cache"], "cold", "{body}");

    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(paused.elapsed())).await;
    setup.redis.resume();
    let back = Instant::now();
    let uncached = format!("/api/v1/scan/{}", tokens[&merchant(12)]);
    loop {
        if service.get(&uncached).await.0 == 200 {
            break;
        }
        assert!(
            back.elapsed() < RECOVERY,
            "not recovered {RECOVERY:?} after SIGCONT:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovered = back.elapsed();
    println!("after SIGCONT: uncached scans answer 200 after {recovered:?}");
    assert!(
        recovered <= RECOVERY_AFTER_CONT,
        "recovered after {recovered:?}"
    );
    for i in 5..=12 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let deadline = Instant::now() + RECOVERY;
    while cold.get("/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "cold replica not ready again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The refused write was never sent: it is not applied when Redis
    // continues; written now, it is there once.
    assert_eq!(
        audit_count(&service, &setup.token, "code.issue", &merchant(6)).await,
        issued_before
    );
    let (status, body) = service
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/admin/merchants/{}/codes", merchant(6)),
            &setup.token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        audit_count(&service, &setup.token, "code.issue", &merchant(6)).await,
        issued_before + 1
    );
    service.assert_alive_without_panic();
    cold.assert_alive_without_panic();
}

#[tokio::test]
pub(super) async fn redis_hung_by_sigstop_a_regulators_request_answers_503_after_the_admin_budget_not_later(
) {
    let setup = Setup::new(2);
    let mut service = setup.serve("service").await;
    let path = format!("/api/v1/admin/merchants/{}/override", merchant(1));
    let body = json!({"grade": "yellow", "reason": "现场检查发现问题"});

    setup.redis.pause();
    // Nothing is known yet: the first store reply is waited for, up to the
    // admin budget (the change poll may find Redis hung first: then sooner).
    let started = Instant::now();
    let (status, answer) = service
        .admin(
            reqwest::Method::PUT,
            &path,
            &setup.token,
            Some(body.clone()),
        )
        .await;
    let took = started.elapsed();
    println!("first regulator request with Redis hung: {status} in {took:?}");
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "unavailable", "{answer}");
    assert!(
        took <= ADMIN_BUDGET + Duration::from_millis(500),
        "took {took:?} (budget {ADMIN_BUDGET:?})"
    );
    // Then Redis is known down: at once.
    let started = Instant::now();
    let (status, answer) = service
        .admin(
            reqwest::Method::PUT,
            &path,
            &setup.token,
            Some(body.clone()),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert!(took <= known_down(), "second request took {took:?}");

    setup.redis.resume();
    let back = Instant::now();
    loop {
        let (status, answer) = service
            .admin(
                reqwest::Method::PUT,
                &path,
                &setup.token,
                Some(body.clone()),
            )
            .await;
        if status == 200 {
            assert_eq!(answer["grade"], "yellow", "{answer}");
            break;
        }
        assert_eq!(status, 503, "{answer}");
        assert!(back.elapsed() < RECOVERY_AFTER_CONT, "not recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "after SIGCONT: the override is written after {:?}",
        back.elapsed()
    );
    service.assert_alive_without_panic();
}
