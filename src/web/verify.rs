//! `GET /verify`: the offline verifier (CONTRACT §8). Once opened, it
//! verifies a code typed, pasted or opened from a scan with no network: its
//! service worker (`verify/sw.js`, scope `/`) keeps the page, its script
//! and style, `/api/v1/keys` and `/api/v1/status-list`, and answers a scan
//! address (`/S/…`) with the page when the network is gone. The checks
//! (`verify/app.js`) follow `codes/SPEC.md`; a test runs them over every
//! vector of `codes/testdata` in Chromium.
//!
//! The only pages with script: the policy of these answers allows scripts,
//! style sheets and workers from this origin (files, no inline script) and
//! fetches to it; every other answer keeps the policy without script.

use actix_web::http::header;
use actix_web::HttpResponse;
use maud::{html, DOCTYPE};

use super::security_headers::verifier_policy;

const APP_JS: &str = include_str!("verify/app.js");
const SW_JS: &str = include_str!("verify/sw.js");
const STYLE_CSS: &str = include_str!("verify/style.css");

fn answer(content_type: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_SECURITY_POLICY, verifier_policy()))
        // Online, always the current version; offline, the worker's copy.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type(content_type)
        .body(body)
}

pub async fn page() -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="robots" content="noindex";
                link rel="icon" href="data:,";
                title { "离线验码 - 一扫知" }
                link rel="stylesheet" href="/verify/style.css";
                script src="/verify/app.js" defer {}
            }
            body {
                main {
                    header {
                        h1 { "离线验码" }
                        p { "打开过一次后，没有网络也能验证商户码的真伪、是否注销或过期。" }
                    }
                    section {
                        form #form {
                            label for="code" { "粘贴或输入码的链接（或扫码所得的文字）" }
                            textarea #code name="code" autocomplete="off" spellcheck="false" {}
                            button type="submit" { "验证" }
                        }
                        noscript { p { "本页需要启用 JavaScript。" } }
                    }
                    section #result .result hidden {}
                    section {
                        p #synced .muted { "正在读取密钥和注销名单……" }
                        p .muted { "验证只用本机保存的公钥和签名的注销名单，不上传任何信息。" }
                    }
                }
            }
        }
    };
    answer("text/html; charset=utf-8", markup.into_string())
}

pub async fn app_js() -> HttpResponse {
    answer("text/javascript; charset=utf-8", APP_JS.to_owned())
}

pub async fn style_css() -> HttpResponse {
    answer("text/css; charset=utf-8", STYLE_CSS.to_owned())
}

/// The service worker, allowed to control the whole origin so that a scan
/// address opened offline reaches the verifier.
pub async fn service_worker() -> HttpResponse {
    let mut res = answer("text/javascript; charset=utf-8", SW_JS.to_owned());
    res.headers_mut().insert(
        header::HeaderName::from_static("service-worker-allowed"),
        header::HeaderValue::from_static("/"),
    );
    res
}
