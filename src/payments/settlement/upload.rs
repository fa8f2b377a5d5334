//! Reading a carrier's COD remittance file (CSV or XLSX) into rows, without trusting it.
//!
//! The file needs a header row naming the columns `tracking_number` and `amount`; a
//! `reference` column (the carrier's own id of the line) is kept when present, any other
//! column is ignored, and the order of columns does not matter. Header names are matched
//! case-insensitively, with spaces and dashes read as `_` ("Tracking Number" works).
//!
//! Amounts are decimals in the currency's major unit, as carriers write them: `128.50`,
//! `128.5` or `128` all mean 12850 fen. Integer minor units are deliberately *not*
//! accepted: `12850` would be read as 12,850 yuan, and the mismatch shows up line by line
//! instead of settling wrong orders. Spreadsheet number cells are taken at their value,
//! rounded to the currency's digits when they are within a float's noise of it.
//!
//! Rows are numbered as a spreadsheet (or a text editor) shows them, the header being row
//! 1 when it is on the first line; problems name them as `rows[N].amount`. Blank rows are
//! skipped. The whole file is refused (422) when any row is bad, so a remittance is either
//! imported in full or not at all.

use std::collections::BTreeMap;
use std::io::Cursor;

use calamine::{DataRef, Reader, Xlsx};

use super::parse_amount;
use crate::platform::error::FieldError;
use crate::platform::{ApiError, ApiResult};

/// At most this many data rows per file: a month of one carrier's COD parcels for a shop
/// this size, and a bound on the work one request may ask for.
pub const MAX_ROWS: usize = 10_000;
/// A 10,000-row CSV is well under 1 MiB; anything much larger is not a remittance.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Field errors listed in one problem; the rest are counted in its detail.
const MAX_ERRORS: usize = 100;
/// Spreadsheet columns beyond this are ignored (a remittance has a handful).
const MAX_COLUMNS: u32 = 64;
const MAX_TRACKING: usize = 64;
const MAX_REFERENCE: usize = 200;

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The formats a remittance may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Csv,
    Xlsx,
}

impl FileKind {
    /// By the file name's extension, else by the part's declared content type.
    pub fn detect(file_name: Option<&str>, content_type: Option<&str>) -> Option<Self> {
        let extension = file_name
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase());
        match extension.as_deref() {
            Some("csv") => return Some(Self::Csv),
            Some("xlsx") => return Some(Self::Xlsx),
            _ => {}
        }
        let mime = content_type?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "text/csv" | "application/csv" => Some(Self::Csv),
            XLSX_TYPE => Some(Self::Xlsx),
            _ => None,
        }
    }
}

/// One line of the carrier's remittance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemittanceRow {
    /// Where it is in the file (1-based, as a spreadsheet numbers rows).
    pub row: i64,
    pub tracking_number: String,
    /// Minor units.
    pub amount: i64,
    pub reference: Option<String>,
}

/// A cell as read from either format.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Number(f64),
    /// A spreadsheet error value such as `#N/A`.
    Error(String),
}

impl Cell {
    fn is_blank(&self) -> bool {
        matches!(self, Cell::Text(t) if t.trim().is_empty())
    }

    fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.trim().to_owned(),
            // `Display` of f64 never uses an exponent: 1234567890123 stays whole.
            Cell::Number(n) => n.to_string(),
            Cell::Error(e) => e.clone(),
        }
    }
}

/// Row number and cells, blank rows left out.
type Rows = Vec<(i64, Vec<Cell>)>;

/// Reads and checks the whole file; `digits` are the currency's minor digits.
pub fn parse(kind: FileKind, bytes: &[u8], digits: u32) -> ApiResult<Vec<RemittanceRow>> {
    let rows = match kind {
        FileKind::Csv => csv_rows(bytes)?,
        FileKind::Xlsx => xlsx_rows(bytes)?,
    };
    check(rows, digits)
}

fn too_many_rows() -> ApiError {
    ApiError::invalid("rows", format!("a file may hold at most {MAX_ROWS} rows"))
}

fn unreadable(message: impl Into<String>) -> ApiError {
    ApiError::invalid("file", message)
}

fn csv_rows(bytes: &[u8]) -> ApiResult<Rows> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| unreadable("the CSV file is not UTF-8 text; save it as \"CSV UTF-8\""))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Spreadsheets in some locales save "CSV" with semicolons or tabs: go by the header.
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .find(|&d| first.as_bytes().contains(&d))
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Rows::new();
    for record in reader.records() {
        let record = record.map_err(|e| unreadable(format!("the CSV file is malformed: {e}")))?;
        let row = record
            .position()
            .map_or(rows.len() as u64 + 1, |p| p.line()) as i64;
        let cells: Vec<Cell> = record.iter().map(|f| Cell::Text(f.to_owned())).collect();
        if cells.iter().all(Cell::is_blank) {
            continue;
        }
        rows.push((row, cells));
        // The header plus MAX_ROWS: one more is already too many, read no further.
        if rows.len() > MAX_ROWS + 1 {
            return Err(too_many_rows());
        }
    }
    Ok(rows)
}

/// The first worksheet's cells, streamed so a huge sheet is refused without being held.
fn xlsx_rows(bytes: &[u8]) -> ApiResult<Rows> {
    let not_xlsx = |e: calamine::XlsxError| {
        tracing::debug!(error = %e, "unreadable xlsx upload");
        unreadable("the file is not a readable .xlsx workbook")
    };
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(not_xlsx)?;
    let Some(sheet) = book.sheet_names().into_iter().next() else {
        return Ok(Rows::new());
    };
    let mut cells = book.worksheet_cells_reader(&sheet).map_err(not_xlsx)?;
    let mut by_row: BTreeMap<u32, Vec<(u32, Cell)>> = BTreeMap::new();
    while let Some(cell) = cells.next_cell().map_err(not_xlsx)? {
        let (row, column) = cell.get_position();
        if column >= MAX_COLUMNS {
            continue;
        }
        let value = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::Int(i) => Cell::Number(*i as f64),
            DataRef::Float(f) => Cell::Number(*f),
            DataRef::String(s) => Cell::Text(s.clone()),
            DataRef::SharedString(s) => Cell::Text((*s).to_owned()),
            DataRef::Bool(b) => Cell::Text(b.to_string()),
            DataRef::DateTime(d) => Cell::Text(d.to_string()),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s.clone()),
            DataRef::Error(e) => Cell::Error(e.to_string()),
        };
        if value.is_blank() {
            continue;
        }
        by_row.entry(row).or_default().push((column, value));
        if by_row.len() > MAX_ROWS + 1 {
            return Err(too_many_rows());
        }
    }
    Ok(by_row
        .into_iter()
        .map(|(row, cells)| {
            let width = cells
                .iter()
                .map(|(c, _)| *c as usize + 1)
                .max()
                .unwrap_or(0);
            let mut line = vec![Cell::Text(String::new()); width];
            for (column, value) in cells {
                line[column as usize] = value;
            }
            (i64::from(row) + 1, line)
        })
        .collect())
}

/// "Tracking Number" → `tracking_number`.
fn column_name(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .to_lowercase()
        .replace([' ', '-'], "_")
}

fn check(rows: Rows, digits: u32) -> ApiResult<Vec<RemittanceRow>> {
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(ApiError::invalid(
            "file",
            "the file is empty; it needs a header row with tracking_number and amount",
        ));
    };
    let names: Vec<String> = header.iter().map(|c| column_name(&c.text())).collect();
    let find = |name: &str| names.iter().position(|n| n == name);
    let mut errors = Vec::new();
    let mut missing = |name: &str| {
        errors.push(FieldError {
            field: format!("columns.{name}"),
            message: format!("the header row has no `{name}` column"),
        })
    };
    let tracking = find("tracking_number");
    let amount = find("amount");
    if tracking.is_none() {
        missing("tracking_number");
    }
    if amount.is_none() {
        missing("amount");
    }
    let (Some(tracking), Some(amount)) = (tracking, amount) else {
        return Err(ApiError::validation(errors));
    };
    let reference = find("reference");

    let mut out = Vec::new();
    let mut bad = 0usize;
    let mut error = |row: i64, field: &str, message: String| {
        bad += 1;
        if errors.len() < MAX_ERRORS {
            errors.push(FieldError {
                field: format!("rows[{row}].{field}"),
                message,
            });
        }
    };
    for (row, cells) in rows {
        let cell = |i: usize| cells.get(i).cloned().unwrap_or(Cell::Text(String::new()));
        let tracking_number = match cell(tracking) {
            Cell::Error(e) => {
                error(
                    row,
                    "tracking_number",
                    format!("the cell holds an error ({e})"),
                );
                None
            }
            c => {
                let text = c.text();
                if text.is_empty() {
                    error(row, "tracking_number", "must not be empty".into());
                    None
                } else if text.chars().count() > MAX_TRACKING {
                    error(
                        row,
                        "tracking_number",
                        format!("at most {MAX_TRACKING} characters"),
                    );
                    None
                } else {
                    Some(text)
                }
            }
        };
        let parsed = match cell(amount) {
            Cell::Number(n) => number_amount(n, digits),
            Cell::Text(t) => parse_amount(t.trim(), digits),
            Cell::Error(e) => Err(format!("the cell holds an error ({e})")),
        };
        let parsed = match parsed {
            Ok(a) => Some(a),
            Err(message) => {
                error(row, "amount", message);
                None
            }
        };
        let line_reference = reference.map(|i| cell(i).text()).filter(|r| !r.is_empty());
        if line_reference
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REFERENCE)
        {
            error(
                row,
                "reference",
                format!("at most {MAX_REFERENCE} characters"),
            );
        }
        if let (Some(tracking_number), Some(amount)) = (tracking_number, parsed) {
            out.push(RemittanceRow {
                row,
                tracking_number,
                amount,
                reference: line_reference,
            });
        }
    }
    if bad > 0 {
        let shown = errors.len();
        if bad > shown {
            errors.push(FieldError {
                field: "rows".into(),
                message: format!("{} more invalid cells are not listed", bad - shown),
            });
        }
        return Err(ApiError::validation(errors));
    }
    if out.is_empty() {
        return Err(ApiError::invalid(
            "rows",
            "the file has no rows under its header",
        ));
    }
    if out.len() > MAX_ROWS {
        return Err(too_many_rows());
    }
    Ok(out)
}

/// A spreadsheet number cell in major units → minor units.
fn number_amount(value: f64, digits: u32) -> Result<i64, String> {
    let scaled = value * 10f64.powi(digits as i32);
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        return Err("is not a sensible amount".into());
    }
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return Err(format!("has more than {digits} decimal places"));
    }
    if rounded < 0.0 {
        return Err("must not be negative".into());
    }
    Ok(rounded as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> ApiResult<Vec<RemittanceRow>> {
        parse(FileKind::Csv, text.as_bytes(), 2)
    }

    fn fields(err: ApiError) -> Vec<String> {
        err.problem().errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn reads_columns_in_any_order_with_extras_and_blank_lines() {
        let rows = csv(
            "\u{feff}Amount,Note,Tracking Number,reference\n128.50,x,SF100,R1\n\n ,, \n7,,SF200,\n",
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                RemittanceRow {
                    row: 2,
                    tracking_number: "SF100".into(),
                    amount: 12850,
                    reference: Some("R1".into()),
                },
                RemittanceRow {
                    row: 5,
                    tracking_number: "SF200".into(),
                    amount: 700,
                    reference: None,
                },
            ]
        );
        let rows = csv("tracking_number;amount\nSF1;0.5\n").unwrap();
        assert_eq!(rows[0].amount, 50);
    }

    #[test]
    fn names_missing_columns_and_bad_rows() {
        assert_eq!(
            fields(csv("tracking_number,total\nSF1,1.00\n").unwrap_err()),
            ["columns.amount"]
        );
        let err =
            csv("tracking_number,amount\nSF1,1.00\nSF2,abc\n,3\nSF4,1.234\nSF5,-1\n").unwrap_err();
        assert_eq!(err.status(), 422);
        assert_eq!(
            fields(err),
            [
                "rows[3].amount",
                "rows[4].tracking_number",
                "rows[5].amount",
                "rows[6].amount"
            ]
        );
        assert_eq!(fields(csv("").unwrap_err()), ["file"]);
        assert_eq!(
            fields(csv("tracking_number,amount\n").unwrap_err()),
            ["rows"]
        );
        assert_eq!(
            fields(parse(FileKind::Csv, b"tracking_number,amount\n\xff,1\n", 2).unwrap_err()),
            ["file"]
        );
    }

    #[test]
    fn refuses_more_than_the_row_limit() {
        let mut text = String::from("tracking_number,amount\n");
        for i in 0..=MAX_ROWS {
            text.push_str(&format!("SF{i},1.00\n"));
        }
        assert_eq!(fields(csv(&text).unwrap_err()), ["rows"]);
    }

    #[test]
    fn spreadsheet_numbers_round_within_float_noise() {
        assert_eq!(number_amount(128.5, 2), Ok(12850));
        assert_eq!(number_amount(0.1 + 0.2, 2), Ok(30));
        assert!(number_amount(1.005_5, 2).is_err());
        assert!(number_amount(-3.0, 2).is_err());
        assert!(number_amount(f64::NAN, 2).is_err());
    }

    #[test]
    fn reads_an_xlsx_sheet() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "Tracking Number").unwrap();
        sheet.write_string(0, 2, "amount").unwrap();
        sheet.write_number(1, 0, 1234567890123.0).unwrap();
        sheet.write_number(1, 2, 99.9).unwrap();
        sheet.write_string(3, 0, "SF2").unwrap();
        sheet.write_string(3, 2, "10").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let rows = parse(FileKind::Xlsx, &bytes, 2).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].tracking_number, "1234567890123");
        assert_eq!((rows[0].row, rows[0].amount), (2, 9990));
        assert_eq!((rows[1].row, rows[1].amount), (4, 1000));
        assert_eq!(
            fields(parse(FileKind::Xlsx, b"not a zip", 2).unwrap_err()),
            ["file"]
        );
    }

    #[test]
    fn detects_the_kind() {
        assert_eq!(
            FileKind::detect(Some("June.CSV"), None),
            Some(FileKind::Csv)
        );
        assert_eq!(
            FileKind::detect(Some("blob"), Some(XLSX_TYPE)),
            Some(FileKind::Xlsx)
        );
        assert_eq!(FileKind::detect(Some("x.xls"), Some("text/plain")), None);
    }
}
