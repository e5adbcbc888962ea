//! The JSON bodies the service answers with, as typed values serialised
//! straight from the data (no intermediate `serde_json::Value`).

use super::error::ApiError;
use crate::model::IssuedCode;
use crate::model::MerchantId;
use crate::model::Projection;
use crate::refresh::ImportReport;
use crate::scan::MerchantView;
use crate::store::StoreError;
use crate::tips::Tip;

/// Appends `value` as JSON. Our types always serialize.
pub(super) fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("in-memory JSON of plain data");
}

/// Appends the members (no braces) of what the public sees of the merchant
/// of `view` on `today`: its public projection's members, then `"tips"`,
/// the consumer tips shown (`[{"text", "until"}]`, empty when none). The
/// scan JSON and `/api/v1/merchants/{id}` are made of it. Without an
/// override the projection's members are its stored JSON, spliced in as is
/// (nothing re-serialised: their range in `out` is returned); with one, the
/// public projection is serialised.
pub(super) fn write_public_members(
    out: &mut Vec<u8>,
    view: &MerchantView,
    tips: &[&Tip],
    today: jiff::civil::Date,
) -> Result<Option<std::ops::Range<usize>>, StoreError> {
    let at = out.len();
    let spliced = view.write_public_members(out)?;
    if !spliced {
        let projection = view.projection()?;
        write_json(out, &public_projection(&projection, today));
        // The projection is a JSON object: drop its braces.
        out.remove(at);
        out.pop();
    }
    let members = spliced.then_some(at..out.len());
    out.extend_from_slice(b",\"tips\":");
    write_json(out, &PublicTips(tips));
    Ok(members)
}

/// Tips as the public sees them: each one's text and last day, not who
/// published it or for which regions.
struct PublicTips<'a>(&'a [&'a Tip]);

impl serde::Serialize for PublicTips<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct PublicTip<'a> {
            text: &'a str,
            until: jiff::civil::Date,
        }
        s.collect_seq(self.0.iter().map(|t| PublicTip {
            text: &t.text,
            until: t.until,
        }))
    }
}

/// The public JSON of the merchant of `view` on `today`, with its tips:
/// the answer of `/api/v1/merchants/{id}`.
pub(super) fn public_merchant(
    view: &MerchantView,
    tips: &[&Tip],
    today: jiff::civil::Date,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(2048);
    out.push(b'{');
    write_public_members(&mut out, view, tips, today)?;
    out.push(b'}');
    Ok(out)
}

/// The public projection (no personal data): the fields shared by the scan
/// JSON and `/api/v1/merchants/{id}`, with the override re-checked for today.
/// Serialized straight from the projection (no intermediate JSON value): it
/// is most of every cold scan's work.
pub(super) fn public_projection(p: &Projection, today: jiff::civil::Date) -> PublicProjection<'_> {
    let (grade, active) = p.effective(today);
    PublicProjection {
        merchant: &p.merchant,
        grade,
        computed_grade: p.computed_grade,
        override_: active.map(|o| PublicOverride {
            grade: o.grade,
            reason: &o.reason,
            expires_at: o.expires_at,
            at: o.at,
        }),
        reasons: Reasons {
            all: &p.reasons,
            with_override: active.is_some(),
        },
        records: &p.records,
        as_of: p.as_of,
        updated_at: p.updated_at,
        next_change_at: p.next_change_at,
    }
}

#[derive(serde::Serialize)]
pub(super) struct PublicProjection<'a> {
    merchant: &'a crate::model::PublicMerchant,
    grade: crate::model::Grade,
    computed_grade: crate::model::Grade,
    #[serde(rename = "override")]
    override_: Option<PublicOverride<'a>>,
    reasons: Reasons<'a>,
    records: &'a crate::model::RecordSummary,
    as_of: jiff::civil::Date,
    updated_at: jiff::Timestamp,
    next_change_at: Option<jiff::civil::Date>,
}

/// An active override as the public sees it: not who made it.
#[derive(serde::Serialize)]
struct PublicOverride<'a> {
    grade: crate::model::Grade,
    reason: &'a str,
    expires_at: Option<jiff::civil::Date>,
    at: jiff::Timestamp,
}

/// The reasons, without the override's once it is no longer active.
struct Reasons<'a> {
    all: &'a [crate::model::Reason],
    with_override: bool,
}

impl serde::Serialize for Reasons<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.all
                .iter()
                .filter(|r| self.with_override || r.rule != crate::model::OVERRIDE_RULE),
        )
    }
}

/// A code as `GET /api/v1/merchants/{id}/code` and `POST
/// /api/v1/admin/merchants/{id}/codes` answer it. Fields in the order these
/// answers have always had (alphabetical).
#[derive(serde::Serialize)]
pub(super) struct CodeAnswer<'a> {
    expires_at: jiff::civil::Date,
    issued_at: jiff::civil::Date,
    kid: u16,
    printed_grade: crate::model::Grade,
    serial: u32,
    token: &'a str,
    url: String,
}

impl<'a> CodeAnswer<'a> {
    pub(super) fn new(code: &'a IssuedCode, base_url: &str) -> Result<Self, ApiError> {
        Ok(CodeAnswer {
            expires_at: code.expires_at,
            issued_at: code.issued_at,
            kid: code.kid,
            printed_grade: code.printed_grade,
            serial: code.serial,
            token: code.token.as_str(),
            url: code_url(base_url, code)?,
        })
    }
}

/// The scan URL of a stored code.
pub(super) fn code_url(base_url: &str, code: &IssuedCode) -> Result<String, ApiError> {
    Ok(yisaozhi_codes::url(base_url, &code.token))
}

/// The answer to an import of merchants or records: the summary, each
/// rejected line, the merchants changed, and — when nothing was accepted —
/// the error envelope's `error` and `message`. Fields in the order these
/// answers have always had (alphabetical).
#[derive(serde::Serialize)]
pub(super) struct ImportAnswer<'a> {
    /// Only in the answer to a merchants import: each merchant's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<RegisteredCode<'a>>>,
    duplicate: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    imported: u64,
    merchants: &'a [MerchantId],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    read: u64,
    regraded: u64,
    rejected: u64,
    rejects: Vec<RejectedLine<'a>>,
}

/// A rejected line of an import.
#[derive(serde::Serialize)]
struct RejectedLine<'a> {
    line: u64,
    reason: &'a str,
}

/// The code of a merchant an import registered.
#[derive(serde::Serialize)]
pub(super) struct RegisteredCode<'a> {
    pub merchant_id: &'a MerchantId,
    pub printed_grade: crate::model::Grade,
    pub serial: u32,
    pub url: String,
}

impl<'a> ImportAnswer<'a> {
    /// The answer to an import that changed the merchants `ids`; when every
    /// line was rejected it is also the error envelope (answered 400).
    pub(super) fn new(report: &'a ImportReport, ids: &'a [MerchantId]) -> Self {
        let s = &report.summary;
        let refused = s.rejected > 0 && ids.is_empty();
        ImportAnswer {
            codes: None,
            duplicate: s.duplicate,
            error: refused.then_some("rejected"),
            imported: s.imported,
            merchants: ids,
            message: refused.then(|| {
                format!(
                    "every line was rejected ({} of {}); `rejects` says where and why",
                    s.rejected, s.read
                )
            }),
            read: s.read,
            regraded: s.regraded,
            rejected: s.rejected,
            rejects: report
                .rejects
                .iter()
                .map(|r| RejectedLine {
                    line: r.line,
                    reason: &r.reason,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::grading::demo_projections;
    use crate::model::Override;

    /// A red override by `inspector-7`, who must never be shown.
    fn inspectors_override(expires_at: Option<jiff::civil::Date>) -> Override {
        Override {
            grade: crate::model::Grade::Red,
            reason: "检查发现问题".into(),
            expires_at,
            actor: "inspector-7".into(),
            at: jiff::Timestamp::now(),
        }
    }

    /// The scan answer splices a projection's stored JSON as its public JSON
    /// when it has no override: that holds only while the two are the same
    /// bytes, which this pins for every demo merchant (every rule fires).
    #[test]
    fn without_an_override_the_stored_projection_is_its_public_json() {
        let as_of: jiff::civil::Date = "2026-06-30".parse().unwrap();
        let projections = demo_projections(as_of, None);
        assert!(projections.len() > 50);
        for p in &projections {
            let stored = serde_json::to_string(p).unwrap();
            for today in [as_of, "2027-01-01".parse().unwrap()] {
                let public = serde_json::to_string(&public_projection(p, today)).unwrap();
                assert_eq!(stored, public, "{}", p.merchant.id);
            }
        }
        // With an override they differ (who made it is not public), which is
        // why the splice is only used without one.
        let o = inspectors_override(None);
        let p = &demo_projections(as_of, Some(&o))[0];
        let public = serde_json::to_string(&public_projection(p, as_of)).unwrap();
        assert_ne!(serde_json::to_string(p).unwrap(), public);
        assert!(!public.contains("inspector-7"));
    }

    /// The merchant's public JSON, spliced from the stored projection
    /// without an override and serialised with one, is the public
    /// projection and then `"tips"` (`[{"text", "until"}]`, empty when
    /// none), whichever way the view was read.
    #[test]
    fn the_public_json_is_the_public_projection_then_the_tips() {
        use crate::scan::MerchantView;
        let as_of: jiff::civil::Date = "2026-06-30".parse().unwrap();
        let o = inspectors_override(None);
        let tip = Tip {
            id: "tip-0000000000000001".into(),
            text: "请索要\"发票\"".into(),
            regions: vec![],
            categories: vec![],
            from: as_of,
            until: as_of,
            actor: "县局".into(),
            at: jiff::Timestamp::now(),
        };
        for override_ in [None, Some(&o)] {
            for p in demo_projections(as_of, override_).iter().take(10) {
                let json = serde_json::to_string(p).unwrap();
                let views = [
                    MerchantView::from_json(json, Default::default()).unwrap(),
                    MerchantView::new(p.clone(), Default::default()),
                ];
                for view in &views {
                    for tips in [vec![], vec![&tip]] {
                        let out = public_merchant(view, &tips, as_of).unwrap();
                        let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
                        let mut want = serde_json::to_value(public_projection(p, as_of)).unwrap();
                        want["tips"] = serde_json::json!(tips
                            .iter()
                            .map(|t| serde_json::json!({"text": t.text, "until": t.until}))
                            .collect::<Vec<_>>());
                        assert_eq!(got, want, "{}", p.merchant.id);
                        assert!(!String::from_utf8(out).unwrap().contains("inspector-7"));
                    }
                }
            }
        }
    }

    /// A view made from stored JSON answers from its head without parsing
    /// the rest, and parses it on demand; both paths agree with the parsed
    /// projection, with and without an override.
    #[test]
    fn a_view_from_stored_json_agrees_with_the_parsed_projection() {
        use crate::scan::MerchantView;
        let as_of: jiff::civil::Date = "2026-06-30".parse().unwrap();
        let until: jiff::civil::Date = "2026-07-31".parse().unwrap();
        let o = inspectors_override(Some(until));
        let after: jiff::civil::Date = "2026-08-01".parse().unwrap();
        for override_ in [None, Some(&o)] {
            for p in demo_projections(as_of, override_).iter().take(20) {
                let json = serde_json::to_string(p).unwrap();
                let view = MerchantView::from_json(json.clone(), Default::default()).unwrap();
                for today in [as_of, until, after] {
                    assert_eq!(view.live_grade(today), p.effective(today).0);
                }
                let mut members = Vec::new();
                let spliced = view.write_public_members(&mut members).unwrap();
                assert_eq!(spliced, override_.is_none());
                if spliced {
                    assert_eq!(members, json.as_bytes()[1..json.len() - 1]);
                }
                assert_eq!(*view.projection().unwrap(), *p);
                // Kept in the view cache, compressed: the same.
                let kept = MerchantView::from_json(json.clone(), Default::default())
                    .unwrap()
                    .kept()
                    .unwrap();
                let mut kept_members = Vec::new();
                assert_eq!(
                    kept.write_public_members(&mut kept_members).unwrap(),
                    spliced
                );
                assert_eq!(kept_members, if spliced { members } else { vec![] });
                assert_eq!(kept.public_members_piece().is_some(), spliced);
                assert_eq!(*kept.projection().unwrap(), *p);
                assert_eq!(kept.live_grade(after), view.live_grade(after));
                assert_eq!(view.audience().region, p.merchant.region);
                assert_eq!(view.audience().categories, p.merchant.categories);
                let parsed = MerchantView::new(p.clone(), Default::default());
                assert_eq!(parsed.live_grade(after), view.live_grade(after));
                assert!(
                    !parsed.write_public_members(&mut Vec::new()).unwrap(),
                    "no stored JSON to splice"
                );
            }
        }
        // Not JSON: refused at once. A well-formed head over a broken body:
        // refused when the body is needed, as a store error, not a panic.
        assert!(MerchantView::from_json("{".into(), Default::default()).is_err());
        let head_only = r#"{"computed_grade":"green","override":null,"merchant":{"region":"511504","categories":[]}}"#;
        let view = MerchantView::from_json(head_only.into(), Default::default()).unwrap();
        assert!(view.projection().is_err());
    }
}
