//! Carrier settlement: COD remittance files settle shipped cash-on-delivery orders once,
//! and the monthly carrier statement adds up in JSON, CSV, XLSX and PDF.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, create_staff, expect_json, expect_problem, login,
    login_as_superuser, send, spawn, spawn_sharing,
};
use crate::orders::pdf_text;
use crate::shop::{Buyer, Shop, buyer, listed_product, open_shop};

both_backends!(
    cod_remittances_settle_shipped_orders_once_and_statements_add_up,
    bad_remittance_files_are_refused_whole,
);

const BOUNDARY: &str = "bazaar-settlement-boundary-7d2e";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// Price 120.00 plus 10.00 shipping for the first kilogram.
const PRICE: i64 = 12000;
const DUE: i64 = 13000;

/// Sends `bytes` as the multipart field `file` named `file_name`.
async fn upload(
    app: &TestApp,
    carrier: i64,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Response {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    send(
        app.request(
            Method::POST,
            &format!("/api/v1/admin/carriers/{carrier}/cod-remittances"),
        )
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body),
    )
    .await
}

/// Places an order for one unit of `sku`; `cod` chooses cash on delivery.
async fn order(
    app: &TestApp,
    shop: &Shop,
    customer: &Buyer,
    sku: i64,
    key: &str,
    cod: bool,
) -> Value {
    customer.add(sku, 1).await;
    let order = expect_json(customer.checkout(shop, key, json!({})).await, 201).await;
    assert_eq!(order["amount_due"], DUE, "{order}");
    let id = order["id"].as_i64().unwrap();
    if cod {
        let payment = expect_json(
            send(
                customer
                    .request(
                        Method::POST,
                        &format!(
                            "/api/v1/orders/{}/payments",
                            order["number"].as_str().unwrap()
                        ),
                    )
                    .header("Idempotency-Key", format!("pay-{key}"))
                    .json(&json!({"method": "cod"})),
            )
            .await,
            201,
        )
        .await;
        assert_eq!(payment["provider"], "cash_on_delivery", "{payment}");
    } else {
        expect_json(
            app.post(
                &format!("/api/v1/admin/orders/{id}/mark-paid"),
                &json!({"reference": format!("BANK-{key}")}),
            )
            .await,
            200,
        )
        .await;
    }
    order
}

/// Picks and ships the order's one shipment with `tracking`; returns the shipment.
async fn ship(app: &TestApp, shop: &Shop, order_id: i64, tracking: &str) -> Value {
    expect_json(
        app.post_empty(&format!(
            "/api/v1/admin/orders/{order_id}/ready-for-picking"
        ))
        .await,
        200,
    )
    .await;
    let detail = expect_json(
        app.get(&format!("/api/v1/admin/orders/{order_id}")).await,
        200,
    )
    .await;
    let shipment = detail["shipments"][0]["id"].as_i64().unwrap();
    expect_json(
        app.put(
            &format!("/api/v1/admin/shipments/{shipment}/tracking"),
            &json!({"carrier_id": shop.carrier, "tracking_number": tracking}),
        )
        .await,
        200,
    )
    .await;
    let shipped = expect_json(
        app.post(
            &format!("/api/v1/admin/shipments/{shipment}/ship"),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(shipped["status"], "shipped");
    shipped
}

async fn admin_order(app: &TestApp, id: i64) -> Value {
    expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await
}

/// `130.00` → 13000.
fn minor(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').expect("two decimals");
    assert_eq!(fraction.len(), 2, "{text}");
    whole.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap()
}

fn statuses(lines: &Value) -> Vec<(String, String)> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["tracking_number"].as_str().unwrap().to_owned(),
                l["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn cod_remittances_settle_shipped_orders_once_and_statements_add_up(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    expect_json(
        app.post(
            "/api/v1/admin/payment-methods",
            &json!({"code": "cod", "name": "Cash on delivery", "provider": "cash_on_delivery"}),
        )
        .await,
        201,
    )
    .await;
    let (_, sku) = listed_product(&app, "TEA-COD", PRICE, 20).await;
    let customer = buyer(&app, "cod@example.com").await;
    let mut orders = Vec::new();
    for (key, cod) in [("c1", true), ("c2", true), ("c3", true), ("p1", false)] {
        orders.push(order(&app, &shop, &customer, sku, key, cod).await);
    }
    let ids: Vec<i64> = orders.iter().map(|o| o["id"].as_i64().unwrap()).collect();
    let tracking = [
        "SF1000000001",
        "SF1000000002",
        "SF1000000003",
        "SF1000000004",
    ];
    let mut shipments = Vec::new();
    for (id, t) in ids.iter().zip(tracking) {
        shipments.push(ship(&app, &shop, *id, t).await);
    }
    for id in &ids[..3] {
        let o = admin_order(&app, *id).await;
        assert_eq!(
            (o["status"].as_str(), o["paid_at"].is_null()),
            (Some("shipped"), true),
            "{o}"
        );
    }
    let month = shipments[0]["shipped_at"].as_str().unwrap()[..7].to_owned();

    // Two right, one wrong amount, one unknown parcel, and the prepaid order's parcel; the
    // columns in another order than documented, with one the import ignores.
    let file = "Amount,Tracking Number,Receiver\n\
                130.00,SF1000000001,Li\n\
                130,SF1000000002,Wang\n\
                120.00,SF1000000003,Zhang\n\
                50.00,SF9999999999,Nobody\n\
                130.00,SF1000000004,Li\n";
    let imported = expect_json(
        upload(
            &app,
            shop.carrier,
            "sf-2026-11.csv",
            "text/csv",
            file.as_bytes(),
        )
        .await,
        201,
    )
    .await;
    let expected = pairs(&[
        ("SF1000000001", "matched"),
        ("SF1000000002", "matched"),
        ("SF1000000003", "amount_mismatch"),
        ("SF9999999999", "unknown_tracking"),
        ("SF1000000004", "not_cash_on_delivery"),
    ]);
    assert_eq!(statuses(&imported["lines"]), expected, "{imported}");
    assert_eq!(
        (
            &imported["rows"],
            &imported["matched"],
            &imported["mismatched"],
            &imported["total_amount"]
        ),
        (
            &json!(5),
            &json!(2),
            &json!(3),
            &json!(13000 + 13000 + 12000 + 5000 + 13000)
        ),
        "{imported}"
    );
    assert_eq!(imported["file_name"], "sf-2026-11.csv");
    assert_eq!(imported["lines"][0]["line_no"], 2);
    assert_eq!(imported["lines"][0]["order_number"], orders[0]["number"]);
    let first = imported["id"].as_i64().unwrap();
    for id in &ids[..2] {
        let o = admin_order(&app, *id).await;
        assert!(!o["paid_at"].is_null(), "{o}");
        assert_eq!(o["status"], "shipped", "{o}");
    }
    assert!(admin_order(&app, ids[2]).await["paid_at"].is_null());

    let mismatches = expect_json(
        app.get(&format!("/api/v1/admin/cod-remittances/{first}/mismatches"))
            .await,
        200,
    )
    .await;
    assert_eq!(mismatches["total"], 3, "{mismatches}");
    assert_eq!(statuses(&mismatches["items"]), expected[2..].to_vec());
    let wrong = &mismatches["items"][0];
    assert!(
        wrong["detail"]
            .as_str()
            .unwrap()
            .contains("expected 130.00, got 120.00"),
        "{wrong}"
    );
    assert_eq!(wrong["order_id"], ids[2]);

    // The same file again: every line is known, nothing is paid twice.
    let again = expect_json(
        upload(
            &app,
            shop.carrier,
            "sf-2026-11.csv",
            "text/csv",
            file.as_bytes(),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        statuses(&again["lines"])[..2].to_vec(),
        pairs(&[
            ("SF1000000001", "already_settled"),
            ("SF1000000002", "already_settled")
        ])
    );
    assert_eq!(
        (&again["matched"], &again["mismatched"]),
        (&json!(0), &json!(3))
    );
    let list = expect_json(
        app.get(&format!(
            "/api/v1/admin/cod-remittances?carrier_id={}",
            shop.carrier
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["items"][0]["id"], again["id"], "newest first");
    let detail = expect_json(
        app.get(&format!("/api/v1/admin/cod-remittances/{first}"))
            .await,
        200,
    )
    .await;
    assert_eq!(statuses(&detail["lines"]), expected);
    expect_problem(
        app.get("/api/v1/admin/cod-remittances/999999").await,
        404,
        "not-found",
    )
    .await;
    let payments = expect_json(
        customer
            .get(&format!(
                "/api/v1/orders/{}/payments",
                orders[0]["number"].as_str().unwrap()
            ))
            .await,
        200,
    )
    .await;
    assert_eq!(payments[0]["status"], "succeeded", "{payments}");

    // The statement while the third order is outstanding.
    let path = format!("/api/v1/admin/carriers/{}/statements/{month}", shop.carrier);
    let statement = expect_json(app.get(&path).await, 200).await;
    assert_eq!(statement["carrier"]["name"], "SF Express");
    assert_eq!(statement["month"], month.as_str());
    let lines = statement["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 4, "{statement}");
    for (line, t) in lines.iter().zip(tracking) {
        assert_eq!(line["tracking_number"], t);
        assert_eq!(line["shipping_fee"], 1000, "{line}");
    }
    let cod: Vec<(i64, i64, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["cod_due"].as_i64().unwrap(),
                l["cod_collected"].as_i64().unwrap(),
                l["cod_outstanding"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cod,
        [(DUE, DUE, 0), (DUE, DUE, 0), (DUE, 0, DUE), (0, 0, 0)]
    );
    assert_eq!(
        statement["totals"],
        json!({"shipments": 4, "shipping_fees": 4000, "cod_due": 3 * DUE,
            "cod_collected": 2 * DUE, "cod_outstanding": DUE})
    );

    // CSV: the same lines and totals, as decimals.
    let response = app.get(&format!("{path}?format=csv")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"statement-sf-{month}.csv\"").as_str()
    );
    let body = response.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_ref());
    let headings: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        headings,
        [
            "shipment",
            "order",
            "shipped_at",
            "tracking_number",
            "shipping_fee",
            "cod_due",
            "cod_collected",
            "cod_outstanding"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 5);
    for (record, line) in records.iter().zip(lines) {
        assert_eq!(&record[0], line["shipment_number"].as_str().unwrap());
        assert_eq!(&record[1], line["order_number"].as_str().unwrap());
        assert_eq!(&record[3], line["tracking_number"].as_str().unwrap());
        let amounts: Vec<i64> = (4..8).map(|i| minor(&record[i])).collect();
        assert_eq!(
            amounts,
            [
                "shipping_fee",
                "cod_due",
                "cod_collected",
                "cod_outstanding"
            ]
            .map(|k| line[k].as_i64().unwrap())
        );
    }
    let total = &records[4];
    assert_eq!(&total[0], "Total");
    assert_eq!(
        (4..8).map(|i| minor(&total[i])).collect::<Vec<_>>(),
        [4000, 3 * DUE, 2 * DUE, DUE]
    );

    // XLSX: the same rows, amounts as numbers.
    let response = app.get(&format!("{path}?format=xlsx")).await;
    assert_eq!(response.headers()["content-type"], XLSX);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".xlsx\"")
    );
    let body = response.bytes().await.unwrap();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(body.to_vec())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 6, "headings, 4 shipments, totals");
    assert_eq!(rows[0][0], Data::String("shipment".into()));
    let number = |cell: &Data| match cell {
        Data::Float(f) => (f * 100.0).round() as i64,
        Data::Int(i) => i * 100,
        other => panic!("not a number: {other:?}"),
    };
    for (row, line) in rows[1..5].iter().zip(lines) {
        assert_eq!(
            row[0],
            Data::String(line["shipment_number"].as_str().unwrap().into())
        );
        assert_eq!(
            row[3],
            Data::String(line["tracking_number"].as_str().unwrap().into())
        );
        assert_eq!(
            row[4..8].iter().map(number).collect::<Vec<_>>(),
            [
                "shipping_fee",
                "cod_due",
                "cod_collected",
                "cod_outstanding"
            ]
            .map(|k| line[k].as_i64().unwrap())
        );
    }
    assert_eq!(rows[5][0], Data::String("Total".into()));
    assert_eq!(
        rows[5][4..8].iter().map(number).collect::<Vec<_>>(),
        [4000, 3 * DUE, 2 * DUE, DUE]
    );

    // PDF: the carrier, the month and the totals.
    let response = app.get(&format!("{path}?format=pdf")).await;
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let text = pdf_text(&response.bytes().await.unwrap());
    for want in [
        "SF Express",
        month.as_str(),
        "4 shipments",
        "40.00",
        "390.00",
        "260.00",
        "130.00",
        orders[0]["number"].as_str().unwrap(),
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }

    // An XLSX remittance with the right amount settles the third order, once; its repeat
    // in the same file is flagged, not applied.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, heading) in ["tracking_number", "amount", "reference"]
        .into_iter()
        .enumerate()
    {
        sheet.write_string(0, col as u16, heading).unwrap();
    }
    for row in [1u32, 2] {
        sheet.write_string(row, 0, "SF1000000003").unwrap();
        sheet.write_number(row, 1, 130.0).unwrap();
        sheet.write_string(row, 2, format!("SF-REM-{row}")).unwrap();
    }
    let bytes = book.save_to_buffer().unwrap();
    let imported = expect_json(
        upload(&app, shop.carrier, "late.xlsx", XLSX, &bytes).await,
        201,
    )
    .await;
    assert_eq!(
        statuses(&imported["lines"]),
        pairs(&[
            ("SF1000000003", "matched"),
            ("SF1000000003", "duplicate_in_file")
        ])
    );
    assert_eq!(imported["lines"][0]["reference"], "SF-REM-1");
    assert_eq!(
        imported["lines"][1]["detail"],
        "the same tracking number is on row 2"
    );
    let third = admin_order(&app, ids[2]).await;
    assert!(!third["paid_at"].is_null(), "{third}");
    assert_eq!(third["status"], "shipped");
    let statement = expect_json(app.get(&path).await, 200).await;
    assert_eq!(statement["totals"]["cod_collected"], 3 * DUE);
    assert_eq!(statement["totals"]["cod_outstanding"], 0);

    // Bad months, carriers and formats are client errors.
    let bad = expect_problem(
        app.get(&format!(
            "/api/v1/admin/carriers/{}/statements/2026-13",
            shop.carrier
        ))
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(bad["errors"][0]["field"], "month");
    expect_problem(
        app.get(&format!("/api/v1/admin/carriers/999999/statements/{month}"))
            .await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(app.get(&format!("{path}?format=doc")).await.status(), 400);
    expect_problem(
        upload(&app, 999999, "sf.csv", "text/csv", file.as_bytes()).await,
        404,
        "not-found",
    )
    .await;
}

async fn bad_remittance_files_are_refused_whole(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let carrier = shop.carrier;

    let missing = expect_problem(
        upload(
            &app,
            carrier,
            "r.csv",
            "text/csv",
            b"tracking_number,total\nSF1,1.00\n",
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(missing["errors"][0]["field"], "columns.amount", "{missing}");

    let bad_amount = expect_problem(
        upload(
            &app,
            carrier,
            "r.csv",
            "text/csv",
            b"tracking_number,amount\nSF1,1.00\nSF2,twelve\nSF3,1.005\n",
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let fields: Vec<&str> = bad_amount["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["rows[3].amount", "rows[4].amount"], "{bad_amount}");

    let mut too_long = String::from("tracking_number,amount\n");
    for i in 0..=10_000 {
        too_long.push_str(&format!("SF{i},1.00\n"));
    }
    let problem = expect_problem(
        upload(&app, carrier, "r.csv", "text/csv", too_long.as_bytes()).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "rows");

    expect_problem(
        upload(
            &app,
            carrier,
            "r.txt",
            "text/plain",
            b"tracking_number,amount\n",
        )
        .await,
        422,
        "unsupported-file-type",
    )
    .await;
    let problem = expect_problem(
        upload(
            &app,
            carrier,
            "r.xlsx",
            XLSX,
            b"tracking_number,amount\nSF1,1.00\n",
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "file");
    expect_problem(
        send(
            app.request(
                Method::POST,
                &format!("/api/v1/admin/carriers/{carrier}/cod-remittances"),
            )
            .json(&json!({"file": "x"})),
        )
        .await,
        415,
        "unsupported-media-type",
    )
    .await;

    // Nothing was written.
    let list = expect_json(app.get("/api/v1/admin/cod-remittances").await, 200).await;
    assert_eq!(list["total"], 0, "{list}");

    // Reading statements does not allow importing.
    const PASSWORD: &str = "a long staff password";
    create_staff(
        &app,
        "clerk@example.com",
        PASSWORD,
        false,
        &["payments.settlement.read"],
    )
    .await;
    let clerk = spawn_sharing(&app).await;
    assert_eq!(
        login(&clerk, "clerk@example.com", PASSWORD).await.status(),
        200
    );
    expect_json(clerk.get("/api/v1/admin/cod-remittances").await, 200).await;
    expect_problem(
        upload(
            &clerk,
            carrier,
            "r.csv",
            "text/csv",
            b"tracking_number,amount\nSF1,1.00\n",
        )
        .await,
        403,
        "forbidden",
    )
    .await;
}
