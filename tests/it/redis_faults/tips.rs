//! Consumer tips stay coherent across processes: a tip published or
//! deleted through one service process shows, or is gone, on another's
//! scans within a second (the bound of issue 19).

use super::*;

impl Service {
    /// The tips a scan of `token` shows, as JSON.
    async fn tips(&self, token: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/scan/{token}")).await;
        assert_eq!(status, 200, "{body}");
        body["tips"].clone()
    }

    /// Polls until a scan of `token` shows `tips`; how long it took from
    /// `since`, or panics after `limit`.
    async fn wait_for_tips(
        &self,
        token: &str,
        tips: &Value,
        since: Instant,
        limit: Duration,
    ) -> Duration {
        loop {
            if self.tips(token).await == *tips {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "{} still does not show {tips} after {:?}",
                self.base,
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
pub(super) async fn a_tip_published_on_one_process_shows_on_the_others_scans_within_a_second() {
    let setup = Setup::new(2);
    let tokens = setup.tokens();
    let a = setup.serve("a").await;
    let b = setup.serve("b").await;
    let m1 = &tokens[&merchant(1)];
    // Both processes have the answer memoised, without tips.
    for service in [&a, &b] {
        for _ in 0..2 {
            assert_eq!(service.tips(m1).await, json!([]));
        }
    }
    let until = yisaozhi::clock::today() + jiff::Span::new().days(3);
    let text = "节日期间请在正规商超购买食品，索要发票。";
    let (status, body) = a
        .admin(
            reqwest::Method::POST,
            "/api/v1/admin/tips",
            &setup.token,
            Some(
                json!({"text": text, "regions": ["511500"], "categories": ["食品"],
                        "from": yisaozhi::clock::today(), "until": until}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let written = Instant::now();
    let id = body["id"].as_str().unwrap().to_owned();
    let shown = json!([{"text": text, "until": until}]);
    assert_eq!(a.tips(m1).await, shown, "the writing process itself");
    let on_b = b.wait_for_tips(m1, &shown, written, COHERENCE * 5).await;
    println!("tip published through A: B shows it after {on_b:?}");
    assert!(on_b <= COHERENCE, "B took {on_b:?} (bound {COHERENCE:?})");
    let (status, page) = {
        let (s, _, body, _) = b.timed(&format!("/s/{m1}"), "text/html").await;
        (s, body)
    };
    assert_eq!(status, 200);
    assert!(page.contains(text), "the page on B");

    // Deleted through B: gone from A within the bound.
    let (status, body) = b
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/tips/{id}"),
            &setup.token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deleted = Instant::now();
    let on_a = a
        .wait_for_tips(m1, &json!([]), deleted, COHERENCE * 5)
        .await;
    println!("tip deleted through B: A drops it after {on_a:?}");
    assert!(on_a <= COHERENCE, "A took {on_a:?} (bound {COHERENCE:?})");
}
