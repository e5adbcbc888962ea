//! HTML pages: Chinese, mobile first, no external assets, no JavaScript.
//! Markup is built with maud, which escapes every interpolated value.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::model::{
    Grade, InspectionItem, ListItem, ListKind, PenaltyItem, Projection, RecordSummary, Reply,
    SamplingItem, Severity,
};
use crate::scan::{Scan, Status};
use crate::tips::Tip;

const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif;color:#1b1b1b;background:#f4f5f7}\
main{max-width:34rem;margin:0 auto;padding:0 0 2rem}\
.band{color:#fff;padding:1rem 1.25rem}.band h2{margin:0;font-size:1.9rem}.band p{margin:.25rem 0 0}\
.green{background:#1e7e3e}.yellow{background:#f2b705;color:#1b1b1b}.red{background:#c62119}.gray{background:#5a5f66}\
section{background:#fff;margin:.75rem;padding:.9rem 1rem;border-radius:.5rem}\
h1{font-size:1.35rem;margin:.1rem 0}h3{margin:.2rem 0 .4rem;font-size:1.05rem}\
.addr{font-size:1.05rem}.check{background:#fff4d6;border-left:4px solid #f2b705;padding:.5rem .75rem;margin-top:.6rem}\
.warn{background:#fde8e7;border-left:4px solid #c62119;padding:.6rem .8rem}\
.tips{background:#e8f0fe;border-left:4px solid #0b57d0}\
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
pub const STYLE_SHEETS: [&str; 3] = [CSS, PRINT_CSS, super::shop_style::SHOP_CSS];

fn grade_class(g: Grade) -> &'static str {
    g.name()
}

pub(super) fn layout(title: &str, body: Markup) -> Markup {
    layout_styled(title, CSS, body)
}

/// A page with one of [`STYLE_SHEETS`] as its style sheet.
pub(super) fn layout_styled(title: &str, css: &'static str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="robots" content="noindex";
                link rel="icon" href="data:,";
                // The title after the style sheet: everything before it is
                // the same on every scan page, which the scan's memo of the
                // page shares (`web::scan::page_head`).
                style { (PreEscaped(css)) }
                title { (title) }
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

fn yes_no(b: bool) -> &'static str {
    if b {
        "是"
    } else {
        "否"
    }
}

/// A fine in yuan: whole yuan without decimals.
fn yuan(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// A merchant's accepted reply under what it answers.
fn reply_line(reply: Option<&Reply>) -> Markup {
    let Some(r) = reply else {
        return html! {};
    };
    html! { br; span.muted { "商户回复（" (r.at) "）：" (r.text) } }
}

/// "label：value".
fn part(label: &str, value: impl std::fmt::Display) -> Option<String> {
    Some(format!("{label}：{value}"))
}

/// One record as the page shows it: its parts joined with "；", the empty
/// ones left out.
trait RecordLine {
    fn parts(&self) -> Vec<Option<String>>;

    /// The merchant's accepted reply to this record, if any.
    fn reply(&self) -> Option<&Reply>;

    fn line(&self) -> String {
        self.parts()
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("；")
    }
}

impl RecordLine for InspectionItem {
    fn reply(&self) -> Option<&Reply> {
        self.reply.as_ref()
    }

    fn parts(&self) -> Vec<Option<String>> {
        // An inspection that found nothing says so, without rectification.
        if self.hazards == 0 {
            return vec![part("日期", self.date), Some("未发现隐患".into())];
        }
        vec![
            part("日期", self.date),
            self.deadline.and_then(|d| part("整改期限", d)),
            part("发现隐患", self.hazards),
            part("已整改", yes_no(self.rectified)),
            self.rectified_on.and_then(|d| part("整改日期", d)),
        ]
    }
}

impl RecordLine for SamplingItem {
    fn reply(&self) -> Option<&Reply> {
        self.reply.as_ref()
    }

    fn parts(&self) -> Vec<Option<String>> {
        vec![
            part("日期", self.date),
            (!self.failed_items.is_empty())
                .then(|| part("不合格项目", self.failed_items.join("、")))
                .flatten(),
            part("合格", yes_no(self.passed)),
            part("产品", &self.product),
            self.standard.as_ref().and_then(|s| part("标准", s)),
        ]
    }
}

impl RecordLine for PenaltyItem {
    fn reply(&self) -> Option<&Reply> {
        self.reply.as_ref()
    }

    fn parts(&self) -> Vec<Option<String>> {
        let severity = match self.severity {
            Severity::Minor => "轻微",
            Severity::General => "一般",
            Severity::Severe => "严重",
        };
        vec![
            part("日期", self.date),
            part("处罚决定书", &self.decision_no),
            part("罚款(元)", yuan(self.fine_cny)),
            self.publicity_until.and_then(|d| part("公示截止", d)),
            part("严重程度", severity),
        ]
    }
}

impl RecordLine for ListItem {
    fn reply(&self) -> Option<&Reply> {
        self.reply.as_ref()
    }

    fn parts(&self) -> Vec<Option<String>> {
        let list = match self.list {
            ListKind::Abnormal => "经营异常名录",
            ListKind::Serious => "严重违法失信名单",
        };
        vec![
            part("名录", list),
            self.reason.as_ref().and_then(|r| part("原因", r)),
            part("列入日期", self.since),
        ]
    }
}

/// A section of the most recent records of one kind (at most five).
fn typed_section(title: &str, items: &[impl RecordLine], empty: &str) -> Markup {
    html! {
        section {
            h3 { (title) }
            @if items.is_empty() {
                p.muted { (empty) }
            } @else {
                ul { @for item in items.iter().take(5) { li { (item.line()) (reply_line(item.reply())) } } }
            }
        }
    }
}

/// The merchant's recent records, by kind.
fn records_block(r: &RecordSummary) -> Markup {
    let c = &r.complaints;
    html! {
        (typed_section("现场检查", &r.inspections, "暂无检查记录"))
        (typed_section("监督抽检", &r.sampling, "暂无抽检记录"))
        (typed_section("行政处罚", &r.penalties, "无行政处罚记录"))
        section {
            h3 { "投诉举报" }
            p {
                "投诉举报总数：" (c.total)
                "；查证属实：" (c.substantiated)
                "；近180天查证属实：" (c.substantiated_180d)
            }
        }
        (typed_section("名录", &r.lists, "未被列入经营异常名录或严重违法失信名单"))
    }
}

/// The consumer tips in force for the merchant, if any.
fn tips_block(tips: &[&Tip]) -> Markup {
    html! {
        @if !tips.is_empty() {
            section.tips {
                h3 { "消费提示" }
                ul {
                    @for t in tips {
                        li { (t.text) span.muted { "（有效期至 " (t.until) "）" } }
                    }
                }
            }
        }
    }
}

fn merchant_block(
    p: &Projection,
    today: jiff::civil::Date,
    printed: Option<Grade>,
    tips: &[&Tip],
) -> Markup {
    let (grade, active) = p.effective(today);
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
        @if let Some(c) = &p.records.commitment {
            section { p { "已签署质量承诺（" (c.date) "）" } }
        }
        @if let Some(printed) = printed.filter(|g| *g != grade) {
            section.warn {
                "此码印制时等级为「" (printed.label_zh()) "」，当前等级为「" (grade.label_zh()) "」，以当前等级为准。店家需要重新打印。"
            }
        }
        (tips_block(tips))
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
                            (reply_line(r.reply.as_ref()))
                        }
                    }
                }
            }
            @if let Some(next) = p.next_change_at {
                p.muted { "如无新记录，等级最早可能于 " (next) " 变化。" }
            }
        }
        (records_block(&p.records))
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
            (merchant_block(p, scan.today, printed, &scan.shown_tips()))
        }
        (complain_block())
        // The same for everyone (the page stays cacheable): staff with a
        // workbench session reach the merchant's page in one tap.
        @if let Some(p) = projection {
            section { a href={"/admin/merchants/" (p.merchant.id)} rel="nofollow" { "监管人员入口：在工作台查看此商户" } }
        }
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
    let p = &crate::grading::demo_projections(as_of, None)[0];
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    #[test]
    fn records_read_as_labelled_lines_with_words_for_their_values() {
        let clean = InspectionItem {
            id: "i1".into(),
            date: day("2026-05-01"),
            hazards: 0,
            deadline: Some(day("2026-05-10")),
            rectified: false,
            rectified_on: None,
            reply: None,
        };
        assert_eq!(clean.line(), "日期：2026-05-01；未发现隐患");
        let found = InspectionItem {
            hazards: 2,
            rectified: true,
            rectified_on: Some(day("2026-05-08")),
            ..clean
        };
        assert_eq!(
            found.line(),
            "日期：2026-05-01；整改期限：2026-05-10；发现隐患：2；已整改：是；整改日期：2026-05-08"
        );
        let penalty = PenaltyItem {
            id: "p1".into(),
            date: day("2026-04-01"),
            decision_no: "叙市监罚〔2026〕3号".into(),
            severity: Severity::General,
            fine_cny: 5000.0,
            publicity_until: None,
            reply: None,
        };
        assert_eq!(
            penalty.line(),
            "日期：2026-04-01；处罚决定书：叙市监罚〔2026〕3号；罚款(元)：5000；严重程度：一般"
        );
        assert_eq!(yuan(1234.5), "1234.5");
        // A value that happens to spell a wire name stays as written.
        let sampling = SamplingItem {
            id: "s1".into(),
            date: day("2026-03-01"),
            product: "add".into(),
            standard: None,
            passed: false,
            failed_items: vec!["菌落总数".into(), "大肠菌群".into()],
            reply: None,
        };
        assert_eq!(
            sampling.line(),
            "日期：2026-03-01；不合格项目：菌落总数、大肠菌群；合格：否；产品：add"
        );
        let list = ListItem {
            id: "l1".into(),
            list: ListKind::Abnormal,
            since: day("2026-02-01"),
            reason: None,
            reply: None,
        };
        assert_eq!(list.line(), "名录：经营异常名录；列入日期：2026-02-01");
    }

    #[test]
    fn tips_show_only_when_there_are_some_and_are_escaped() {
        assert_eq!(tips_block(&[]).into_string(), "");
        let tip = Tip {
            id: "tip-0000000000000001".into(),
            text: "请索要<发票>".into(),
            regions: vec![],
            categories: vec![],
            from: day("2026-09-01"),
            until: day("2026-09-30"),
            actor: "县局".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        let html = tips_block(&[&tip]).into_string();
        assert!(
            html.contains("消费提示") && html.contains("请索要&lt;发票&gt;"),
            "{html}"
        );
        assert!(
            html.contains("有效期至 2026-09-30") && !html.contains("县局"),
            "{html}"
        );
    }
}
