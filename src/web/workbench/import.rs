//! `/admin/import`: a records or merchants file (JSONL, or CSV by the
//! `.csv` extension, as `refresh` reads files) uploaded from the browser
//! (`multipart/form-data`) and imported by the code of the JSON API's
//! imports: the same line rules, each line judged against the staff
//! member's scope, graded at once, audited. The page then shows what was
//! imported and every rejected line with its reason.
//!
//! The upload is bounded as it arrives: at most [`MAX_UPLOAD_BYTES`] in
//! all, a few small fields besides the file, and the file at most the API's
//! import limit.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::{StreamExt, TryStreamExt};
use maud::{html, Markup};

use super::errors::PageError;
use super::forms::check_csrf;
use super::layout::{csrf_field, grade_badge, page, Nav};
use super::staff::Staff;
use crate::refresh::ImportReport;
use crate::web::actions::{self, bad, declared_length, MAX_IMPORT_BYTES};
use crate::web::error::{body_too_large, ApiError};
use crate::web::state::AppState;

/// The whole upload: the file and the form's small fields around it.
const MAX_UPLOAD_BYTES: usize = MAX_IMPORT_BYTES + 16 * 1024;
/// Most parts of the form (csrf, kind, file).
const MAX_PARTS: usize = 8;
/// Largest field that is not the file.
const MAX_FIELD_BYTES: usize = 256;
/// Longest file name kept (it names the file in rejected lines).
const MAX_FILE_NAME_CHARS: usize = 100;

pub async fn page_handler(staff: Staff) -> HttpResponse {
    page(&staff, Nav::Import, "导入", form(&staff, None))
}

fn form(staff: &Staff, kind: Option<&str>) -> Markup {
    let records = kind != Some("merchants");
    html! {
        section.card {
            h1 { "导入记录或商户" }
            p.muted {
                "JSONL（每行一个 JSON 对象）或 CSV（首行为字段名；文件名以 .csv 结尾），字段同 refresh 的输入文件。"
                "每行按您的辖区检查，导入后立即重新评定。文件最大 " (MAX_IMPORT_BYTES / 1024 / 1024) " MiB。"
            }
            form method="post" action="/admin/import" enctype="multipart/form-data" {
                (csrf_field(staff))
                fieldset {
                    legend { "文件内容" }
                    label for="kind-records" {
                        input #kind-records type="radio" name="kind" value="records" checked[records];
                        "记录（检查、抽检、处罚、投诉、名录……）"
                    }
                    label for="kind-merchants" {
                        input #kind-merchants type="radio" name="kind" value="merchants" checked[!records];
                        "商户（新登记的商户立即签发码）"
                    }
                }
                label for="file" { "文件" }
                input #file type="file" name="file" required accept=".jsonl,.json,.ndjson,.csv,.txt";
                p { button type="submit" { "导入" } }
            }
        }
    }
}

/// The form as uploaded.
#[derive(Default)]
struct Upload {
    fields: Vec<(String, String)>,
    file_name: Option<String>,
    file: Option<web::BytesMut>,
}

/// The last component of an uploaded file's name, printable and short.
fn file_name(raw: Option<&str>) -> String {
    let name = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME_CHARS)
        .collect::<String>();
    if name.trim().is_empty() {
        "upload.jsonl".into()
    } else {
        name
    }
}

async fn read_upload(req: &HttpRequest, payload: web::Payload) -> Result<Upload, PageError> {
    let too_large = || PageError::Api(ApiError::PayloadTooLarge(body_too_large(MAX_IMPORT_BYTES)));
    if declared_length(req).is_some_and(|n| n > MAX_UPLOAD_BYTES as u64) {
        return Err(too_large());
    }
    let mut seen = 0usize;
    let bounded = payload.into_inner().map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len();
        if seen > MAX_UPLOAD_BYTES {
            return Err(actix_web::error::PayloadError::Overflow);
        }
        Ok(chunk)
    });
    let mut parts = Multipart::new(req.headers(), bounded);
    let mut upload = Upload::default();
    let mut count = 0;
    let unreadable = |e: actix_multipart::MultipartError| match e {
        actix_multipart::MultipartError::Payload(actix_web::error::PayloadError::Overflow) => {
            too_large()
        }
        e => PageError::Api(bad(format!("upload: {e}"))),
    };
    while let Some(mut field) = parts.try_next().await.map_err(unreadable)? {
        count += 1;
        if count > MAX_PARTS {
            return Err(bad(format!("upload: more than {MAX_PARTS} fields")).into());
        }
        let name = field.name().unwrap_or("").to_owned();
        let is_file = name == "file";
        if is_file {
            upload.file_name = Some(file_name(
                field.content_disposition().and_then(|d| d.get_filename()),
            ));
        }
        let limit = if is_file {
            MAX_IMPORT_BYTES
        } else {
            MAX_FIELD_BYTES
        };
        let mut value = web::BytesMut::new();
        while let Some(chunk) = field.try_next().await.map_err(unreadable)? {
            if value.len() + chunk.len() > limit {
                return Err(if is_file {
                    too_large()
                } else {
                    bad(format!(
                        "upload: field `{}` is too long",
                        crate::model::truncate(&name)
                    ))
                    .into()
                });
            }
            value.extend_from_slice(&chunk);
        }
        if is_file {
            upload.file = Some(value);
        } else {
            let text = String::from_utf8_lossy(&value).into_owned();
            upload.fields.push((name, text));
        }
    }
    Ok(upload)
}

pub async fn submit(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let upload = read_upload(&req, payload).await?;
    check_csrf(
        &staff,
        upload.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let kind = upload
        .fields
        .iter()
        .find(|(k, _)| k == "kind")
        .map(|(_, v)| v.as_str())
        .unwrap_or("records");
    let (Some(file), Some(name)) = (upload.file.as_ref(), upload.file_name.as_deref()) else {
        return Err(bad("upload: choose a file (field `file`)".into()).into());
    };
    let result = match kind {
        "records" => {
            let (report, ids) = actions::import_records(&state, &staff, file, name).await?;
            result(&report, &ids, None)
        }
        "merchants" => {
            let done = actions::register_merchants(&state, &staff, file, name).await?;
            result(&done.report, &done.ids, Some(&done.codes))
        }
        other => {
            return Err(bad(format!(
                "upload: field `kind`: expected records or merchants, got `{}`",
                crate::model::truncate(other)
            ))
            .into())
        }
    };
    let body = html! {
        section.card aria-live="polite" {
            h1 { "导入结果：" (name) }
            (result)
        }
        (form(&staff, Some(kind)))
    };
    Ok(page(&staff, Nav::Import, "导入结果", body))
}

fn result(
    report: &ImportReport,
    ids: &[crate::model::MerchantId],
    codes: Option<&[crate::model::IssuedCode]>,
) -> Markup {
    let s = &report.summary;
    html! {
        @if s.imported > 0 || (s.rejected == 0 && s.read > 0) {
            p.done role="status" { "导入完成。" }
        } @else {
            p.notice role="alert" { "没有导入任何内容。" }
        }
        dl.facts {
            dt { "读取行数" } dd { (s.read) }
            dt { "导入" } dd { (s.imported) }
            dt { "重复（已存在）" } dd { (s.duplicate) }
            dt { "拒绝" } dd { (s.rejected) }
            dt { "重新评定" } dd { (s.regraded) }
        }
        @if !ids.is_empty() {
            h2 { "涉及的商户（" (ids.len()) "）" }
            p {
                @for (i, id) in ids.iter().take(100).enumerate() {
                    @if i > 0 { "、" }
                    a href={"/admin/merchants/" (id)} { (id) }
                }
            }
        }
        @if let Some(codes) = codes.filter(|c| !c.is_empty()) {
            h2 { "在用的码" }
            ul.rows {
                @for c in codes.iter().take(100) {
                    li {
                        a href={"/admin/merchants/" (c.merchant)} { (c.merchant) }
                        " 第 " (c.serial) " 号 " (grade_badge(c.printed_grade)) " · "
                        a href={"/merchants/" (c.merchant) "/print"} { "打印" }
                    }
                }
            }
        }
        @if !report.rejects.is_empty() {
            h2 { "被拒绝的行（" (s.rejected) "）" }
            ul.rows {
                @for r in &report.rejects {
                    li { strong { "第 " (r.line) " 行" } "：" (r.reason) }
                }
            }
            @if (report.rejects.len() as u64) < s.rejected {
                p.muted { "只列出前 " (report.rejects.len()) " 行。" }
            }
        }
    }
}
