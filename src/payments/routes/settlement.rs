//! Carrier settlement in the back office: monthly statements (JSON, or a CSV, XLSX or PDF
//! download chosen with `?format=`), and COD remittance files imported from carriers.

use axum::Json;
use axum::extract::multipart::MultipartError;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::media::upload::MultipartForm;
use crate::payments::settlement::upload::{self, FileKind};
use crate::payments::settlement::{
    self, RemittanceDetail, RemittanceFile, RemittanceFilter, RemittanceLineView, RemittanceView,
    Statement, StatementFormat, StatementQuery, export,
};
use crate::payments::{SETTLEMENT_READ, SETTLEMENT_WRITE};
use crate::platform::extract::Query;
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;
use crate::platform::routing::{Access, ApiRouter};
use crate::platform::{ApiError, ApiResult};

/// The settlement routes, under `/api/v1/admin`.
pub fn router() -> ApiRouter {
    let read = Access::Permission(SETTLEMENT_READ);
    ApiRouter::new()
        .route(routes!(carrier_statement), read)
        .upload_route(
            routes!(import_remittance),
            Access::Permission(SETTLEMENT_WRITE),
        )
        .route(routes!(list_remittances), read)
        .route(routes!(get_remittance), read)
        .route(routes!(remittance_mismatches), read)
}

/// The carrier's statement for a calendar month (UTC): one line per shipment it shipped,
/// the shipping charged and the cash on delivery due, collected and outstanding (order
/// money on each order's first shipment only), with totals. `?format=csv|xlsx|pdf`
/// downloads it instead, amounts then as decimals (`128.50`) and a `Total` row last.
#[utoipa::path(get, path = "/carriers/{id}/statements/{month}", tag = "settlement",
    params(("id" = i64, Path), ("month" = String, Path, description = "YYYY-MM, e.g. 2026-11"),
        StatementQuery),
    responses(
        (status = 200, description = "The statement, or its download",
            headers(("Content-Disposition" = String, description = "Downloads only")),
            content(
                (Statement = "application/json"),
                (String = "text/csv"),
                (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                (Vec<u8> = "application/pdf"))),
        (status = 400, description = "Unknown `format`"),
        (status = 404, description = "No such carrier"),
        (status = 422, description = "`month` is not YYYY-MM")))]
pub async fn carrier_statement(
    State(state): State<AppState>,
    Path((id, month)): Path<(i64, String)>,
    Query(query): Query<StatementQuery>,
) -> ApiResult<Response> {
    let statement = settlement::statement(&state, id, &month).await?;
    let (content_type, extension, bytes) = match query.format.unwrap_or_default() {
        StatementFormat::Json => return Ok(Json(statement).into_response()),
        StatementFormat::Csv => ("text/csv; charset=utf-8", "csv", export::csv(&statement)?),
        StatementFormat::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
            export::xlsx(&statement)?,
        ),
        StatementFormat::Pdf => {
            // Laying out a long month takes a while; keep it off the async workers.
            let rendered = statement.clone();
            let pdf = tokio::task::spawn_blocking(move || export::pdf(&rendered))
                .await
                .map_err(ApiError::internal)?;
            ("application/pdf", "pdf", pdf)
        }
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        statement.file_name(extension)
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// A carrier's remittance file, as uploaded.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RemittanceUpload {
    /// A `.csv` (UTF-8) or `.xlsx` file with a header row naming `tracking_number` and
    /// `amount` (a decimal like `128.50`), optionally `reference`; other columns are
    /// ignored. At most 10,000 rows.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Imports a carrier's COD remittance (multipart field `file`) in one transaction: each
/// line is matched by tracking number to one of the carrier's shipments, the COD orders
/// it pays are settled (paid, with a ledger entry), and every line is kept with its
/// outcome. A file with a bad row is refused whole (422 listing `rows[N].field`, N being
/// the row as a spreadsheet shows it). Importing the same file again settles nothing twice.
#[utoipa::path(post, path = "/carriers/{id}/cod-remittances", tag = "settlement",
    params(("id" = i64, Path)),
    request_body(content = RemittanceUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = RemittanceDetail, headers(("Location" = String))),
        (status = 404, description = "No such carrier"),
        (status = 413, description = "The file is over 8 MiB"),
        (status = 415, description = "Not a multipart/form-data body"),
        (status = 422, description = "No `file`, not a .csv or .xlsx, a missing column, a bad row or over 10,000 rows")))]
pub async fn import_remittance(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    meta: RequestMeta,
    MultipartForm(mut form): MultipartForm,
) -> ApiResult<impl IntoResponse> {
    let file = read_file(&mut form).await?;
    let detail = settlement::import(&state, id, file, &staff, &meta).await?;
    let location = format!("/api/v1/admin/cod-remittances/{}", detail.remittance.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(detail),
    ))
}

/// The `file` field: its kind from its name or content type, its bytes up to the limit.
async fn read_file(form: &mut axum::extract::Multipart) -> ApiResult<RemittanceFile> {
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field
            .file_name()
            .map(|n| n.trim().chars().take(255).collect::<String>())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "remittance".to_owned());
        let kind = FileKind::detect(Some(&name), field.content_type()).ok_or_else(|| {
            ApiError::invalid(
                "file",
                "send a .csv or .xlsx file (by its name or its content type)",
            )
            .with_code("unsupported-file-type")
        })?;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > upload::MAX_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    format!(
                        "a remittance file may be at most {} MiB",
                        upload::MAX_BYTES / (1024 * 1024)
                    ),
                ));
            }
        }
        return Ok(RemittanceFile { name, kind, bytes });
    }
    Err(ApiError::invalid(
        "file",
        "attach the remittance in this multipart form field",
    ))
}

fn unreadable(err: MultipartError) -> ApiError {
    let status = err.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "payload-too-large", "the request body is too large")
    } else {
        ApiError::malformed_body(format!("malformed multipart body: {}", err.body_text()))
    }
}

/// Imported remittances, newest first; filter by carrier.
#[utoipa::path(get, path = "/cod-remittances", tag = "settlement",
    params(ListParams, RemittanceFilter),
    responses((status = 200, body = Page<RemittanceView>)))]
pub async fn list_remittances(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<RemittanceFilter>,
) -> ApiResult<Json<Page<RemittanceView>>> {
    Ok(Json(settlement::list(&state, &list, &filter).await?))
}

/// A remittance with every line and what became of it.
#[utoipa::path(get, path = "/cod-remittances/{id}", tag = "settlement",
    params(("id" = i64, Path)),
    responses((status = 200, body = RemittanceDetail), (status = 404)))]
pub async fn get_remittance(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<RemittanceDetail>> {
    Ok(Json(settlement::detail(&state, id).await?))
}

/// The lines staff must chase: every status but `matched` and `already_settled` (wrong
/// amount, unknown tracking number, prepaid or unshipped order, repeated line), in file
/// order unless sorted otherwise.
#[utoipa::path(get, path = "/cod-remittances/{id}/mismatches", tag = "settlement",
    params(("id" = i64, Path), ListParams),
    responses((status = 200, body = Page<RemittanceLineView>), (status = 404)))]
pub async fn remittance_mismatches(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(list): Query<ListParams>,
) -> ApiResult<Json<Page<RemittanceLineView>>> {
    Ok(Json(settlement::mismatches(&state, id, &list).await?))
}
