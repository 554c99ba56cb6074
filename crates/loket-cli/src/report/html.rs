//! `loket report --format html`: one self-contained page (inline CSS and
//! SVG, no scripts, nothing fetched) with the report's charts and tables.
//! Charts are drawn with plotters' SVG backend.

use std::fmt::Write as _;

use loket_replay::{Dimension, Report};
use loket_report::{DurationSummary, MeasuresReport, Row};
use plotters::prelude::*;

/// The reports a page is made of.
pub struct Sources<'a> {
    /// The report asked for (its groups make the tables).
    pub asked: &'a Report,
    /// The totals per interval (the time charts).
    pub over_time: &'a Report,
    /// The whole range by channel and by agent (the distribution and
    /// occupancy charts).
    pub by_group: &'a Report,
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 300;
const INK: RGBColor = RGBColor(0x1f, 0x29, 0x37);
const BLUE: RGBColor = RGBColor(0x25, 0x63, 0xeb);
const TEAL: RGBColor = RGBColor(0x0d, 0x94, 0x88);
const AMBER: RGBColor = RGBColor(0xd9, 0x77, 0x06);
const GREY: RGBColor = RGBColor(0xd1, 0xd5, 0xdb);

/// The page.
pub fn page(sources: &Sources<'_>) -> anyhow::Result<String> {
    let report = sources.asked;
    let mut html = String::with_capacity(64 * 1024);
    let title = format!("Loket report, {} to {} (UTC)", time(report.from), time(report.to));
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    html.push_str(&headline(&report.totals));
    let rows: Vec<&Row> = sources.over_time.intervals.iter().collect();
    let by_channel: Vec<&Row> =
        sources.by_group.groups.iter().filter(|row| row.group == Dimension::Channel).collect();
    let by_agent: Vec<&Row> =
        sources.by_group.groups.iter().filter(|row| row.group == Dimension::Agent).collect();
    let charts = [
        ("Service level per interval", "service-level", service_level_chart(&rows)?),
        ("Conversations offered per interval", "offered", offered_chart(&rows)?),
        (
            "First response per channel (p50, p90, p99)",
            "first-response",
            first_response_chart(&by_channel)?,
        ),
        ("Conversion rate by first-response time", "conversion", conversion_chart(&report.totals)?),
        ("Occupancy per agent", "occupancy", occupancy_chart(&by_agent)?),
    ];
    for (heading, id, svg) in charts {
        let _ = write!(
            html,
            "<section class=\"chart\" id=\"{id}\"><h2>{heading}</h2>\n{svg}</section>\n"
        );
    }
    html.push_str(&groups_table(report));
    html.push_str(
        "<p class=\"foot\">Measures are defined in docs/reports.md. Made by <code>loket report</code>.</p>\n\
         </body></html>\n",
    );
    Ok(html)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;color:#1f2937;margin:2rem auto;\
max-width:900px;padding:0 1rem}h1{font-size:1.4rem}h2{font-size:1.05rem;margin:1.6rem 0 .4rem}\
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #d1d5db;border-radius:6px;\
padding:.5rem .8rem;min-width:8rem}.card b{display:block;font-size:1.3rem}\
table{border-collapse:collapse;font-size:.85rem;width:100%}th,td{border-bottom:1px solid #e5e7eb;\
padding:.25rem .4rem;text-align:right;white-space:nowrap}th:first-child,td:first-child,th:nth-child(2),\
td:nth-child(2){text-align:left}svg{max-width:100%;height:auto}.wide{overflow-x:auto}.empty{color:#6b7280}\
.foot{color:#6b7280;font-size:.8rem;margin-top:2rem}";

/// The headline figures as cards.
fn headline(m: &MeasuresReport) -> String {
    let cards = [
        ("Offered", m.offered.to_string()),
        ("Answered", m.answered.to_string()),
        ("Abandoned", m.abandoned.to_string()),
        ("Service level", percent(m.service_level)),
        ("First response p50", duration(m.first_response_ms.p50)),
        ("First response p90", duration(m.first_response_ms.p90)),
        ("SLA breaches", (m.sla_breaches.first_reply + m.sla_breaches.next_reply).to_string()),
        ("Conversion rate", percent(m.conversion_rate)),
        ("Revenue", revenue(m)),
    ];
    let mut html = String::from("<div class=\"cards\">");
    for (label, value) in cards {
        let _ = write!(html, "<div class=\"card\">{label}<b>{}</b></div>", escape(&value));
    }
    html.push_str("</div>\n");
    html
}

fn service_level_chart(rows: &[&Row]) -> anyhow::Result<String> {
    let points: Vec<(usize, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| row.measures.service_level.map(|level| (i, level * 100.0)))
        .collect();
    if points.is_empty() {
        return Ok(empty("No conversation was answered or abandoned."));
    }
    let labels: Vec<String> = rows.iter().map(|row| clock(row.start)).collect();
    svg(|area| {
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..(rows.len() as f64 - 0.5).max(0.5), 0f64..100f64)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(GREY.mix(0.4))
            .x_labels(labels.len().min(12))
            .x_label_formatter(&|x| index_label(&labels, *x))
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .draw()?;
        chart.draw_series(LineSeries::new(
            points.iter().map(|&(i, v)| (i as f64, v)),
            BLUE.stroke_width(2),
        ))?;
        chart.draw_series(
            points.iter().map(|&(i, v)| Circle::new((i as f64, v), 3, BLUE.filled())),
        )?;
        Ok(())
    })
}

fn offered_chart(rows: &[&Row]) -> anyhow::Result<String> {
    if rows.is_empty() {
        return Ok(empty("No conversations."));
    }
    let labels: Vec<String> = rows.iter().map(|row| clock(row.start)).collect();
    let top = rows.iter().map(|row| row.measures.offered).max().unwrap_or(0).max(1) as f64 * 1.1;
    svg(|area| {
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..(rows.len() as f64 - 0.5), 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(GREY.mix(0.4))
            .x_labels(labels.len().min(12))
            .x_label_formatter(&|x| index_label(&labels, *x))
            .y_label_formatter(&|v| count_label(*v))
            .y_desc("conversations")
            .draw()?;
        chart.draw_series(rows.iter().enumerate().map(|(i, row)| {
            let x = i as f64;
            Rectangle::new(
                [(x - 0.35, 0.0), (x + 0.35, row.measures.offered as f64)],
                TEAL.filled(),
            )
        }))?;
        Ok(())
    })
}

fn first_response_chart(channels: &[&Row]) -> anyhow::Result<String> {
    let measured: Vec<(&str, DurationSummary)> = channels
        .iter()
        .filter(|row| row.measures.first_response_ms.p50.is_some())
        .map(|row| (row.key.as_str(), row.measures.first_response_ms))
        .collect();
    if measured.is_empty() {
        return Ok(empty("No person replied yet."));
    }
    // Log scale: chat answers in seconds and e-mail in hours share a chart.
    let seconds = |ms: Option<u64>| (ms.unwrap_or(0) as f64 / 1000.0).max(0.1);
    let top = measured.iter().map(|(_, s)| seconds(s.p99)).fold(1.0, f64::max) * 2.0;
    let labels: Vec<String> = measured.iter().map(|(key, _)| key.to_string()).collect();
    svg(|area| {
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(
                -0.5f64..(measured.len() as f64 - 0.5),
                (0.1f64..top).log_scale(),
            )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(GREY.mix(0.4))
            .x_labels(labels.len())
            .x_label_formatter(&|x| index_label(&labels, *x))
            .y_label_formatter(&|seconds| duration(Some((*seconds * 1000.0) as u64)))
            .y_desc("first response (log scale)")
            .draw()?;
        for (offset, color, pick, name) in
            [(-0.25, BLUE, 0usize, "p50"), (0.0, TEAL, 1, "p90"), (0.25, AMBER, 2, "p99")]
        {
            chart
                .draw_series(measured.iter().enumerate().map(|(i, (_, s))| {
                    let value = seconds([s.p50, s.p90, s.p99][pick]);
                    let x = i as f64 + offset;
                    Rectangle::new([(x - 0.11, 0.1), (x + 0.11, value)], color.filled())
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .border_style(GREY)
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        Ok(())
    })
}

fn conversion_chart(totals: &MeasuresReport) -> anyhow::Result<String> {
    let bands = &totals.conversion_by_first_response;
    let bands = [
        ("<1m", bands.under_1m),
        ("1-5m", bands.from_1m_to_5m),
        ("5-15m", bands.from_5m_to_15m),
        ("15-60m", bands.from_15m_to_60m),
        (">1h", bands.over_1h),
    ];
    if bands.iter().all(|(_, band)| band.conversations == 0) {
        return Ok(empty("No person replied yet."));
    }
    let labels: Vec<String> =
        bands.iter().map(|(name, band)| format!("{name} (n={})", band.conversations)).collect();
    svg(|area| {
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..4.5f64, 0f64..100f64)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(GREY.mix(0.4))
            .x_labels(5)
            .x_label_formatter(&|x| index_label(&labels, *x))
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .y_desc("with an order")
            .draw()?;
        chart.draw_series(bands.iter().enumerate().map(|(i, (_, band))| {
            let x = i as f64;
            let rate = band.rate.unwrap_or(0.0) * 100.0;
            Rectangle::new([(x - 0.35, 0.0), (x + 0.35, rate)], AMBER.filled())
        }))?;
        Ok(())
    })
}

fn occupancy_chart(agents: &[&Row]) -> anyhow::Result<String> {
    let measured: Vec<(&str, f64)> = agents
        .iter()
        .filter_map(|row| row.measures.occupancy.map(|o| (row.key.as_str(), o * 100.0)))
        .collect();
    if measured.is_empty() {
        return Ok(empty("No agent was staffed in this period (docs/reports.md, occupancy)."));
    }
    let labels: Vec<String> = measured.iter().map(|(key, _)| key.to_string()).collect();
    // Above 100% when people held more than their capacity.
    let top = measured.iter().map(|(_, value)| *value).fold(100f64, f64::max);
    svg(|area| {
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..(measured.len() as f64 - 0.5), 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len())
            .x_label_formatter(&|x| index_label(&labels, *x))
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .y_desc("held / staffed capacity")
            .draw()?;
        chart.draw_series(measured.iter().enumerate().map(|(i, (_, value))| {
            let x = i as f64;
            Rectangle::new([(x - 0.35, 0.0), (x + 0.35, *value)], BLUE.filled())
        }))?;
        Ok(())
    })
}

/// The groups of the report asked for, one row each.
fn groups_table(report: &Report) -> String {
    let mut html = String::from(
        "<h2>By group</h2>\n<div class=\"wide\"><table><thead><tr><th>group</th><th>key</th><th>offered</th>\
         <th>answered</th><th>abandoned</th><th>service level</th><th>first response p50</th>\
         <th>p90</th><th>breaches</th><th>conversion</th><th>revenue</th></tr></thead><tbody>",
    );
    let total = Row {
        start: report.from,
        end: report.to,
        group: Dimension::Total,
        key: "all".to_owned(),
        measures: report.totals.clone(),
    };
    let groups = report.groups.iter().filter(|row| row.group != Dimension::Total);
    for row in groups.chain(std::iter::once(&total)) {
        let m = &row.measures;
        let key = if row.key.is_empty() { "(none)" } else { row.key.as_str() };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            row.group.as_str(),
            escape(key),
            m.offered,
            m.answered,
            m.abandoned,
            percent(m.service_level),
            duration(m.first_response_ms.p50),
            duration(m.first_response_ms.p90),
            m.sla_breaches.first_reply + m.sla_breaches.next_reply,
            percent(m.conversion_rate),
            escape(&revenue(m)),
        );
    }
    html.push_str("</tbody></table></div>\n");
    html
}

/// Draws on a fresh SVG of the standard size and returns its text.
fn svg(
    draw: impl FnOnce(
        DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error + '_>>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        area.fill(&WHITE).map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
        draw(area.clone()).map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
        area.present().map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
    }
    let _ = INK;
    Ok(text)
}

/// A count axis label: whole numbers plain, steps between them with one
/// decimal.
fn count_label(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

fn empty(why: &str) -> String {
    format!("<p class=\"empty\">{}</p>", escape(why))
}

/// The label of the bar or point at `x` (an index), blank between them.
fn index_label(labels: &[String], x: f64) -> String {
    let index = x.round();
    if (x - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    labels.get(index as usize).cloned().unwrap_or_default()
}

fn time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

fn clock(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map_or_else(|| ms.to_string(), |t| t.format("%d %H:%M").to_string())
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn duration(ms: Option<u64>) -> String {
    let Some(ms) = ms else { return "–".to_owned() };
    let seconds = ms / 1000;
    match seconds {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds / 60 % 60),
    }
}

fn revenue(m: &MeasuresReport) -> String {
    if m.revenue.is_empty() {
        return "–".to_owned();
    }
    m.revenue
        .iter()
        .map(|(currency, value)| format!("{currency} {value:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text safe inside HTML elements and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
