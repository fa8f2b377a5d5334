//! HTTP routes of the system domain.

mod resource;
mod storefront;

use resource::resource_routes;

use crate::platform::routing::ApiRouter;

resource_routes! {
    mod regions {
        tag: "regions",
        resource: "region",
        collection: "/regions",
        item: "/regions/{id}",
        entity: crate::system::entity::region::Entity,
        view: RegionView,
        filter: RegionFilter => crate::system::store::region_query,
        sort: [("name", crate::system::entity::region::Column::Name), ("code", crate::system::entity::region::Column::Code),
               ("sort_order", crate::system::entity::region::Column::SortOrder), ("created_at", crate::system::entity::region::Column::CreatedAt)],
        present: crate::system::service::present,
        create: CreateRegion => crate::system::service::create_region,
        update: UpdateRegion => crate::system::service::update_region,
        delete: crate::system::service::delete_region,
    }
}

resource_routes! {
    mod carriers {
        tag: "carriers",
        resource: "carrier",
        collection: "/carriers",
        item: "/carriers/{id}",
        entity: crate::system::entity::carrier::Entity,
        view: CarrierView,
        filter: ActiveFilter => crate::system::store::carrier_query,
        sort: [("name", crate::system::entity::carrier::Column::Name), ("code", crate::system::entity::carrier::Column::Code),
               ("created_at", crate::system::entity::carrier::Column::CreatedAt)],
        present: crate::system::service::present,
        create: CreateCarrier => crate::system::service::create_carrier,
        update: UpdateCarrier => crate::system::service::update_carrier,
        delete: crate::system::service::delete_carrier,
    }
}

resource_routes! {
    mod shipping_methods {
        tag: "shipping methods",
        resource: "shipping method",
        collection: "/shipping-methods",
        item: "/shipping-methods/{id}",
        entity: crate::system::entity::shipping_method::Entity,
        view: ShippingMethodView,
        filter: ActiveFilter => crate::system::store::shipping_method_query,
        sort: [("name", crate::system::entity::shipping_method::Column::Name), ("code", crate::system::entity::shipping_method::Column::Code),
               ("sort_order", crate::system::entity::shipping_method::Column::SortOrder),
               ("created_at", crate::system::entity::shipping_method::Column::CreatedAt)],
        present: crate::system::service::present_shipping_methods,
        create: CreateShippingMethod => crate::system::service::create_shipping_method,
        update: UpdateShippingMethod => crate::system::service::update_shipping_method,
        delete: crate::system::service::delete_shipping_method,
    }
}

resource_routes! {
    mod packaging {
        tag: "packaging",
        resource: "packaging",
        collection: "/packaging",
        item: "/packaging/{id}",
        entity: crate::system::entity::packaging::Entity,
        view: PackagingView,
        filter: ActiveFilter => crate::system::store::packaging_query,
        sort: [("name", crate::system::entity::packaging::Column::Name), ("price", crate::system::entity::packaging::Column::Price),
               ("created_at", crate::system::entity::packaging::Column::CreatedAt)],
        present: crate::system::service::present,
        create: CreatePackaging => crate::system::service::create_packaging,
        update: UpdatePackaging => crate::system::service::update_packaging,
        delete: crate::system::service::delete_packaging,
    }
}

resource_routes! {
    mod payment_methods {
        tag: "payment methods",
        resource: "payment method",
        collection: "/payment-methods",
        item: "/payment-methods/{id}",
        entity: crate::system::entity::payment_method::Entity,
        view: PaymentMethodView,
        filter: PaymentMethodFilter => crate::system::store::payment_method_query,
        sort: [("name", crate::system::entity::payment_method::Column::Name), ("code", crate::system::entity::payment_method::Column::Code),
               ("sort_order", crate::system::entity::payment_method::Column::SortOrder),
               ("created_at", crate::system::entity::payment_method::Column::CreatedAt)],
        present: crate::system::service::present,
        create: CreatePaymentMethod => crate::system::service::create_payment_method,
        update: UpdatePaymentMethod => crate::system::service::update_payment_method,
        delete: crate::system::service::delete_payment_method,
    }
}

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    use super::*;
    regions::router(REGIONS_READ, REGIONS_WRITE)
        .merge(carriers::router(CARRIERS_READ, CARRIERS_WRITE))
        .merge(shipping_methods::router(SHIPPING_READ, SHIPPING_WRITE))
        .merge(packaging::router(PACKAGING_READ, PACKAGING_WRITE))
        .merge(payment_methods::router(
            PAYMENT_METHODS_READ,
            PAYMENT_METHODS_WRITE,
        ))
}

pub use storefront::storefront_router;
