//! HTML pages: Chinese, mobile first, no external assets, no JavaScript.
//! Markup is built with maud, which escapes every interpolated value.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use crate::model::{Grade, Projection};
use crate::scan::{Scan, Status};

const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif;color:#1b1b1b;background:#f4f5f7}\
main{max-width:34rem;margin:0 auto;padding:0 0 2rem}\
.band{color:#fff;padding:1rem 1.25rem}.band h2{margin:0;font-size:1.9rem}.band p{margin:.25rem 0 0}\
.green{background:#1e7e3e}.yellow{background:#f2b705;color:#1b1b1b}.red{background:#c62119}.gray{background:#5a5f66}\
section{background:#fff;margin:.75rem;padding:.9rem 1rem;border-radius:.5rem}\
h1{font-size:1.35rem;margin:.1rem 0}h3{margin:.2rem 0 .4rem;font-size:1.05rem}\
.addr{font-size:1.05rem}.check{background:#fff4d6;border-left:4px solid #f2b705;padding:.5rem .75rem;margin-top:.6rem}\
.warn{background:#fde8e7;border-left:4px solid #c62119;padding:.6rem .8rem}\
ul{margin:.2rem 0;padding-left:1.2rem}li{margin:.2rem 0}.muted{color:#5a5f66;font-size:.9rem}\
a.call{display:block;text-align:center;background:#0b57d0;color:#fff;padding:.7rem;border-radius:.4rem;text-decoration:none;font-weight:600}";

/// The print page's style sheet.
const PRINT_CSS: &str = "\
@page{margin:0}@page a6{size:105mm 148mm}@page a5{size:148mm 210mm}body{margin:0;font-family:'Noto Sans CJK SC','PingFang SC',sans-serif;background:#fff;color:#111}\
.sheet{box-sizing:border-box;display:flex;flex-direction:column;align-items:center;justify-content:space-between;text-align:center;overflow:hidden}\
.a6{page:a6;width:105mm;height:148mm;padding:6mm}.a5{page:a5;break-before:page;width:148mm;height:210mm;padding:10mm}\
.grade{width:100%;color:#fff;font-weight:700;border-radius:3mm}.a6 .grade{font-size:9mm;padding:2mm}.a5 .grade{font-size:13mm;padding:3mm}\
.green{background:#1e7e3e}.yellow{background:#f2b705;color:#111}.red{background:#c62119}\
.qr svg{display:block}.a6 .qr svg{width:62mm;height:62mm}.a5 .qr svg{width:96mm;height:96mm}\
.name{font-weight:700}.a6 .name{font-size:5mm}.a5 .name{font-size:8mm}.addr{font-size:3.5mm}.a5 .addr{font-size:5mm}\
.how{font-size:3.2mm}.a5 .how{font-size:4.5mm}.url{font-size:2mm;color:#555;word-break:break-all}\
@media screen{body{background:#ddd}.sheet{background:#fff;margin:8mm auto;box-shadow:0 0 3mm #999}}";

/// Every inline style sheet a page may carry: the content security policy
/// allows these (by hash) and nothing else.
pub const STYLE_SHEETS: [&str; 2] = [CSS, PRINT_CSS];

fn grade_class(g: Grade) -> &'static str {
    g.name()
}

pub(super) fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="robots" content="noindex";
                link rel="icon" href="data:,";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { main { (body) } }
        }
    }
}

/// What each code status means for the consumer, and what to do.
pub fn status_message(status: Status) -> &'static str {
    match status {
        Status::Valid => "此码真实有效。",
        Status::Forged => {
            "此码不是市场监管部门签发的，可能是伪造的。请勿相信码上信息，可拨打12315举报。"
        }
        Status::Malformed => "无法识别此码：它不完整或已损坏。请重新扫描，或向店家核实。",
        Status::Revoked => {
            "此码已被市场监管部门注销，不能再作为信用凭证。请谨慎消费，可拨打12315咨询。"
        }
        Status::Superseded => {
            "此码已被新码取代，店家应张贴最新的码。下面显示的是该商户当前的信用等级。"
        }
        Status::Expired => "此码已过有效期，店家应更换新码。下面显示的是该商户当前的信用等级。",
    }
}

fn status_title(status: Status) -> &'static str {
    match status {
        Status::Valid => "有效",
        Status::Forged => "警告：伪造的码",
        Status::Malformed => "无法识别的码",
        Status::Revoked => "此码已注销",
        Status::Superseded => "此码已被取代",
        Status::Expired => "此码已过期",
    }
}

fn label(key: &str) -> &str {
    match key {
        "date" => "日期",
        "result" => "结果",
        "hazards" => "发现隐患",
        "deadline" => "整改期限",
        "rectified" => "已整改",
        "rectified_on" => "整改日期",
        "product" => "产品",
        "standard" => "标准",
        "passed" => "合格",
        "failed_items" => "不合格项目",
        "decision_no" => "处罚决定书",
        "severity" => "严重程度",
        "fine_cny" => "罚款(元)",
        "publicity_until" => "公示截止",
        "list" => "名录",
        "action" => "操作",
        "reason" => "原因",
        "report_type" => "类型",
        "total" => "投诉举报总数",
        "substantiated" => "查证属实",
        "substantiated_180d" => "近180天查证属实",
        "source" => "来源",
        other => other,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Bool(true) => "是".into(),
        Value::Bool(false) => "否".into(),
        Value::String(s) => match s.as_str() {
            "minor" => "轻微".into(),
            "general" => "一般".into(),
            "severe" => "严重".into(),
            "abnormal" => "经营异常名录".into(),
            "serious" => "严重违法失信名单".into(),
            "add" => "列入".into(),
            "remove" => "移出".into(),
            "invoice" => "索票索证".into(),
            "incoming_check" => "进货查验".into(),
            "self_check" => "自查记录".into(),
            _ => s.clone(),
        },
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join("、"),
        Value::Null => "—".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// One record item as a line of "label：value" pairs, skipping ids and empties.
fn item_line(item: &Value) -> Markup {
    let Some(obj) = item.as_object() else {
        return html! { (value_text(item)) };
    };
    // An inspection that found nothing says so, without rectification fields.
    let clean = obj.get("hazards").and_then(Value::as_u64) == Some(0);
    let parts: Vec<String> = obj
        .iter()
        .filter(|(k, _)| {
            !(clean && matches!(k.as_str(), "rectified" | "deadline" | "rectified_on"))
        })
        .filter(|(k, v)| !matches!(k.as_str(), "id" | "kind" | "merchant") && !v.is_null())
        .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()))
        .map(|(k, v)| match (k.as_str(), clean) {
            ("hazards", true) => "未发现隐患".to_owned(),
            _ => format!("{}：{}", label(k), value_text(v)),
        })
        .collect();
    html! { (parts.join("；")) }
}

fn records_section(title: &str, items: Option<&Value>, empty: &str) -> Markup {
    let list = items.and_then(Value::as_array).filter(|a| !a.is_empty());
    html! {
        section {
            h3 { (title) }
            @match list {
                Some(items) => ul { @for item in items.iter().take(5) { li { (item_line(item)) } } },
                None => p.muted { (empty) },
            }
        }
    }
}

fn merchant_block(p: &Projection, today: jiff::civil::Date, printed: Option<Grade>) -> Markup {
    let (grade, active) = p.effective(today);
    let records = serde_json::to_value(&p.records).unwrap_or(Value::Null);
    let kind = match p.merchant.kind {
        crate::model::MerchantKind::Shop => "商户",
        crate::model::MerchantKind::Vendor => "流动摊贩",
    };
    html! {
        section {
            h1 { (p.merchant.name) }
            p.addr { (p.merchant.address) }
            p.muted {
                (kind)
                @if let Some(uscc) = &p.merchant.uscc { " · 统一社会信用代码 " (uscc) }
                @if !p.merchant.categories.is_empty() { " · " (p.merchant.categories.join("、")) }
            }
            p.check { "请核对：此码应张贴在上面这个名称和地址的经营场所。如果不一致，可能是冒用的码，请勿相信，并拨打12315举报。" }
        }
        div class={"band " (grade_class(grade))} {
            h2 { (grade.label_zh()) }
            p { "当前信用等级（" (p.as_of) " 评定）" }
        }
        @if let Some(printed) = printed.filter(|g| *g != grade) {
            section.warn {
                "此码印制时等级为「" (printed.label_zh()) "」，当前等级为「" (grade.label_zh()) "」，以当前等级为准。店家需要重新打印。"
            }
        }
        section {
            h3 { "评定理由" }
            @let reasons: Vec<_> = p.reasons.iter().filter(|r| active.is_some() || r.rule != "override").collect();
            @if reasons.is_empty() {
                p { "近期没有影响信用的不良记录。" }
            } @else {
                ul {
                    @for r in reasons {
                        li {
                            (r.text)
                            @if let Some(since) = r.since { span.muted { "（自 " (since) }
                                @match r.until {
                                    Some(until) => span.muted { "，预计 " (until) " 解除" },
                                    None => span.muted { "，整改或处理完毕后解除" },
                                }
                                span.muted { "）" }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = p.next_change_at {
                p.muted { "如无新记录，等级最早可能于 " (next) " 变化。" }
            }
        }
        (records_section("现场检查", records.get("inspections"), "暂无检查记录"))
        (records_section("监督抽检", records.get("sampling"), "暂无抽检记录"))
        (records_section("行政处罚", records.get("penalties"), "无行政处罚记录"))
        section {
            h3 { "投诉举报" }
            @match records.get("complaints") {
                Some(c @ Value::Object(_)) => p {
                    "投诉举报总数：" (value_text(&c["total"]))
                    "；查证属实：" (value_text(&c["substantiated"]))
                    "；近180天查证属实：" (value_text(&c["substantiated_180d"]))
                },
                _ => p.muted { "无" },
            }
        }
        (records_section("名录", records.get("lists"), "未被列入经营异常名录或严重违法失信名单"))
    }
}

fn complain_block() -> Markup {
    html! {
        section {
            a.call href="tel:12315" { "投诉举报 拨打 12315" }
            p.muted { "也可登录全国12315平台（www.12315.cn）投诉举报。信息由市场监督管理部门发布。" }
        }
    }
}

/// The page a consumer sees after scanning.
/// `projection`: the projection of `scan.view`, if the scan shows one.
pub fn scan_page(scan: &Scan, projection: Option<&crate::model::Projection>) -> Markup {
    let printed = scan.claims.as_ref().map(|c| c.grade);
    let body = html! {
        @if scan.status != Status::Valid {
            @let alarm = if scan.status.shows_merchant() { "band gray" } else { "band red" };
            div class=(alarm) { h2 { (status_title(scan.status)) } }
            section.warn { (status_message(scan.status)) }
        }
        @if let Some(p) = projection {
            (merchant_block(p, scan.today, printed))
        }
        (complain_block())
    };
    let title = match projection {
        Some(p) => format!("{} - 一扫知", p.merchant.name),
        None => format!("{} - 一扫知", status_title(scan.status)),
    };
    layout(&title, body)
}

/// The store is down and this merchant is not cached.
pub fn unavailable() -> Markup {
    layout(
        "暂时无法查询 - 一扫知",
        html! {
            div.band.gray { h2 { "暂时无法查询" } }
            section { "系统繁忙，请稍后再扫一次。" }
            (complain_block())
        },
    )
}

/// Print page: an A6 sticker and an A5 poster, one per printed page.
pub fn print_page(p: &Projection, printed: Grade, svg: &str, url: &str) -> Markup {
    let sheet = |class: &str| {
        html! {
            div class={"sheet " (class)} {
                div class={"grade " (grade_class(printed))} { (printed.label_zh()) }
                div.name { (p.merchant.name) }
                div.addr { (p.merchant.address) }
                div.qr { (PreEscaped(svg)) }
                div.how { "微信或手机相机扫一扫，查看本店信用等级、检查、抽检与处罚记录。请核对店名和地址。投诉举报：12315" }
                div.url { (url) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                title { (p.merchant.name) " - 信用码打印" }
                style { (PreEscaped(PRINT_CSS)) }
            }
            body { (sheet("a6")) (sheet("a5")) }
        }
    }
}

/// One page of each layout, for tests of what pages embed.
#[cfg(test)]
pub fn rendered_samples() -> Vec<String> {
    let as_of: jiff::civil::Date = "2026-06-30".parse().unwrap();
    let p = &super::answers::tests::demo_projections(as_of, None)[0];
    vec![
        unavailable().into_string(),
        print_page(
            p,
            p.computed_grade,
            "<svg></svg>",
            "https://example.org/S/1",
        )
        .into_string(),
    ]
}

pub async fn home() -> actix_web::HttpResponse {
    let page = layout(
        "一扫知",
        html! {
            div.band.green { h2 { "一扫知" } p { "市场主体信用码" } }
            section { p { "用手机扫描商户门口张贴的信用码，即可查看该商户的信用等级、检查、抽检、处罚和投诉举报记录。" } }
            (complain_block())
        },
    );
    actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.into_string())
}
