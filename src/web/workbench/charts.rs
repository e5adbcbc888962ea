//! Charts as inline SVG: no script, no external asset, colours as
//! presentation attributes (the content security policy allows no inline
//! `style`), a text alternative on each, and every bar labelled with its
//! number so no value depends on colour alone. Drawn in a 360-unit-wide
//! view box that scales to the page (a phone's width and up).

use maud::{html, Markup};

use super::dashboard_data::{Counts, Week};
use crate::model::Grade;

const WIDTH: u32 = 360;
/// Most regions drawn; the rest are summed in the table below the chart.
pub const MAX_REGION_BARS: usize = 40;

fn colour(g: Grade) -> &'static str {
    match g {
        Grade::Green => "#1e7e3e",
        Grade::Yellow => "#f2b705",
        Grade::Red => "#c62119",
    }
}

fn count(c: &Counts, g: Grade) -> u64 {
    c.get(&g).copied().unwrap_or(0)
}

/// The grades present in `c` as segments of a bar `length` long for a
/// total of `max`: (grade, count, offset from the bar's start, length).
fn segments(c: &Counts, length: f64, max: u64) -> Vec<(Grade, u64, f64, f64)> {
    let mut at = 0.0;
    let mut out = Vec::new();
    for g in Grade::ALL {
        let n = count(c, g);
        if n > 0 {
            let len = length * n as f64 / max as f64;
            out.push((g, n, at, len));
            at += len;
        }
    }
    out
}

fn words(c: &Counts) -> String {
    Grade::ALL
        .iter()
        .map(|g| format!("{} {}", g.label_zh(), count(c, *g)))
        .collect::<Vec<_>>()
        .join("，")
}

/// Horizontal bars, one per region, split by grade, with the total at
/// the end of each bar.
pub fn regions(rows: &[(String, &Counts)]) -> Markup {
    const LABEL: u32 = 64;
    const ROW: u32 = 26;
    const BAR: u32 = 18;
    let right = WIDTH - 44;
    let max = rows
        .iter()
        .map(|(_, c)| c.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let height = ROW * rows.len() as u32 + 4;
    let summary: Vec<String> = rows
        .iter()
        .map(|(r, c)| format!("{r}：{}", words(c)))
        .collect();
    html! {
        svg viewBox={"0 0 " (WIDTH) " " (height)} width=(WIDTH) height=(height)
            role="img" aria-label={"各辖区信用等级分布。" (summary.join("；"))} {
            @for (i, (region, c)) in rows.iter().enumerate() {
                @let y = 2 + ROW * i as u32;
                @let total: u64 = c.values().sum();
                @let length = f64::from(right - LABEL) * total as f64 / max as f64;
                text x="0" y=(y + 14) { (region) }
                @for (g, n, at, len) in segments(c, f64::from(right - LABEL), max) {
                    rect x=(format!("{:.1}", f64::from(LABEL) + at)) y=(y) width=(format!("{:.1}", len.max(1.0))) height=(BAR) fill=(colour(g)) {
                        title { (region) " " (g.label_zh()) "：" (n) }
                    }
                }
                text x=(format!("{:.1}", f64::from(LABEL) + length + 4.0)) y=(y + 14) { (total) }
            }
        }
    }
}

/// Stacked columns, one per week; a week without data is marked `—`.
pub fn trend(weeks: &[Week]) -> Markup {
    const TOP: u32 = 6;
    const PLOT: u32 = 120;
    const BOTTOM: u32 = 34;
    let height = TOP + PLOT + BOTTOM;
    // A margin on the right for the last week's date.
    let slot = (WIDTH - 12) / weeks.len().max(1) as u32;
    let bar = slot.saturating_sub(8).max(4);
    let max = weeks
        .iter()
        .filter_map(|w| w.counts.as_ref())
        .map(|c| c.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let summary: Vec<String> = weeks
        .iter()
        .map(|w| match &w.counts {
            Some(c) => format!("{} 起一周：{}", w.starts, words(c)),
            None => format!("{} 起一周：无数据", w.starts),
        })
        .collect();
    html! {
        svg viewBox={"0 0 " (WIDTH) " " (height)} width=(WIDTH) height=(height)
            role="img" aria-label={"近12周信用等级趋势。" (summary.join("；"))} {
            line x1="0" y1=(TOP + PLOT) x2=(WIDTH) y2=(TOP + PLOT) stroke="#8a9097" stroke-width="1" {}
            @for (i, w) in weeks.iter().enumerate() {
                @let x = slot * i as u32 + (slot - bar) / 2;
                @match &w.counts {
                    Some(c) => {
                        @for (g, n, at, h) in segments(c, f64::from(PLOT), max) {
                            @let top = f64::from(TOP + PLOT) - at - h;
                            rect x=(x) y=(format!("{top:.1}")) width=(bar) height=(format!("{:.1}", h.max(1.0))) fill=(colour(g)) {
                                title { (w.starts) " 起一周 " (g.label_zh()) "：" (n) }
                            }
                        }
                    }
                    None => {
                        text x=(x + bar / 2) y=(TOP + PLOT - 4) text-anchor="middle" fill="#5a5f66" { "—" }
                    }
                }
                @if i % 2 == weeks.len().saturating_sub(1) % 2 {
                    text x=(x + bar / 2) y=(TOP + PLOT + 16) text-anchor="middle" {
                        (format!("{:02}-{:02}", w.starts.month(), w.starts.day()))
                    }
                }
            }
        }
    }
}
