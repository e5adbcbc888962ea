//! Consumer scans: `/s/{token}`, `/S/{token}` (page, or JSON by `Accept`) and
//! `/api/v1/scan/{token}` (JSON).

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use super::answers::{write_json, write_public_members};
use super::error::ApiError;
use super::extract::ScanToken;
use super::pages;
use super::security_headers::security_headers;
use super::state::AppState;
use crate::clock;
use crate::scan::packed::{self, Gzip, Piece, Shared};
use crate::scan::{Code, Memo, MerchantView, Scan, Scanner, Status, ANSWER_SLOTS};
use crate::store::StoreError;

fn http_status(status: Status) -> StatusCode {
    match status {
        Status::Valid => StatusCode::OK,
        Status::Forged | Status::Malformed => StatusCode::BAD_REQUEST,
        Status::Revoked | Status::Superseded | Status::Expired => StatusCode::GONE,
    }
}

/// A rendered answer, and where in it the members of the view's stored
/// projection were spliced in, if they were.
struct Rendered {
    body: Vec<u8>,
    members: Option<std::ops::Range<usize>>,
}

/// The scan answer as JSON (CONTRACT §2).
fn render_json(scan: &Scan) -> Result<Rendered, StoreError> {
    let mut out = Vec::with_capacity(2048);
    let view = scan.view.as_deref();
    let code = scan.claims.as_deref().map(|c| Code::of(c));
    write_json_head(&mut out, scan.status, code, view, scan.today);
    let mut members = None;
    if let Some(view) = view {
        members = write_public_members(&mut out, view, &scan.shown_tips(), scan.today)?;
    } else {
        // Always present: empty when the code shows no merchant.
        out.extend_from_slice(b",\"tips\":[]");
    }
    out.push(b'}');
    Ok(Rendered { body: out, members })
}

/// The start of a JSON scan answer, up to the merchant's members: the
/// `code` member; `error` and `message` for a code that is not valid; and
/// `outdated` (then a comma) if the scan shows a merchant (`view`). Written
/// for every answer: a memo keeps only what follows it.
fn write_json_head(
    out: &mut Vec<u8>,
    status: Status,
    claims: Option<Code<'_>>,
    view: Option<&MerchantView>,
    today: jiff::civil::Date,
) {
    let code = CodeJson {
        status: status.name(),
        claims: claims.filter(|_| !matches!(status, Status::Forged | Status::Malformed)),
    };
    out.extend_from_slice(b"{\"code\":");
    write_json(out, &code);
    if status != Status::Valid {
        out.extend_from_slice(b",\"error\":");
        write_json(out, status.name());
        out.extend_from_slice(b",\"message\":");
        write_json(out, pages::status_message(status));
    }
    if let Some(view) = view {
        let live = view.live_grade(today);
        let outdated = claims.is_some_and(|c| c.fields.grade != live);
        out.extend_from_slice(if outdated {
            b",\"outdated\":true,"
        } else {
            b",\"outdated\":false,"
        });
    }
}

/// The `code` member: the claims of a code whose signature holds.
struct CodeJson<'a> {
    status: &'static str,
    claims: Option<Code<'a>>,
}

impl serde::Serialize for CodeJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(c) = self.claims else {
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry("status", self.status)?;
            return m.end();
        };
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("status", self.status)?;
        let f = c.fields;
        m.serialize_entry("merchant_id", c.merchant)?;
        m.serialize_entry("serial", &f.serial)?;
        m.serialize_entry("kid", &f.kid.0)?;
        m.serialize_entry("issued_at", &clock::from_day(f.issued))?;
        m.serialize_entry("expires_at", &clock::from_day(f.expires))?;
        m.serialize_entry("printed_grade", &f.grade)?;
        m.end()
    }
}

fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// The start of a scan answer with `status`: gzip-encoded (by us, not by
/// the compression middleware, which leaves it alone) if `gzip`.
///
/// Every header value is static or built once: inserting it copies nothing,
/// and the pooled response head has room for all of them.
fn answer(status: StatusCode, gzip: bool) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    // The grade may change at any refresh or override: revalidate.
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    // The scan page is the one a look-alike site would frame: the security
    // headers are on every scan answer, whichever way it was answered.
    for (name, value) in security_headers() {
        res.insert_header((name.clone(), value.clone()));
    }
    if gzip {
        res.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")))
            .insert_header((header::VARY, HeaderValue::from_static("accept-encoding")));
    }
    res
}

fn json_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

fn html_type() -> HeaderValue {
    HeaderValue::from_static("text/html; charset=utf-8")
}

/// The form of a scan answer: a scan route's own (a page route answers
/// JSON too, by `Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Json,
    Page,
}

/// The slot of a view's memo that holds the answer in `form` (see
/// `MerchantView::with_memo`).
fn memo_slot(form: Form) -> usize {
    usize::from(form == Form::Page)
}

const _: () = assert!(ANSWER_SLOTS >= 2, "a slot for each form");

/// The answer in `form` to a scan of a token's text: its status and body,
/// gzip-compressed if `gzipped`. `render` builds the plain body from the
/// scan. An answer that shows a merchant is rendered once per view, checked
/// text, day, tips generation and form, and memoised in the view compressed
/// ([`memo_of`]): a warm scan finds it there by the text alone, and sends it
/// as a gzip member assembled from its pieces, or inflated.
async fn scan_answer(
    scanner: &Scanner,
    text: &str,
    form: Form,
    gzipped: bool,
    render: impl FnOnce(&Scan) -> Result<Rendered, StoreError>,
) -> Result<(Status, bytes::Bytes), std::sync::Arc<StoreError>> {
    let started = tokio::time::Instant::now();
    let today = clock::today();
    let slot = memo_slot(form);
    let hit = scanner
        .memoised_answer(text, today, slot, |status, code, memo, view| {
            let head = json_head_of(form, memo, status, Some(code), view, today);
            Some((status, assemble(form, &head, memo, view, gzipped)?))
        })
        .await
        .flatten();
    if let Some((status, body)) = hit {
        return Ok((status, body.into()));
    }
    let scan = scanner.scan(text, today, started).await?;
    let status = scan.status;
    let rendered = render(&scan)?;
    // Memoised only in a cached view, which a scan holds only for a shown
    // merchant's checked text.
    let memo = scan
        .view
        .as_ref()
        .filter(|v| v.memoises())
        .and_then(|view| Some((view, memo_of(form, &rendered, view)?)));
    let Some((view, memo)) = memo else {
        return Ok((status, encode(rendered.body, gzipped)));
    };
    let body = if gzipped {
        // What the memo does not hold of the body is the head it was
        // rendered with (empty unless written per answer).
        let head = rendered
            .body
            .len()
            .checked_sub(memo.len as usize)
            .map(|n| &rendered.body[..n]);
        head.and_then(|head| assemble(form, head, &memo, view, true))
            .unwrap_or_else(|| gzip(&rendered.body))
    } else {
        rendered.body
    };
    // The key of the tips this scan shows, which may be newer than those
    // the memo was looked up with.
    view.memoise(text, scan.memo_key(), slot, status, memo);
    Ok((status, body.into()))
}

/// The start every scan page shares, up to its title, and that text
/// compressed: a page's memo is compressed after it, and refers back to it.
/// And the fixed wording after the title that scan pages hold ([`Shared`]):
/// a page's memo keeps only its own text between those.
struct PageHead {
    text: Vec<u8>,
    piece: Piece,
    shared: Shared,
}

fn page_head() -> &'static PageHead {
    static HEAD: std::sync::OnceLock<PageHead> = std::sync::OnceLock::new();
    HEAD.get_or_init(|| {
        let page = pages::unavailable().into_string();
        let end = page.find("<title>").map_or(0, |at| at + "<title>".len());
        let text = page.as_bytes()[..end].to_vec();
        let samples: Vec<Vec<u8>> = sample_pages()
            .into_iter()
            .filter_map(|p| Some(p.strip_prefix(text.as_slice())?.to_vec()))
            .collect();
        PageHead {
            piece: packed::deflate(&[], &text),
            shared: Shared::learn(&samples, &PAGE_WORDING),
            text,
        }
    })
}

/// How a page's shared wording is cut: tags and the text between them, a
/// unit per section.
const PAGE_WORDING: packed::Cut = packed::Cut {
    min: packed::SHARED_MIN,
    starts: b"<",
    ends: b">",
    before: &[b"<section", b"<div"],
    apart: &[1, 3],
};

/// The wording every scan page holds after its head, as cached views share
/// it (for measuring what an answer kept beside it costs).
pub fn page_wording() -> &'static Shared {
    &page_head().shared
}

/// Valid scans' pages of the [`crate::grading::wording_samples`].
fn sample_pages() -> Vec<Vec<u8>> {
    let tips = std::sync::Arc::new(crate::tips::TipSet::default());
    crate::grading::wording_samples()
        .into_iter()
        .map(|p| valid_scan_page(p.clone(), p.as_of, &tips))
        .collect()
}

/// The page of a valid scan of a code of `p`'s merchant on `today`.
fn valid_scan_page(
    p: crate::model::Projection,
    today: jiff::civil::Date,
    tips: &std::sync::Arc<crate::tips::TipSet>,
) -> Vec<u8> {
    let scan = Scan {
        status: Status::Valid,
        claims: None,
        view: Some(std::sync::Arc::new(MerchantView::new(p, Box::default()))),
        today,
        tips: tips.clone(),
    };
    let projection = scan.view.as_ref().and_then(|v| v.projection().ok());
    pages::scan_page(&scan, projection.as_deref())
        .into_string()
        .into_bytes()
}

/// No shared text: for JSON answers.
static NONE_SHARED: Shared = Shared::none();

/// What a view keeps of an answer rendered in `form` (`None`: nothing, the
/// answer is not of the shape memos have). A JSON answer that splices the
/// view's stored projection keeps the text after it (the projection is in
/// the view, compressed; the head before it is written again for each
/// answer, by [`write_json_head`]), and the CRC-32 and length of the text
/// from the projection on; another JSON answer keeps its whole text
/// compressed; a page keeps its own text after the shared [`page_head`],
/// compressed after the text before it.
fn memo_of(form: Form, rendered: &Rendered, view: &MerchantView) -> Option<Memo> {
    let body = &rendered.body;
    let whole = |piece| {
        Some(Memo {
            piece: Some(piece),
            after: Box::default(),
            crc: packed::crc32(&[body]),
            len: u32::try_from(body.len()).ok()?,
        })
    };
    match form {
        Form::Json => match &rendered.members {
            Some(members) if view.public_members_piece().is_some() => {
                let rest = &body[members.start..];
                Some(Memo {
                    piece: None,
                    after: body[members.end..].into(),
                    crc: packed::crc32(&[rest]),
                    len: u32::try_from(rest.len()).ok()?,
                })
            }
            _ => whole(packed::deflate_runs(&[], body, &NONE_SHARED)),
        },
        Form::Page => {
            let head = page_head();
            let rest = body.strip_prefix(head.text.as_slice())?;
            whole(packed::deflate_runs(&head.text, rest, &head.shared))
        }
    }
}

/// The head a JSON answer from `memo` starts with, written now: for a memo
/// that splices the view's projection. Empty for any other memo.
fn json_head_of(
    form: Form,
    memo: &Memo,
    status: Status,
    claims: Option<Code<'_>>,
    view: &MerchantView,
    today: jiff::civil::Date,
) -> Vec<u8> {
    let mut head = Vec::new();
    if form == Form::Json && memo.piece.is_none() {
        head.reserve(256);
        write_json_head(&mut head, status, claims, Some(view), today);
    }
    head
}

/// The answer `memo` holds after `head` (see [`json_head_of`]),
/// gzip-compressed if `gzipped` (`None` if the memo does not inflate, which
/// a memo made by [`memo_of`] always does).
fn assemble(
    form: Form,
    head: &[u8],
    memo: &Memo,
    view: &MerchantView,
    gzipped: bool,
) -> Option<Vec<u8>> {
    let len = head.len() + memo.len as usize;
    let page = (form == Form::Page).then(page_head);
    // The runs after the head, and the wording they were made beside.
    let (runs, shared) = match (&memo.piece, page) {
        (Some(runs), Some(page)) => (runs, &page.shared),
        (Some(runs), None) => (runs, &NONE_SHARED),
        (None, None) => (view.public_members_piece()?, crate::scan::members_shared()),
        (None, Some(_)) => return None,
    };
    if gzipped {
        let mut gz = Gzip::with_capacity(len / 2);
        if let Some(page) = page {
            gz = gz.deflated(page.piece.deflated());
        }
        gz = gz.stored(head);
        for blocks in runs.blocks(shared) {
            gz = gz.deflated(blocks);
        }
        let crc = packed::crc32_after(head, memo.crc, memo.len as usize);
        return Some(gz.stored(&memo.after).finish(crc, len));
    }
    let mut out = Vec::with_capacity(len);
    let window = page.map_or(0, |page| {
        out.extend_from_slice(&page.text);
        page.text.len()
    });
    out.extend_from_slice(head);
    runs.inflate_into(shared, window, &mut out).ok()?;
    out.extend_from_slice(&memo.after);
    (out.len() == len).then_some(out)
}

/// `body` gzip-compressed (at the default level).
fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 2 + 64),
        flate2::Compression::default(),
    );
    z.write_all(body).expect("writing to memory");
    z.finish().expect("writing to memory")
}

/// A rendered body as sent: gzip-compressed if `gzipped`.
fn encode(body: Vec<u8>, gzipped: bool) -> bytes::Bytes {
    if gzipped {
        gzip(&body).into()
    } else {
        body.into()
    }
}

/// The scan answered as JSON.
async fn json_answer(
    state: &AppState,
    token: &ScanToken<'_>,
    gzip: bool,
) -> Result<HttpResponse, ApiError> {
    let (status, body) =
        scan_answer(&state.scanner, token.text(), Form::Json, gzip, render_json).await?;
    crate::metrics::scan(status.name());
    Ok(answer(http_status(status), gzip)
        .content_type(json_type())
        .body(body))
}

/// The scan answered as a page, or as JSON if the client asks for it.
async fn page_answer(
    state: &AppState,
    req: &HttpRequest,
    token: &ScanToken<'_>,
    gzip: bool,
) -> Result<HttpResponse, ApiError> {
    if wants_json(req) {
        return json_answer(state, token, gzip).await;
    }
    let page = scan_answer(&state.scanner, token.text(), Form::Page, gzip, render_page).await;
    let (status, html) = match page {
        Ok(page) => page,
        Err(e) => {
            let err = ApiError::from(e);
            let html = pages::unavailable().into_string().into_bytes();
            return Ok(answer(actix_web::ResponseError::status_code(&err), gzip)
                .content_type(html_type())
                .body(encode(html, gzip)));
        }
    };
    crate::metrics::scan(status.name());
    Ok(answer(http_status(status), gzip)
        .content_type(html_type())
        .body(html))
}

pub async fn json(
    state: web::Data<AppState>,
    token: ScanToken<'static>,
) -> Result<HttpResponse, ApiError> {
    // Compressed, if asked, by the compression middleware.
    json_answer(&state, &token, false).await
}

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: ScanToken<'static>,
) -> Result<HttpResponse, ApiError> {
    page_answer(&state, &req, &token, false).await
}

/// The scan routes' patterns, which `routes` registers and
/// [`serve_scans_first`] also answers before the router.
pub(super) const SCAN_JSON: &str = "/api/v1/scan/{token}";
pub(super) const SCAN_PAGE: &str = "/s/{token}";
pub(super) const SCAN_PAGE_UPPER: &str = "/S/{token}";

/// The scan routes: (pattern, the form it answers in, the path's prefix). The
/// patterns are the ones `web::api!` registers.
const SCAN_ROUTES: [(&str, Form, &str); 3] = [
    (SCAN_JSON, Form::Json, "/api/v1/scan/"),
    (SCAN_PAGE, Form::Page, "/s/"),
    (SCAN_PAGE_UPPER, Form::Page, "/S/"),
];

/// The scan route a path is for, and its token, if the router would match
/// it and pass the token on unchanged: one non-empty segment without `%`
/// escapes (a path with escapes goes through the router, which decodes it).
fn scan_route(path: &str) -> Option<(&'static str, Form, &str)> {
    let (pattern, form, token) = scan_segment(path)?;
    (!token.as_bytes().contains(&b'%')).then_some((pattern, form, token))
}

/// The scan route whose pattern matches `path`, and the matched segment.
fn scan_segment(path: &str) -> Option<(&'static str, Form, &str)> {
    SCAN_ROUTES.iter().find_map(|&(pattern, form, prefix)| {
        let token = path.strip_prefix(prefix)?;
        // `contains` on bytes is a memchr.
        (!token.is_empty() && !token.as_bytes().contains(&b'/')).then_some((pattern, form, token))
    })
}

/// The route pattern of a scan path, for metrics: known without asking the
/// router, which would match the long token against its patterns again.
pub fn scan_pattern(path: &str) -> Option<&'static str> {
    scan_segment(path).map(|(pattern, ..)| pattern)
}

/// The encoding the compression middleware (with gzip and deflate built
/// in) would choose for this request: `Some(false)` for none, `Some(true)`
/// for gzip, `None` for anything else (deflate, or nothing acceptable).
fn negotiate(req: &ServiceRequest) -> Option<bool> {
    use actix_web::http::header::{AcceptEncoding, Encoding};
    use actix_web::HttpMessage;
    let Some(accepted) = req.get_header::<AcceptEncoding>() else {
        return Some(false);
    };
    let supported = [Encoding::identity(), Encoding::gzip(), Encoding::deflate()];
    match accepted.negotiate(supported.iter()) {
        Some(e) if e == Encoding::identity() => Some(false),
        Some(e) if e == Encoding::gzip() => Some(true),
        _ => None,
    }
}

/// Middleware: answers `GET` scans before the router. Scans are nearly all
/// the traffic, and the router would match a 200-digit token against a
/// pattern, decode it into a new string and look up the state for each one.
/// The answer is the one the scan routes give (the same functions build
/// it). The body is gzip-compressed when the compression middleware would
/// have chosen gzip, and then compressed once per view and day instead of
/// once per request; a client that wants another encoding goes through the
/// router and that middleware.
pub async fn serve_scans_first<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<BoxBody, B>>, actix_web::Error> {
    // The answer and where the token starts in the path: the path is
    // matched once, and read again once the request is taken apart.
    let route = (req.method() == Method::GET)
        .then(|| scan_route(req.path()))
        .flatten()
        .map(|(_, form, token)| (form, req.path().len() - token.len()));
    let fast = route.and_then(|route| Some((route, negotiate(&req)?)));
    let (state, (form, at), gzip) = match (req.app_data::<web::Data<AppState>>(), fast) {
        (Some(state), Some((route, gzip))) => (state.clone(), route, gzip),
        _ => return Ok(next.call(req).await?.map_into_right_body()),
    };
    let (req, _payload) = req.into_parts();
    let token = ScanToken::from_segment(&req.path()[at..]);
    let res = match form {
        Form::Json => json_answer(&state, &token, gzip).await,
        Form::Page => page_answer(&state, &req, &token, gzip).await,
    };
    let res = res.unwrap_or_else(|e| {
        let mut res = actix_web::ResponseError::error_response(&e);
        for (name, value) in security_headers() {
            res.headers_mut().insert(name.clone(), value.clone());
        }
        res
    });
    Ok(ServiceResponse::new(req, res).map_into_left_body())
}

/// The scan page.
fn render_page(scan: &Scan) -> Result<Rendered, StoreError> {
    let projection = scan.view.as_ref().map(|v| v.projection()).transpose()?;
    Ok(Rendered {
        body: pages::scan_page(scan, projection.as_deref())
            .into_string()
            .into_bytes(),
        members: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of the demo's merchants on a day the samples were not taken.
    fn pages_on(day: jiff::civil::Date) -> Vec<(crate::model::Projection, Vec<u8>)> {
        let tips = std::sync::Arc::new(crate::tips::TipSet::default());
        crate::grading::demo_projections(day, None)
            .into_iter()
            .map(|p| {
                let page = valid_scan_page(p.clone(), day, &tips);
                (p, page)
            })
            .collect()
    }

    #[test]
    fn pages_keep_their_own_text_and_share_the_wording_every_page_has() {
        let head = page_head();
        assert!(!head.shared.is_empty());
        let (mut runs, mut whole) = (0, 0);
        for (p, page) in pages_on(jiff::civil::date(2026, 9, 10)) {
            let rest = page.strip_prefix(head.text.as_slice()).expect("the head");
            // What every page shares names no merchant.
            let name = p.merchant.name.as_bytes();
            let shared = packed::deflate_runs(&head.text, rest, &head.shared);
            let mut out = head.text.clone();
            shared
                .inflate_into(&head.shared, head.text.len(), &mut out)
                .unwrap();
            assert!(out == page, "{}", p.merchant.id);
            assert!(memchr::memmem::find(rest, name).is_some());
            for text in head.shared.texts() {
                assert!(
                    memchr::memmem::find(text, name).is_none(),
                    "{} shared",
                    p.merchant.name
                );
            }
            let alone = packed::deflate(&head.text, rest).heap_bytes();
            assert!(shared.heap_bytes() < alone, "{}", p.merchant.id);
            runs += shared.heap_bytes();
            whole += alone;
        }
        // Together they keep less than three quarters of what they would
        // whole (these pages have more records than most).
        assert!(runs * 4 < whole * 3, "{runs} bytes as runs, {whole} whole");
    }
}
