//! A carrier statement as a download: CSV, XLSX or PDF.
//!
//! All three carry the same columns in the same order, amounts as decimals in the
//! currency's major unit (`128.50`), and end with a totals row whose first cell is
//! `Total`. CSV and XLSX keep amounts machine-readable (XLSX as numbers formatted `0.00`);
//! the PDF is A4 landscape, paginated, with the totals in every page's header and again
//! under the last row.

use printpdf::{
    BuiltinFont, Line, LinePoint, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions,
    Point, Pt, TextItem,
};
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::{Statement, StatementTotals, decimal};
use crate::orders::documents::printable;
use crate::platform::{ApiError, ApiResult};

/// Column headings, shared by every format.
pub const HEADINGS: [&str; 8] = [
    "shipment",
    "order",
    "shipped_at",
    "tracking_number",
    "shipping_fee",
    "cod_due",
    "cod_collected",
    "cod_outstanding",
];

/// The first cell of the totals row.
pub const TOTAL: &str = "Total";

fn shipped_at(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn amounts(t: &StatementTotals) -> [i64; 4] {
    [
        t.shipping_fees,
        t.cod_due,
        t.cod_collected,
        t.cod_outstanding,
    ]
}

/// Rows of text cells, totals last.
fn text_rows(s: &Statement) -> Vec<[String; 8]> {
    let digits = s.digits();
    let mut rows: Vec<[String; 8]> = s
        .lines
        .iter()
        .map(|l| {
            [
                l.shipment_number.clone(),
                l.order_number.clone(),
                shipped_at(l.shipped_at),
                l.tracking_number.clone().unwrap_or_default(),
                decimal(l.shipping_fee, digits),
                decimal(l.cod_due, digits),
                decimal(l.cod_collected, digits),
                decimal(l.cod_outstanding, digits),
            ]
        })
        .collect();
    let [fees, due, collected, outstanding] = amounts(&s.totals).map(|a| decimal(a, digits));
    rows.push([
        TOTAL.to_owned(),
        format!("{} shipments", s.totals.shipments),
        String::new(),
        String::new(),
        fees,
        due,
        collected,
        outstanding,
    ]);
    rows
}

/// RFC 4180 CSV with a header row, UTF-8.
pub fn csv(s: &Statement) -> ApiResult<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::internal(format!("cannot write the CSV: {e}"));
    out.write_record(HEADINGS).map_err(failed)?;
    for row in text_rows(s) {
        out.write_record(&row).map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(format!("cannot write the CSV: {e}")))
}

/// One worksheet named after the month: headings, rows, totals in bold.
pub fn xlsx(s: &Statement) -> ApiResult<Vec<u8>> {
    build_xlsx(s).map_err(|e| ApiError::internal(format!("cannot write the XLSX: {e}")))
}

fn build_xlsx(s: &Statement) -> Result<Vec<u8>, XlsxError> {
    let digits = s.digits();
    let scale = 10f64.powi(digits as i32);
    let money_format = if digits == 0 {
        "0".to_owned()
    } else {
        format!("0.{}", "0".repeat(digits as usize))
    };
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format(&money_format);
    let bold_money = money.clone().set_bold();

    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(&s.month)?;
    for (col, heading) in HEADINGS.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *heading, &bold)?;
    }
    for (col, width) in [22, 20, 20, 22, 14, 14, 14, 16].into_iter().enumerate() {
        sheet.set_column_width(col as u16, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    let mut row = 1u32;
    for l in &s.lines {
        sheet.write_string(row, 0, &l.shipment_number)?;
        sheet.write_string(row, 1, &l.order_number)?;
        sheet.write_string(row, 2, shipped_at(l.shipped_at))?;
        sheet.write_string(row, 3, l.tracking_number.as_deref().unwrap_or_default())?;
        for (k, amount) in [
            l.shipping_fee,
            l.cod_due,
            l.cod_collected,
            l.cod_outstanding,
        ]
        .into_iter()
        .enumerate()
        {
            sheet.write_number_with_format(row, 4 + k as u16, amount as f64 / scale, &money)?;
        }
        row += 1;
    }
    sheet.write_string_with_format(row, 0, TOTAL, &bold)?;
    sheet.write_string_with_format(row, 1, format!("{} shipments", s.totals.shipments), &bold)?;
    for (k, amount) in amounts(&s.totals).into_iter().enumerate() {
        sheet.write_number_with_format(row, 4 + k as u16, amount as f64 / scale, &bold_money)?;
    }
    book.save_to_buffer()
}

// ---------------------------------------------------------------------------------------
// PDF
// ---------------------------------------------------------------------------------------

/// A4 landscape, in mm; y is measured from the top.
const WIDTH: f32 = 297.0;
const HEIGHT: f32 = 210.0;
const MARGIN: f32 = 14.0;
const ROW: f32 = 5.5;
/// Rows stop above this distance from the bottom edge; the footer sits below.
const BOTTOM: f32 = 18.0;
const SIZE: f32 = 8.5;
const PT_PER_MM: f32 = 72.0 / 25.4;

/// (heading, left x, width, right-aligned) per column.
const COLUMNS: [(&str, f32, f32, bool); 9] = [
    ("#", MARGIN, 9.0, false),
    ("Shipment", 24.0, 40.0, false),
    ("Order", 65.0, 36.0, false),
    ("Shipped (UTC)", 102.0, 30.0, false),
    ("Tracking number", 133.0, 46.0, false),
    ("Shipping fee", 180.0, 22.0, true),
    ("COD due", 204.0, 24.0, true),
    ("Collected", 230.0, 24.0, true),
    ("Outstanding", 256.0, 27.0, true),
];

/// The statement as a paginated PDF: a header with the carrier, month and totals on each
/// page, one row per shipment, and a totals row after the last.
pub fn pdf(s: &Statement) -> Vec<u8> {
    let digits = s.digits();
    let money = |a: i64| decimal(a, digits);
    let summary = format!(
        "{} shipments   Shipping fees {}   COD due {}   Collected {}   Outstanding {}   ({})",
        s.totals.shipments,
        money(s.totals.shipping_fees),
        money(s.totals.cod_due),
        money(s.totals.cod_collected),
        money(s.totals.cod_outstanding),
        s.currency,
    );
    let title = format!("Carrier statement {}", s.month);
    let rows: Vec<[String; 9]> = s
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            [
                (i + 1).to_string(),
                l.shipment_number.clone(),
                l.order_number.clone(),
                l.shipped_at.format("%Y-%m-%d %H:%M").to_string(),
                l.tracking_number.clone().unwrap_or_default(),
                money(l.shipping_fee),
                money(l.cod_due),
                money(l.cod_collected),
                money(l.cod_outstanding),
            ]
        })
        .collect();

    let new_page = |pages: &[Page]| {
        let mut page = Page::default();
        let continued = if pages.is_empty() { "" } else { " (continued)" };
        page.text(MARGIN, 20.0, 16.0, true, &format!("{title}{continued}"));
        page.text_right(
            WIDTH - MARGIN,
            20.0,
            12.0,
            true,
            &fit(&s.carrier.name, 110.0, 12.0),
        );
        page.text(
            MARGIN,
            27.0,
            9.0,
            false,
            &format!(
                "{} to {}, generated {}",
                s.from.format("%Y-%m-%d"),
                (s.to - chrono::Duration::days(1)).format("%Y-%m-%d"),
                s.generated_at.format("%Y-%m-%d %H:%M UTC")
            ),
        );
        page.text(MARGIN, 32.5, 9.0, false, &summary);
        page.rule(35.0, 1.0);
        for (heading, x, width, right) in COLUMNS {
            if right {
                page.text_right(x + width, 40.0, 8.0, true, heading);
            } else {
                page.text(x, 40.0, 8.0, true, heading);
            }
        }
        page.rule(42.0, 0.6);
        page
    };
    let mut pages: Vec<Page> = Vec::new();
    let mut page = new_page(&pages);
    let mut y = 42.0;
    let mut on_page = 0;
    for row in &rows {
        if on_page > 0 && y + ROW > HEIGHT - BOTTOM {
            pages.push(page);
            page = new_page(&pages);
            y = 42.0;
            on_page = 0;
        }
        page.row(y + ROW - 1.5, row, false);
        y += ROW;
        page.rule(y, 0.2);
        on_page += 1;
    }
    if rows.is_empty() {
        page.text(MARGIN, y + ROW, SIZE, false, "(no shipments this month)");
        y += ROW;
    }
    // The totals row stays with the rows: on a new page only if it does not fit.
    if y + ROW + 2.0 > HEIGHT - BOTTOM {
        pages.push(page);
        page = new_page(&pages);
        y = 42.0;
    }
    let totals: [String; 9] = [
        String::new(),
        TOTAL.to_owned(),
        format!("{} shipments", s.totals.shipments),
        String::new(),
        String::new(),
        money(s.totals.shipping_fees),
        money(s.totals.cod_due),
        money(s.totals.cod_collected),
        money(s.totals.cod_outstanding),
    ];
    page.rule(y + 0.6, 0.6);
    page.row(y + ROW, &totals, true);
    pages.push(page);

    let count = pages.len();
    let footer = format!("{} - {}", s.carrier.name, title);
    let pages: Vec<PdfPage> = pages
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            p.text(MARGIN, HEIGHT - 9.0, 8.0, false, &fit(&footer, 200.0, 8.0));
            p.text_right(
                WIDTH - MARGIN,
                HEIGHT - 9.0,
                8.0,
                false,
                &format!("Page {} of {count}", i + 1),
            );
            PdfPage::new(Mm(WIDTH), Mm(HEIGHT), p.ops)
        })
        .collect();
    let mut doc = PdfDocument::new(&printable(&format!("{} {title}", s.carrier.name)));
    doc.with_pages(pages);
    let mut warnings = Vec::new();
    doc.save(&PdfSaveOptions::default(), &mut warnings)
}

/// A page under construction.
#[derive(Default)]
struct Page {
    ops: Vec<Op>,
}

impl Page {
    fn point(x: f32, y: f32) -> Point {
        Point::new(Mm(x), Mm(HEIGHT - y))
    }

    /// Text with its baseline at `y`, starting at `x`.
    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let font = if bold {
            BuiltinFont::HelveticaBold
        } else {
            BuiltinFont::Helvetica
        };
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Self::point(x, y),
            },
            Op::ShowText {
                items: vec![TextItem::Text(printable(text))],
            },
            Op::EndTextSection,
        ]);
    }

    fn text_right(&mut self, right: f32, y: f32, size: f32, bold: bool, text: &str) {
        self.text(right - width(text, size), y, size, bold, text);
    }

    fn row(&mut self, baseline: f32, cells: &[String; 9], bold: bool) {
        for ((_, x, w, right), cell) in COLUMNS.iter().zip(cells) {
            let cell = fit(cell, *w, SIZE);
            if *right {
                self.text_right(x + w, baseline, SIZE, bold, &cell);
            } else {
                self.text(*x, baseline, SIZE, bold, &cell);
            }
        }
    }

    /// A horizontal line across the page, `thickness` points thick.
    fn rule(&mut self, y: f32, thickness: f32) {
        let points = [MARGIN, WIDTH - MARGIN]
            .map(|x| LinePoint {
                p: Self::point(x, y),
                bezier: false,
            })
            .to_vec();
        self.ops.extend([
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine {
                line: Line {
                    points,
                    is_closed: false,
                },
            },
        ]);
    }
}

/// About the width in mm of `text` in Helvetica (bold or not) at `size` pt, erring wide:
/// digits and separators at their real widths, lower case as bold's widest usual letter,
/// anything else as a wide capital (0.78 em). Cells only need not overlap.
fn width(text: &str, size: f32) -> f32 {
    let em: f32 = printable(text)
        .chars()
        .map(|c| match c {
            '0'..='9' => 0.556,
            '.' | ',' | ' ' | ':' => 0.278,
            '-' | '(' | ')' => 0.333,
            'a'..='z' => 0.611,
            _ => 0.78,
        })
        .sum();
    em * size / PT_PER_MM
}

/// `text` cut to `max` mm, ending in "..." when cut.
fn fit(text: &str, max: f32, size: f32) -> String {
    if width(text, size) <= max {
        return text.to_owned();
    }
    let mut cut: Vec<char> = text.chars().collect();
    while !cut.is_empty() {
        cut.pop();
        let candidate = format!("{}...", cut.iter().collect::<String>());
        if width(&candidate, size) <= max {
            return candidate;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::{StatementCarrier, StatementLine};
    use super::*;

    fn statement(lines: usize) -> Statement {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 3, 9, 30, 0).unwrap();
        let lines: Vec<StatementLine> = (0..lines)
            .map(|i| StatementLine {
                shipment_id: i as i64,
                shipment_number: format!("SO-20261103-{i:04}-S1"),
                order_id: i as i64,
                order_number: format!("SO-20261103-{i:04}"),
                shipped_at: at,
                tracking_number: Some(format!("SF{i:010}")),
                cash_on_delivery: true,
                shipping_fee: 1000,
                cod_due: 12850,
                cod_collected: 0,
                cod_outstanding: 12850,
            })
            .collect();
        let n = lines.len() as i64;
        Statement {
            carrier: StatementCarrier {
                id: 1,
                code: "sf".into(),
                name: "SF Express".into(),
            },
            month: "2026-11".into(),
            currency: "CNY".into(),
            from: chrono::Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            to: chrono::Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            generated_at: at,
            lines,
            totals: StatementTotals {
                shipments: n,
                shipping_fees: 1000 * n,
                cod_due: 12850 * n,
                cod_collected: 0,
                cod_outstanding: 12850 * n,
            },
        }
    }

    fn pdf_pages(bytes: &[u8]) -> Vec<String> {
        let doc = lopdf::Document::load_mem(bytes).unwrap();
        doc.get_pages()
            .keys()
            .map(|&n| doc.extract_text(&[n]).unwrap())
            .collect()
    }

    #[test]
    fn a_long_statement_spans_pages_with_every_row_once() {
        let s = statement(70);
        let bytes = pdf(&s);
        assert!(bytes.starts_with(b"%PDF-"));
        let pages = pdf_pages(&bytes);
        assert!(pages.len() >= 3, "{} pages", pages.len());
        for (i, page) in pages.iter().enumerate() {
            assert!(page.contains("SF Express"), "page {i}");
            assert!(page.contains("Outstanding 8995.00"), "page {i}: {page}");
            assert!(page.contains(&format!("Page {} of {}", i + 1, pages.len())));
        }
        let all = pages.join("\n");
        for l in &s.lines {
            assert_eq!(all.matches(l.shipment_number.as_str()).count(), 1);
        }
        assert!(pages.last().unwrap().contains(TOTAL));
    }

    #[test]
    fn an_empty_month_still_has_a_page_with_totals() {
        let pages = pdf_pages(&pdf(&statement(0)));
        assert_eq!(pages.len(), 1);
        assert!(pages[0].contains("no shipments"));
        assert!(pages[0].contains("0 shipments"));
    }

    #[test]
    fn csv_has_headings_rows_and_totals() {
        let text = String::from_utf8(csv(&statement(2)).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], HEADINGS.join(","));
        assert_eq!(
            lines[1],
            "SO-20261103-0000-S1,SO-20261103-0000,2026-11-03 09:30:00,SF0000000000,10.00,128.50,0.00,128.50"
        );
        assert_eq!(lines[3], "Total,2 shipments,,,20.00,257.00,0.00,257.00");
    }

    #[test]
    fn long_cells_are_cut_to_their_column() {
        let cut = fit("SO-20261103-0000-S1-and-then-some-more", 30.0, SIZE);
        assert!(cut.ends_with("...") && width(&cut, SIZE) <= 30.0);
    }
}
