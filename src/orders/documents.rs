//! Warehouse documents as PDF (R5.3): picking lists, packing slips and carrier labels.
//!
//! Pure functions: the caller hands in every value that is printed (numbers,
//! dates, addresses) and gets the PDF bytes back. Nothing here reads the
//! database or the clock, so the same input always lays out the same pages.
//!
//! Text is set in the PDF's builtin Helvetica, so no font file is embedded and
//! a document stays a few kilobytes. Builtin fonts are WinAnsi-encoded: they
//! cover ASCII and Western European letters only. Every other character
//! (Chinese, Cyrillic, Greek, emoji...) prints as `?`; see [`printable`]. A
//! shop that ships to such addresses needs an embedded Unicode font instead.
//!
//! The carrier label carries the tracking number as a Code 128 barcode drawn
//! from filled rectangles; [`code128`] is the encoder.

use chrono::{DateTime, Utc};
use printpdf::{
    BuiltinFont, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rect, TextItem,
};

/// A postal address as printed on a slip or label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub recipient: String,
    pub phone: String,
    /// Street, city/region path, postal code..., one printed line each.
    pub lines: Vec<String>,
}

/// The goods to pick for a batch of orders, one line per SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickingList {
    /// e.g. "PL-20261123-0001".
    pub number: String,
    pub generated_at: DateTime<Utc>,
    pub lines: Vec<PickLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickLine {
    pub sku_code: String,
    pub title: String,
    pub quantity: i64,
    /// Numbers of the orders that need this SKU.
    pub orders: Vec<String>,
}

/// What goes into one parcel, to be put in the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackingSlip {
    pub order_number: String,
    pub placed_at: DateTime<Utc>,
    pub ship_to: Address,
    pub lines: Vec<SlipLine>,
    /// The customer's note on the order, if any.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipLine {
    pub sku_code: String,
    pub title: String,
    pub quantity: i64,
}

/// A 100 x 150 mm shipping label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierLabel {
    pub carrier: String,
    pub service: String,
    /// Printed as a Code 128 barcode and as text under it.
    pub tracking_number: String,
    pub order_number: String,
    pub ship_from: Address,
    pub ship_to: Address,
    pub weight_grams: i64,
}

// ---------------------------------------------------------------------------
// Page geometry (millimetres; y is measured from the top of the page)
// ---------------------------------------------------------------------------

const A4_WIDTH: f32 = 210.0;
const A4_HEIGHT: f32 = 297.0;
const MARGIN: f32 = 15.0;
/// Tables stop above this distance from the bottom edge; the footer sits below.
const BOTTOM: f32 = 18.0;

const LABEL_WIDTH: f32 = 100.0;
const LABEL_HEIGHT: f32 = 150.0;

const TABLE_SIZE: f32 = 9.0;
const TABLE_LEADING: f32 = 4.0;
const ROW_PADDING: f32 = 2.0;
/// A title cell wraps to at most this many lines; the last one ends in "...".
const MAX_TITLE_LINES: usize = 3;
/// A picking line's order list wraps to at most this many lines.
const MAX_ORDER_LINES: usize = 6;

const PT_PER_MM: f32 = 72.0 / 25.4;

/// Renders a picking list on A4 pages: one row per SKU with a tick box, the
/// SKU code, title, quantity and the orders that need it. Rows that do not fit
/// continue on further pages, each repeating the list's header.
pub fn picking_list_pdf(list: &PickingList) -> Vec<u8> {
    let units: i64 = list.lines.iter().map(|l| l.quantity).sum();
    let generated = list.generated_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let summary = format!(
        "{}, {}",
        count(list.lines.len() as i64, "line"),
        count(units, "unit")
    );
    let columns = [
        Column::new("#", MARGIN, 8.0, Cell::Text),
        Column::new("", 24.0, 6.0, Cell::Tick),
        Column::new("SKU", 32.0, 36.0, Cell::Text),
        Column::new("Title", 70.0, 58.0, Cell::Wrap(MAX_TITLE_LINES)),
        Column::new("Qty", 130.0, 14.0, Cell::Right),
        Column::new("Orders", 148.0, 47.0, Cell::List(MAX_ORDER_LINES)),
    ];
    let rows: Vec<Vec<String>> = list
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            vec![
                (i + 1).to_string(),
                String::new(),
                line.sku_code.clone(),
                line.title.clone(),
                line.quantity.to_string(),
                line.orders.join("\n"),
            ]
        })
        .collect();
    let header = |canvas: &mut Canvas, page: usize| {
        let title = if page == 0 {
            "Picking list"
        } else {
            "Picking list (continued)"
        };
        document_header(
            canvas,
            title,
            &list.number,
            &format!("Generated {generated}"),
            &summary,
        )
    };
    let canvases = table_pages(
        &columns,
        &rows,
        header,
        &format!("Picking list {}", list.number),
    );
    save(&format!("Picking list {}", list.number), canvases)
}

/// Renders a packing slip on A4 pages: the order number and date, the
/// ship-to address and the customer's note on the first page, then one row
/// per line with a tick box. Long orders continue on further pages, each
/// repeating the slip's header.
pub fn packing_slip_pdf(slip: &PackingSlip) -> Vec<u8> {
    let units: i64 = slip.lines.iter().map(|l| l.quantity).sum();
    let placed = slip.placed_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let summary = format!(
        "{}, {}",
        count(slip.lines.len() as i64, "line"),
        count(units, "item")
    );
    let order = format!("Order {}", slip.order_number);
    let columns = [
        Column::new("#", MARGIN, 8.0, Cell::Text),
        Column::new("SKU", 24.0, 40.0, Cell::Text),
        Column::new("Title", 65.0, 95.0, Cell::Wrap(MAX_TITLE_LINES)),
        Column::new("Qty", 162.0, 14.0, Cell::Right),
        Column::new("Packed", 180.0, 15.0, Cell::Tick),
    ];
    let rows: Vec<Vec<String>> = slip
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            vec![
                (i + 1).to_string(),
                line.sku_code.clone(),
                line.title.clone(),
                line.quantity.to_string(),
                String::new(),
            ]
        })
        .collect();
    let header = |canvas: &mut Canvas, page: usize| {
        if page > 0 {
            return document_header(
                canvas,
                "Packing slip (continued)",
                &order,
                &format!("Placed {placed}"),
                &summary,
            );
        }
        let top = document_header(
            canvas,
            "Packing slip",
            &order,
            &format!("Placed {placed}"),
            &summary,
        );
        let mut y = top + 3.0;
        canvas.text(MARGIN, y, 8.0, Font::Bold, "SHIP TO");
        y += 5.5;
        let address_bottom = address_block(canvas, MARGIN, y, 85.0, &slip.ship_to, 11.0, 10.0, 8);
        let mut note_bottom = y;
        if let Some(note) = slip.note.as_deref().filter(|n| !n.trim().is_empty()) {
            let x = 110.0;
            canvas.text(x, top + 3.0, 8.0, Font::Bold, "NOTE");
            let mut ny = y;
            for line in wrap(note, 85.0, 9.0, Font::Regular, 8) {
                canvas.text(x, ny, 9.0, Font::Regular, &line);
                ny += 4.2;
            }
            note_bottom = ny;
        }
        address_bottom.max(note_bottom) + 4.0
    };
    let canvases = table_pages(
        &columns,
        &rows,
        header,
        &format!("Packing slip, order {}", slip.order_number),
    );
    save(&format!("Packing slip {}", slip.order_number), canvases)
}

/// Renders a 100 x 150 mm carrier label: carrier and service, sender, a large
/// recipient block, order number and weight, and the tracking number as a
/// Code 128 barcode (with 10-module quiet zones) with the number in text under it.
///
/// A tracking number that Code 128 set B cannot encode (anything outside
/// printable ASCII) is printed as text only, with a note where the barcode would be.
pub fn carrier_label_pdf(label: &CarrierLabel) -> Vec<u8> {
    let mut c = Canvas::new(LABEL_WIDTH, LABEL_HEIGHT);
    let left = 5.0;
    let right = LABEL_WIDTH - 5.0;
    let width = right - left;

    // Carrier and service.
    c.text(
        left,
        12.0,
        16.0,
        Font::Bold,
        &fit(&label.carrier, width * 0.55, 16.0, Font::Bold),
    );
    c.text_right(
        right,
        12.0,
        10.0,
        Font::Regular,
        &fit(&label.service, width * 0.43, 10.0, Font::Regular),
    );
    c.rule(left, right, 15.5, 1.5);

    // Sender, small.
    c.text(left, 20.0, 7.0, Font::Bold, "FROM");
    address_block(&mut c, left, 24.0, width, &label.ship_from, 8.0, 8.0, 4);
    c.rule(left, right, 47.0, 0.75);

    // Recipient, large.
    c.text(left, 52.0, 8.0, Font::Bold, "TO");
    address_block(&mut c, left, 58.5, width, &label.ship_to, 13.0, 11.0, 5);
    c.rule(left, right, 96.0, 0.75);

    // Order and weight.
    let order = format!("Order {}", label.order_number);
    c.text(
        left,
        101.5,
        9.0,
        Font::Regular,
        &fit(&order, width * 0.6, 9.0, Font::Regular),
    );
    c.text_right(
        right,
        101.5,
        9.0,
        Font::Bold,
        &format_weight(label.weight_grams),
    );

    // Tracking number: barcode, then the number in text under it.
    let bars_top = 106.0;
    let bars_height = 26.0;
    match code128(&label.tracking_number) {
        Ok(modules) => draw_barcode(
            &mut c,
            &modules,
            3.0,
            LABEL_WIDTH - 3.0,
            bars_top,
            bars_height,
        ),
        Err(_) => c.text_center(
            LABEL_WIDTH / 2.0,
            bars_top + bars_height / 2.0,
            8.0,
            Font::Regular,
            "(no barcode: the tracking number is not printable ASCII)",
        ),
    }
    let tracking = fit(&label.tracking_number, width, 12.0, Font::Bold);
    c.text_center(
        LABEL_WIDTH / 2.0,
        bars_top + bars_height + 6.0,
        12.0,
        Font::Bold,
        &tracking,
    );
    c.text_center(
        LABEL_WIDTH / 2.0,
        LABEL_HEIGHT - 5.0,
        6.0,
        Font::Regular,
        "TRACKING NUMBER",
    );

    save(&format!("Label {}", label.tracking_number), vec![c])
}

/// Replaces every character the builtin fonts cannot show with `?`.
///
/// The PDF builtin fonts (Helvetica here) use WinAnsiEncoding: printable
/// ASCII, Latin-1 (`é`, `ß`, `ñ`...) and a few typographic signs (`€`, `–`,
/// `“`...). Anything else — Chinese, Cyrillic, Greek, emoji — becomes `?`, and
/// control characters (tabs, newlines) become spaces. Printing such text
/// properly needs an embedded Unicode font, which this module does not do yet.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if in_win_ansi(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The characters WinAnsi puts at 0x80-0x9F, beyond ASCII and Latin-1.
const WIN_ANSI_EXTRA: &str = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ";

fn in_win_ansi(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0xFF) || WIN_ANSI_EXTRA.contains(c)
}

// ---------------------------------------------------------------------------
// Code 128
// ---------------------------------------------------------------------------

/// Element widths (bar, space, bar, space, bar, space) of the Code 128
/// symbols, indexed by symbol value; 103-105 are Start A/B/C and 106 is Stop,
/// the only symbol with seven elements (13 modules; the others have 11).
const CODE128_PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];
const CODE128_START_B: u8 = 104;
const CODE128_STOP: u8 = 106;

/// Encodes `data` as Code 128 (code set B: printable ASCII, space to `~`).
///
/// Returns the module widths of the symbol, bars and spaces alternating and
/// starting with a bar: Start B, one symbol per character, the modulo-103
/// checksum and Stop — `11 * n + 35` modules for `n` characters. Quiet zones
/// are not included; leave at least 10 modules blank on each side.
pub fn code128(data: &str) -> Result<Vec<u8>, String> {
    let values = code128_values(data)?;
    Ok(values
        .iter()
        .flat_map(|&v| CODE128_PATTERNS[usize::from(v)].bytes().map(|b| b - b'0'))
        .collect())
}

/// The symbol values of `data` in code set B: start, data, checksum, stop.
fn code128_values(data: &str) -> Result<Vec<u8>, String> {
    if data.is_empty() {
        return Err("nothing to encode".to_string());
    }
    let mut values = Vec::with_capacity(data.len() + 3);
    values.push(CODE128_START_B);
    for (i, c) in data.chars().enumerate() {
        if !(' '..='~').contains(&c) {
            return Err(format!(
                "character {c:?} at position {} is not printable ASCII, which Code 128 set B cannot encode",
                i + 1
            ));
        }
        values.push(c as u8 - b' ');
    }
    // The start symbol weighs 1, the k-th data symbol weighs k.
    let sum: usize = values
        .iter()
        .enumerate()
        .map(|(i, &v)| i.max(1) * usize::from(v))
        .sum();
    values.push((sum % 103) as u8);
    values.push(CODE128_STOP);
    Ok(values)
}

/// Draws module widths as filled bars across `[left, right]`, centred, with a
/// module as wide as fits (at most 0.5 mm) after 10-module quiet zones.
fn draw_barcode(c: &mut Canvas, modules: &[u8], left: f32, right: f32, top: f32, height: f32) {
    const QUIET: f32 = 10.0;
    let total: u32 = modules.iter().map(|&m| u32::from(m)).sum();
    let span = total as f32 + 2.0 * QUIET;
    let module = ((right - left) / span).min(0.5);
    let mut x = left + ((right - left) - span * module) / 2.0 + QUIET * module;
    for (i, &m) in modules.iter().enumerate() {
        let w = f32::from(m) * module;
        if i % 2 == 0 {
            c.fill_rect(x, top, w, height);
        }
        x += w;
    }
}

// ---------------------------------------------------------------------------
// Tables and pagination
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    /// One line, cut with "..." if too wide.
    Text,
    /// One line, right-aligned (quantities).
    Right,
    /// Word-wrapped to at most this many lines.
    Wrap(usize),
    /// Newline-separated items packed onto lines, never split, at most this many lines.
    List(usize),
    /// An empty box to tick by hand; the cell's text is ignored.
    Tick,
}

struct Column {
    heading: &'static str,
    x: f32,
    width: f32,
    cell: Cell,
}

impl Column {
    fn new(heading: &'static str, x: f32, width: f32, cell: Cell) -> Self {
        Column {
            heading,
            x,
            width,
            cell,
        }
    }

    fn lines(&self, text: &str) -> Vec<String> {
        match self.cell {
            Cell::Text | Cell::Right => vec![fit(text, self.width, TABLE_SIZE, Font::Regular)],
            Cell::Wrap(max) => wrap(text, self.width, TABLE_SIZE, Font::Regular, max),
            Cell::List(max) => pack(text.split('\n'), self.width, TABLE_SIZE, max),
            Cell::Tick => Vec::new(),
        }
    }
}

/// Lays `rows` out under `columns` on as many A4 pages as they need.
/// `header` draws a page's header (it is told the page's index) and returns
/// where the column headings go; every page then gets "Page i of n" in the footer.
fn table_pages(
    columns: &[Column],
    rows: &[Vec<String>],
    header: impl Fn(&mut Canvas, usize) -> f32,
    footer: &str,
) -> Vec<Canvas> {
    let new_page = |pages: &[Canvas]| {
        let mut canvas = Canvas::new(A4_WIDTH, A4_HEIGHT);
        let top = header(&mut canvas, pages.len());
        let y = column_headings(&mut canvas, columns, top);
        (canvas, y)
    };
    let mut pages = Vec::new();
    let (mut canvas, mut y) = new_page(&pages);
    let mut rows_on_page = 0;
    for row in rows {
        let cells: Vec<Vec<String>> = columns
            .iter()
            .zip(row)
            .map(|(column, text)| column.lines(text))
            .collect();
        let line_count = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let height = line_count as f32 * TABLE_LEADING + ROW_PADDING;
        if rows_on_page > 0 && y + height > A4_HEIGHT - BOTTOM {
            pages.push(canvas);
            (canvas, y) = new_page(&pages);
            rows_on_page = 0;
        }
        let baseline = y + ROW_PADDING / 2.0 + TABLE_LEADING - 1.0;
        for (column, lines) in columns.iter().zip(&cells) {
            match column.cell {
                Cell::Tick => canvas.stroke_rect(column.x + 0.5, baseline - 3.2, 3.6, 3.6, 0.6),
                Cell::Right => {
                    for (k, line) in lines.iter().enumerate() {
                        let ly = baseline + k as f32 * TABLE_LEADING;
                        canvas.text_right(
                            column.x + column.width,
                            ly,
                            TABLE_SIZE,
                            Font::Regular,
                            line,
                        );
                    }
                }
                _ => {
                    for (k, line) in lines.iter().enumerate() {
                        let ly = baseline + k as f32 * TABLE_LEADING;
                        canvas.text(column.x, ly, TABLE_SIZE, Font::Regular, line);
                    }
                }
            }
        }
        y += height;
        canvas.rule(MARGIN, A4_WIDTH - MARGIN, y, 0.25);
        rows_on_page += 1;
    }
    if rows.is_empty() {
        canvas.text(MARGIN, y + 5.0, TABLE_SIZE, Font::Regular, "(no lines)");
    }
    pages.push(canvas);

    let total = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        let y = A4_HEIGHT - 10.0;
        page.text(
            MARGIN,
            y,
            8.0,
            Font::Regular,
            &fit(footer, 120.0, 8.0, Font::Regular),
        );
        page.text_right(
            A4_WIDTH - MARGIN,
            y,
            8.0,
            Font::Regular,
            &format!("Page {} of {}", i + 1, total),
        );
    }
    pages
}

/// Title and reference on the first line, two details under them and a rule;
/// returns the y below the rule.
fn document_header(
    c: &mut Canvas,
    title: &str,
    reference: &str,
    detail: &str,
    summary: &str,
) -> f32 {
    let right = A4_WIDTH - MARGIN;
    c.text(MARGIN, 22.0, 18.0, Font::Bold, title);
    let title_width = text_width(title, 18.0, Font::Bold);
    let room = (right - MARGIN - title_width - 8.0).max(30.0);
    c.text_right(
        right,
        22.0,
        12.0,
        Font::Bold,
        &fit(reference, room, 12.0, Font::Bold),
    );
    c.text(MARGIN, 29.0, 9.0, Font::Regular, detail);
    c.text_right(right, 29.0, 9.0, Font::Regular, summary);
    c.rule(MARGIN, right, 32.0, 1.0);
    36.0
}

/// Column headings and a rule under them; returns the y where rows start.
fn column_headings(c: &mut Canvas, columns: &[Column], top: f32) -> f32 {
    let baseline = top + 3.5;
    for column in columns {
        if column.cell == Cell::Right {
            c.text_right(
                column.x + column.width,
                baseline,
                8.0,
                Font::Bold,
                column.heading,
            );
        } else {
            c.text(column.x, baseline, 8.0, Font::Bold, column.heading);
        }
    }
    let y = baseline + 1.8;
    c.rule(MARGIN, A4_WIDTH - MARGIN, y, 0.75);
    y
}

/// Recipient (bold), address lines and phone, each cut to `width`, at most
/// `max_lines` address lines; returns the y below the block.
#[allow(clippy::too_many_arguments)]
fn address_block(
    c: &mut Canvas,
    x: f32,
    mut y: f32,
    width: f32,
    address: &Address,
    name_size: f32,
    size: f32,
    max_lines: usize,
) -> f32 {
    let leading = size * 0.45;
    c.text(
        x,
        y,
        name_size,
        Font::Bold,
        &fit(&address.recipient, width, name_size, Font::Bold),
    );
    y += name_size * 0.45;
    for line in address
        .lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .take(max_lines)
    {
        c.text(
            x,
            y,
            size,
            Font::Regular,
            &fit(line, width, size, Font::Regular),
        );
        y += leading;
    }
    if !address.phone.trim().is_empty() {
        let phone = format!("Tel. {}", address.phone);
        c.text(
            x,
            y,
            size,
            Font::Regular,
            &fit(&phone, width, size, Font::Regular),
        );
        y += leading;
    }
    y
}

/// "1 line", "3 lines".
fn count(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn format_weight(grams: i64) -> String {
    let sign = if grams < 0 { "-" } else { "" };
    let g = grams.unsigned_abs();
    format!("{sign}{}.{:03} kg", g / 1000, g % 1000)
}

// ---------------------------------------------------------------------------
// Text measuring (Helvetica metrics, in 1/1000 em)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn builtin(self) -> BuiltinFont {
        match self {
            Font::Regular => BuiltinFont::Helvetica,
            Font::Bold => BuiltinFont::HelveticaBold,
        }
    }
}

/// Advance widths of ' ' to '~' in Helvetica and Helvetica-Bold (from their AFM files).
#[rustfmt::skip]
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// Width in mm of `text` (after [`printable`]) at `size` points.
fn text_width(text: &str, size: f32, font: Font) -> f32 {
    let table = match font {
        Font::Regular => &HELVETICA,
        Font::Bold => &HELVETICA_BOLD,
    };
    let units: u32 = text
        .chars()
        .map(|c| match c as u32 {
            cp @ 0x20..=0x7E => u32::from(table[(cp - 0x20) as usize]),
            // Accented letters and signs: about as wide as a digit, a bit more for safety.
            _ => 667,
        })
        .sum();
    units as f32 / 1000.0 * size / PT_PER_MM
}

/// `text` on one line no wider than `width`, cut and ended with "..." if need be.
fn fit(text: &str, width: f32, size: f32, font: Font) -> String {
    let text = printable(text);
    if text_width(&text, size, font) <= width {
        return text;
    }
    let mut cut: Vec<char> = text.chars().collect();
    while !cut.is_empty() {
        cut.pop();
        let candidate = format!("{}...", cut.iter().collect::<String>().trim_end());
        if text_width(&candidate, size, font) <= width {
            return candidate;
        }
    }
    String::new()
}

/// Word-wraps `text` to lines no wider than `width`, at most `max_lines`
/// (the last one then ends in "..."). Words wider than a line are broken.
fn wrap(text: &str, width: f32, size: f32, font: Font, max_lines: usize) -> Vec<String> {
    let text = printable(text);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if text_width(&candidate, size, font) <= width {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        // Break a word that is wider than a whole line.
        for c in word.chars() {
            current.push(c);
            if text_width(&current, size, font) > width {
                current.pop();
                lines.push(std::mem::take(&mut current));
                current.push(c);
            }
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = fit(&format!("{last}..."), width, size, font);
        }
    }
    lines
}

/// Packs `items` onto lines no wider than `width`, separated by ", " and never
/// split across lines; at most `max_lines`, the last then ending in "+N more".
fn pack<'a>(
    items: impl Iterator<Item = &'a str>,
    width: f32,
    size: f32,
    max_lines: usize,
) -> Vec<String> {
    let fits = |text: &str| text_width(text, size, Font::Regular) <= width;
    let items: Vec<String> = items
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(|i| fit(i, width, size, Font::Regular))
        .collect();
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for item in &items {
        if let Some(group) = groups.last_mut()
            && fits(&format!("{}, {item}", group.join(", ")))
        {
            group.push(item);
            continue;
        }
        groups.push(vec![item]);
    }
    if groups.len() > max_lines.max(1) {
        groups.truncate(max_lines.max(1));
        let mut last = groups.pop().unwrap_or_default();
        let shown: usize = groups.iter().map(Vec::len).sum();
        let mut lines: Vec<String> = groups.iter().map(|g| g.join(", ")).collect();
        loop {
            let more = items.len() - shown - last.len();
            let line = if last.is_empty() {
                format!("+{more} more")
            } else {
                format!("{}, +{more} more", last.join(", "))
            };
            if last.is_empty() || fits(&line) {
                lines.push(line);
                return lines;
            }
            last.pop();
        }
    }
    groups.iter().map(|g| g.join(", ")).collect()
}

// ---------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------

/// A page under construction: coordinates in mm from the top-left corner.
struct Canvas {
    width: f32,
    height: f32,
    ops: Vec<Op>,
}

impl Canvas {
    fn new(width: f32, height: f32) -> Self {
        Canvas {
            width,
            height,
            ops: Vec::new(),
        }
    }

    fn point(&self, x: f32, y: f32) -> Point {
        Point::new(Mm(x), Mm(self.height - y))
    }

    /// Text with its baseline at `y`, starting at `x`.
    fn text(&mut self, x: f32, y: f32, size: f32, font: Font, text: &str) {
        let pos = self.point(x, y);
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::Builtin(font.builtin()),
                size: Pt(size),
            },
            Op::SetTextCursor { pos },
            Op::ShowText {
                items: vec![TextItem::Text(printable(text))],
            },
            Op::EndTextSection,
        ]);
    }

    fn text_right(&mut self, right: f32, y: f32, size: f32, font: Font, text: &str) {
        let x = right - text_width(&printable(text), size, font);
        self.text(x, y, size, font, text);
    }

    fn text_center(&mut self, center: f32, y: f32, size: f32, font: Font, text: &str) {
        let x = center - text_width(&printable(text), size, font) / 2.0;
        self.text(x, y, size, font, text);
    }

    fn rect(&self, x: f32, top: f32, width: f32, height: f32, mode: PaintMode) -> Op {
        let lower_left = self.point(x, top + height);
        let mut rectangle = Rect::from_xywh(
            lower_left.x,
            lower_left.y,
            Mm(width).into_pt(),
            Mm(height).into_pt(),
        );
        rectangle.mode = Some(mode);
        Op::DrawRectangle { rectangle }
    }

    /// A filled black rectangle whose top-left corner is at (`x`, `top`).
    fn fill_rect(&mut self, x: f32, top: f32, width: f32, height: f32) {
        let op = self.rect(x, top, width, height, PaintMode::Fill);
        self.ops.push(op);
    }

    fn stroke_rect(&mut self, x: f32, top: f32, width: f32, height: f32, thickness: f32) {
        let op = self.rect(x, top, width, height, PaintMode::Stroke);
        self.ops
            .extend([Op::SetOutlineThickness { pt: Pt(thickness) }, op]);
    }

    /// A horizontal line `thickness` points thick.
    fn rule(&mut self, x1: f32, x2: f32, y: f32, thickness: f32) {
        let points = vec![
            LinePoint {
                p: self.point(x1, y),
                bezier: false,
            },
            LinePoint {
                p: self.point(x2, y),
                bezier: false,
            },
        ];
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

fn save(title: &str, pages: Vec<Canvas>) -> Vec<u8> {
    let pages = pages
        .into_iter()
        .map(|c| PdfPage::new(Mm(c.width), Mm(c.height), c.ops))
        .collect();
    let mut doc = PdfDocument::new(&printable(title));
    doc.with_pages(pages);
    let mut warnings = Vec::new();
    doc.save(&PdfSaveOptions::default(), &mut warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use lopdf::Document;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn parse(pdf: &[u8]) -> Document {
        assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
        Document::load_mem(pdf).expect("lopdf parses the PDF")
    }

    /// The text of each page, in page order, as lopdf extracts it.
    fn page_texts(pdf: &[u8]) -> Vec<String> {
        let doc = parse(pdf);
        doc.get_pages()
            .keys()
            .map(|&n| doc.extract_text(&[n]).expect("text is extractable"))
            .collect()
    }

    /// Whether some extracted line is exactly `want` (a table cell or a label).
    fn has_line(text: &str, want: &str) -> bool {
        text.lines().any(|l| l.trim() == want)
    }

    /// Page size in mm from the first page's MediaBox.
    fn page_size_mm(pdf: &[u8]) -> (f32, f32) {
        let doc = parse(pdf);
        let id = *doc.get_pages().values().next().unwrap();
        let page = doc.get_dictionary(id).unwrap();
        let media = page.get(b"MediaBox").unwrap().as_array().unwrap();
        let n: Vec<f32> = media.iter().map(|o| o.as_float().unwrap()).collect();
        ((n[2] - n[0]) / PT_PER_MM, (n[3] - n[1]) / PT_PER_MM)
    }

    fn warehouse() -> Address {
        Address {
            recipient: "Bazaar Fulfilment GmbH".into(),
            phone: "+49 30 1234567".into(),
            lines: vec![
                "Lagerstraße 7".into(),
                "Berlin / Berlin".into(),
                "10115".into(),
            ],
        }
    }

    fn customer() -> Address {
        Address {
            recipient: "Anna Müller".into(),
            phone: "+49 170 5550123".into(),
            lines: vec![
                "Friedrichstraße 123, 3. OG".into(),
                "Germany / Bayern / München".into(),
                "80331".into(),
            ],
        }
    }

    fn pick_line(i: usize) -> PickLine {
        PickLine {
            sku_code: format!("TSH-{i:04}-BLK-M"),
            title: format!("Organic cotton T-shirt, black, size M (batch {i})"),
            quantity: (i % 7 + 1) as i64,
            orders: (0..=(i % 4))
                .map(|k| format!("SO-20261123-{:04}", i * 10 + k))
                .collect(),
        }
    }

    #[test]
    fn picking_list_shows_every_line() {
        let list = PickingList {
            number: "PL-20261123-0001".into(),
            generated_at: at(2026, 11, 23, 8, 15),
            lines: vec![
                PickLine {
                    sku_code: "MUG-CER-350-WHT".into(),
                    title: "Ceramic mug 350 ml, white".into(),
                    quantity: 12,
                    orders: vec!["SO-20261122-0042".into(), "SO-20261123-0007".into()],
                },
                PickLine {
                    sku_code: "TSH-ORG-BLK-M".into(),
                    title: "Organic cotton T-shirt, black, M".into(),
                    quantity: 3,
                    orders: vec!["SO-20261123-0009".into()],
                },
                PickLine {
                    sku_code: "CAP-WOOL-NVY".into(),
                    title: "Wool cap, navy".into(),
                    quantity: 2,
                    orders: vec!["SO-20261123-0011".into()],
                },
            ],
        };
        let pdf = picking_list_pdf(&list);
        let (w, h) = page_size_mm(&pdf);
        assert!(
            (w - 210.0).abs() < 0.5 && (h - 297.0).abs() < 0.5,
            "A4, got {w} x {h}"
        );
        let pages = page_texts(&pdf);
        assert_eq!(pages.len(), 1);
        let text = &pages[0];
        for want in [
            "PL-20261123-0001",
            "Generated 2026-11-23 08:15 UTC",
            "3 lines, 17 units",
            "MUG-CER-350-WHT",
            "Ceramic mug 350 ml, white",
            "12",
            "SO-20261122-0042",
            "SO-20261123-0007",
            "TSH-ORG-BLK-M",
            "3",
            "SO-20261123-0009",
            "CAP-WOOL-NVY",
            "2",
            "Page 1 of 1",
        ] {
            assert!(has_line(text, want), "{want:?} missing from:\n{text}");
        }
    }

    #[test]
    fn a_long_picking_list_continues_on_more_pages_with_the_header() {
        let list = PickingList {
            number: "PL-20261123-0002".into(),
            generated_at: at(2026, 11, 23, 9, 0),
            lines: (1..=120).map(pick_line).collect(),
        };
        let pages = page_texts(&picking_list_pdf(&list));
        assert!(pages.len() > 1, "120 lines on {} page(s)", pages.len());
        let total = pages.len();
        for (i, text) in pages.iter().enumerate() {
            assert!(
                has_line(text, "PL-20261123-0002"),
                "page {} lacks the number",
                i + 1
            );
            assert!(
                has_line(text, "SKU") && has_line(text, "Orders"),
                "page {} lacks the headings",
                i + 1
            );
            assert!(has_line(text, &format!("Page {} of {total}", i + 1)));
        }
        assert!(has_line(&pages[1], "Picking list (continued)"));
        let all = pages.join("\n");
        for line in &list.lines {
            assert!(has_line(&all, &line.sku_code), "{} missing", line.sku_code);
            for order in &line.orders {
                assert!(all.contains(order.as_str()), "{order} missing");
            }
        }
        // Each SKU is printed once: no row is lost or repeated at a page break.
        let rows = all.lines().filter(|l| l.trim().starts_with("TSH-")).count();
        assert_eq!(rows, 120);
    }

    #[test]
    fn a_pick_line_needed_by_hundreds_of_orders_stays_within_its_lines() {
        let orders: Vec<String> = (1..=300).map(|k| format!("SO-20261123-{k:04}")).collect();
        let lines = pack(
            orders.iter().map(String::as_str),
            47.0,
            TABLE_SIZE,
            MAX_ORDER_LINES,
        );
        assert_eq!(lines.len(), MAX_ORDER_LINES);
        let last = lines.last().unwrap();
        assert!(last.ends_with(" more"), "{last}");
        let shown: usize = lines.iter().map(|l| l.matches("SO-").count()).sum();
        let more: usize = last
            .rsplit('+')
            .next()
            .unwrap()
            .trim_end_matches(" more")
            .parse()
            .unwrap();
        assert_eq!(shown + more, 300);
        for line in &lines {
            assert!(
                text_width(line, TABLE_SIZE, Font::Regular) <= 47.0,
                "{line} too wide"
            );
        }
    }

    fn slip(lines: usize) -> PackingSlip {
        PackingSlip {
            order_number: "SO-20261123-0042".into(),
            placed_at: at(2026, 11, 22, 17, 3),
            ship_to: customer(),
            lines: (1..=lines)
                .map(|i| SlipLine {
                    sku_code: format!("MUG-{i:03}-WHT"),
                    title: format!("Ceramic mug {i}, white"),
                    quantity: i as i64,
                })
                .collect(),
            note: Some(
                "Please leave the parcel with the neighbour (Hausnummer 5) if nobody is home."
                    .into(),
            ),
        }
    }

    #[test]
    fn packing_slip_shows_order_address_lines_and_note() {
        let slip = slip(3);
        let pdf = packing_slip_pdf(&slip);
        let (w, h) = page_size_mm(&pdf);
        assert!(
            (w - 210.0).abs() < 0.5 && (h - 297.0).abs() < 0.5,
            "A4, got {w} x {h}"
        );
        let pages = page_texts(&pdf);
        assert_eq!(pages.len(), 1);
        let text = &pages[0];
        for want in [
            "Order SO-20261123-0042",
            "Placed 2026-11-22 17:03 UTC",
            "3 lines, 6 items",
            "Anna Müller",
            "Friedrichstraße 123, 3. OG",
            "Germany / Bayern / München",
            "80331",
            "Tel. +49 170 5550123",
            "MUG-001-WHT",
            "MUG-003-WHT",
            "Ceramic mug 2, white",
            "3",
        ] {
            assert!(has_line(text, want), "{want:?} missing from:\n{text}");
        }
        assert!(
            text.contains("leave the parcel with the neighbour"),
            "note missing:\n{text}"
        );
    }

    #[test]
    fn a_long_packing_slip_continues_on_more_pages_with_the_header() {
        let slip = slip(90);
        let pages = page_texts(&packing_slip_pdf(&slip));
        assert!(pages.len() > 1);
        for text in &pages {
            assert!(has_line(text, "Order SO-20261123-0042"));
            assert!(has_line(text, "SKU") && has_line(text, "Qty"));
        }
        // The address is printed once, on the first page.
        assert!(has_line(&pages[0], "Anna Müller"));
        assert!(!has_line(&pages[1], "Anna Müller"));
        let all = pages.join("\n");
        for line in &slip.lines {
            assert!(has_line(&all, &line.sku_code), "{} missing", line.sku_code);
        }
    }

    fn label() -> CarrierLabel {
        CarrierLabel {
            carrier: "DHL Paket".into(),
            service: "Standard, signature".into(),
            tracking_number: "JJD000390007012345678".into(),
            order_number: "SO-20261123-0042".into(),
            ship_from: warehouse(),
            ship_to: customer(),
            weight_grams: 1250,
        }
    }

    #[test]
    fn carrier_label_shows_carrier_addresses_and_tracking_number() {
        let pdf = carrier_label_pdf(&label());
        let (w, h) = page_size_mm(&pdf);
        assert!(
            (w - 100.0).abs() < 0.5 && (h - 150.0).abs() < 0.5,
            "100 x 150 mm, got {w} x {h}"
        );
        let pages = page_texts(&pdf);
        assert_eq!(pages.len(), 1);
        let text = &pages[0];
        for want in [
            "DHL Paket",
            "Standard, signature",
            "Bazaar Fulfilment GmbH",
            "Lagerstraße 7",
            "Anna Müller",
            "Friedrichstraße 123, 3. OG",
            "80331",
            "Tel. +49 170 5550123",
            "Order SO-20261123-0042",
            "1.250 kg",
            "JJD000390007012345678",
        ] {
            assert!(has_line(text, want), "{want:?} missing from:\n{text}");
        }
    }

    /// The filled rectangles on the label's page as (x, width) in points, left to right.
    fn bars(pdf: &[u8]) -> Vec<(f32, f32)> {
        let doc = parse(pdf);
        let id = *doc.get_pages().values().next().unwrap();
        let content = doc.get_and_decode_page_content(id).unwrap();
        let mut bars: Vec<(f32, f32)> = content
            .operations
            .windows(2)
            .filter(|pair| pair[0].operator == "re" && pair[1].operator == "f")
            .map(|pair| {
                let n: Vec<f32> = pair[0]
                    .operands
                    .iter()
                    .map(|o| o.as_float().unwrap())
                    .collect();
                (n[0], n[2])
            })
            .collect();
        bars.sort_by(|a, b| a.0.total_cmp(&b.0));
        bars
    }

    /// Reads module widths back into text: the inverse of [`code128`].
    fn decode(modules: &[u8]) -> Result<String, String> {
        let stop: Vec<u8> = CODE128_PATTERNS[usize::from(CODE128_STOP)]
            .bytes()
            .map(|b| b - b'0')
            .collect();
        if modules.len() < 6 * 3 + 7 || !(modules.len() - 7).is_multiple_of(6) {
            return Err(format!("{} elements is no Code 128 symbol", modules.len()));
        }
        let (body, end) = modules.split_at(modules.len() - 7);
        if end != stop.as_slice() {
            return Err("no stop pattern".into());
        }
        let values: Vec<usize> = body
            .chunks(6)
            .map(|chunk| {
                CODE128_PATTERNS
                    .iter()
                    .position(|p| p.bytes().map(|b| b - b'0').eq(chunk.iter().copied()))
                    .ok_or_else(|| format!("unknown pattern {chunk:?}"))
            })
            .collect::<Result<_, _>>()?;
        if values[0] != usize::from(CODE128_START_B) {
            return Err("not started in code set B".into());
        }
        let (checksum, symbols) = values.split_last().unwrap();
        let sum: usize = symbols.iter().enumerate().map(|(i, v)| i.max(1) * v).sum();
        if sum % 103 != *checksum {
            return Err("checksum mismatch".into());
        }
        Ok(symbols[1..]
            .iter()
            .map(|&v| char::from(v as u8 + b' '))
            .collect())
    }

    #[test]
    fn the_label_barcode_decodes_to_the_tracking_number() {
        let label = label();
        let pdf = carrier_label_pdf(&label);
        let bars = bars(&pdf);
        assert!(!bars.is_empty(), "no bars drawn");
        // The stop pattern ends with a one-module bar, so the narrowest bar is one module.
        let module = bars.iter().map(|b| b.1).fold(f32::MAX, f32::min);
        let mut modules = Vec::new();
        for (i, &(x, w)) in bars.iter().enumerate() {
            modules.push((w / module).round() as u8);
            if let Some(&(next, _)) = bars.get(i + 1) {
                modules.push(((next - x - w) / module).round() as u8);
            }
        }
        assert_eq!(decode(&modules).unwrap(), label.tracking_number);
        assert_eq!(modules, code128(&label.tracking_number).unwrap());
        // Quiet zones: at least 10 modules clear of the label's edges.
        let first = bars[0].0;
        let (last_x, last_w) = *bars.last().unwrap();
        let width = LABEL_WIDTH * PT_PER_MM;
        assert!(first >= 10.0 * module && width - (last_x + last_w) >= 10.0 * module);
    }

    #[test]
    fn code128_checksum_of_a_known_value() {
        // Start B 104, then P=48 J=42 J=42 1=17 2=18 3=19 C=35 weighted 1..7:
        // 104 + 48 + 84 + 126 + 68 + 90 + 114 + 245 = 879 = 8 * 103 + 55.
        // (With Start A, 103, the sum is 878 and the checksum 54, the figure
        // often quoted for this example.)
        let values = code128_values("PJJ123C").unwrap();
        assert_eq!(values, [104, 48, 42, 42, 17, 18, 19, 35, 55, 106]);
    }

    #[test]
    fn code128_module_counts() {
        for data in ["A", "PJJ123C", "JJD000390007012345678", " ~{}|"] {
            let modules = code128(data).unwrap();
            let n = data.len();
            let total: usize = modules.iter().map(|&m| usize::from(m)).sum();
            assert_eq!(total, 11 * n + 35, "{data}");
            // Six elements per symbol (start, data, checksum), seven for stop:
            // starts and ends with a bar.
            assert_eq!(modules.len(), 6 * (n + 2) + 7);
            assert!(modules.iter().all(|&m| (1..=4).contains(&m)));
            assert_eq!(decode(&modules).unwrap(), data);
        }
    }

    #[test]
    fn code128_pattern_table_is_consistent() {
        for (value, pattern) in CODE128_PATTERNS.iter().enumerate() {
            let widths: Vec<u32> = pattern.bytes().map(|b| u32::from(b - b'0')).collect();
            let expected = if value == 106 { 13 } else { 11 };
            assert_eq!(widths.iter().sum::<u32>(), expected, "symbol {value}");
            // Code 128 bars always add up to an even number of modules.
            let bars: u32 = widths.iter().step_by(2).sum();
            assert_eq!(bars % 2, 0, "symbol {value}");
        }
        let mut sorted = CODE128_PATTERNS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 107, "patterns must be distinct");
    }

    #[test]
    fn code128_rejects_what_set_b_cannot_encode() {
        assert!(code128("").is_err());
        assert!(code128("ABC\n").is_err());
        assert!(code128("Ä123").unwrap_err().contains("position 1"));
    }

    #[test]
    fn an_unencodable_tracking_number_still_prints_as_text() {
        let mut label = label();
        label.tracking_number = "追踪123".into();
        let pdf = carrier_label_pdf(&label);
        assert!(bars(&pdf).is_empty());
        let text = &page_texts(&pdf)[0];
        assert!(has_line(text, "??123"), "{text}");
        assert!(text.contains("no barcode"));
    }

    #[test]
    fn characters_outside_the_builtin_font_print_as_question_marks() {
        assert_eq!(
            printable("Straße 5, Zürich – 8001 €"),
            "Straße 5, Zürich – 8001 €"
        );
        assert_eq!(printable("北京市朝阳区"), "??????");
        assert_eq!(printable("Tab\there\nnext"), "Tab here next");
        let mut slip = slip(1);
        slip.ship_to.recipient = "王小明".into();
        slip.ship_to.lines = vec!["北京市朝阳区建国路 88 号".into()];
        let text = &page_texts(&packing_slip_pdf(&slip))[0];
        assert!(has_line(text, "???"), "{text}");
        assert!(has_line(text, "1 line, 1 item"), "{text}");
        assert!(has_line(text, "????????? 88 ?"), "{text}");
    }

    #[test]
    fn long_text_is_cut_or_wrapped_to_its_column() {
        let long = "Extra-long product title that would never fit into a single table cell on an A4 page, not even close, really";
        let lines = wrap(long, 58.0, TABLE_SIZE, Font::Regular, MAX_TITLE_LINES);
        assert!(lines.len() <= MAX_TITLE_LINES);
        assert!(
            lines
                .iter()
                .all(|l| text_width(l, TABLE_SIZE, Font::Regular) <= 58.0)
        );
        let cut = fit(long, 40.0, TABLE_SIZE, Font::Regular);
        assert!(cut.ends_with("...") && text_width(&cut, TABLE_SIZE, Font::Regular) <= 40.0);
        assert_eq!(format_weight(1250), "1.250 kg");
        assert_eq!(format_weight(80), "0.080 kg");
        assert_eq!(count(1, "line"), "1 line");
        assert_eq!(count(0, "unit"), "0 units");
    }
}
