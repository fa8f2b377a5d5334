//! Request rate limits per route group (GCRA), kept in the key-value store: in-process on
//! one machine, in Redis (one Lua script, the server's clock) when instances must share
//! the budget. Over the limit: 429 with `Retry-After` and `RateLimit-*` headers.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::cache::{Keyspace, Script, ScriptValue};
use super::error::ApiError;
use super::request::RequestMeta;
use crate::app::AppState;
use crate::config::{LimitKey, RateLimit};

/// GCRA: KEYS[1] holds the theoretical arrival time (ms). ARGV: emission interval ms,
/// burst tolerance ms, now ms (ignored by Redis, which uses TIME so that every instance
/// shares one clock). Returns {allowed, retry_after_ms, remaining, reset_ms}.
pub static GCRA: Script = Script {
    name: "gcra",
    lua: r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - now - tolerance, 0, tat - now}
end
local new_tat = tat + emission
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, 0, math.floor((tolerance + emission - (new_tat - now)) / emission), new_tat - now}
"#,
    native: gcra_native,
};

fn gcra_native(ks: &mut Keyspace<'_>, keys: &[String], args: &[String]) -> ScriptValue {
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<i64>().ok()).unwrap_or(0);
    let (emission, tolerance, now) = (number(0), number(1), number(2));
    let stored = ks
        .get(&keys[0])
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse::<i64>().ok());
    let tat = stored.unwrap_or(now).max(now);
    let reply = |values: [i64; 4]| ScriptValue::List(values.map(ScriptValue::Int).to_vec());
    if tat - now > tolerance {
        return reply([0, tat - now - tolerance, 0, tat - now]);
    }
    let new_tat = tat + emission;
    let ttl = std::time::Duration::from_millis((new_tat - now).max(1) as u64);
    ks.set(&keys[0], new_tat.to_string().into_bytes(), Some(ttl));
    reply([
        1,
        0,
        (tolerance + emission - (new_tat - now)) / emission,
        new_tat - now,
    ])
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub retry_after_ms: i64,
    pub remaining: i64,
    pub reset_ms: i64,
}

/// Spends one request of `limit` for `key`.
pub async fn check(state: &AppState, limit: &RateLimit, key: &str) -> anyhow::Result<Decision> {
    let emission = (limit.period_secs * 1000 / u64::from(limit.requests.max(1))).max(1) as i64;
    let tolerance = emission * (i64::from(limit.requests.max(1)) - 1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let args = [emission.to_string(), tolerance.to_string(), now.to_string()];
    let reply = state.kv.eval(&GCRA, &[key], &args).await?;
    let ScriptValue::List(values) = reply else {
        anyhow::bail!("rate limit script returned {reply:?}");
    };
    let value = |i: usize| values.get(i).and_then(ScriptValue::as_int).unwrap_or(0);
    Ok(Decision {
        allowed: value(0) == 1,
        retry_after_ms: value(1),
        remaining: value(2),
        reset_ms: value(3),
    })
}

/// The route group of a request: sign-in endpoints get their own, stricter budget.
fn group(method: &Method, path: &str) -> &'static str {
    if *method != Method::POST {
        return "api";
    }
    if path.ends_with("/auth/login") || path.ends_with("/auth/token") {
        "login"
    } else if path.ends_with("/auth/register") {
        "register"
    } else if path.contains("/auth/password-reset") {
        "password_reset"
    } else {
        "api"
    }
}

/// Middleware over `/api`: applies the group's limit, keyed by client IP or by the
/// session the request carries.
pub async fn limit_requests(req: Request, next: Next) -> Response {
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return next.run(req).await;
    };
    if !state.config.rate_limits.enabled || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let group = group(req.method(), req.uri().path());
    let Some(limit) = state.config.rate_limits.groups.get(group) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let meta = RequestMeta::from_parts(&parts, state.config.http.trust_forwarded_for);
    let client = match limit.key {
        LimitKey::Session => parts
            .headers
            .get(axum::http::header::COOKIE)
            .or_else(|| parts.headers.get(axum::http::header::AUTHORIZATION))
            .map(|v| format!("s:{}", hex::encode(&Sha256::digest(v.as_bytes())[..16]))),
        LimitKey::Ip => None,
    }
    .unwrap_or_else(|| format!("ip:{}", meta.ip_string().unwrap_or_default()));
    let key = format!("ratelimit:{group}:{client}");
    let decision = match check(&state, limit, &key).await {
        Ok(decision) => decision,
        Err(err) => {
            // A limiter outage must not take the shop down: let the request through.
            tracing::error!(error = %err, "rate limiter unavailable");
            return next.run(Request::from_parts(parts, body)).await;
        }
    };
    let mut response = if decision.allowed {
        next.run(Request::from_parts(parts, body)).await
    } else {
        metrics::counter!("http_rate_limited_total", "group" => group).increment(1);
        ApiError::too_many_requests(((decision.retry_after_ms + 999) / 1000) as u64).into_response()
    };
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit.requests));
    headers.insert(
        "ratelimit-remaining",
        HeaderValue::from(decision.remaining.max(0)),
    );
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(((decision.reset_ms + 999) / 1000).max(0)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::cache::{KeyValue, MemoryStore};

    #[tokio::test]
    async fn allows_a_burst_then_refuses_until_the_interval_passes() {
        let store = MemoryStore::new();
        // 3 requests per 3 s: emission 1000 ms, tolerance 2000 ms.
        let call = |now: i64| {
            let args = ["1000".to_owned(), "2000".to_owned(), now.to_string()];
            let store = &store;
            async move {
                match store.eval(&GCRA, &["k"], &args).await.unwrap() {
                    ScriptValue::List(v) => {
                        v.iter().map(|x| x.as_int().unwrap()).collect::<Vec<_>>()
                    }
                    other => panic!("{other:?}"),
                }
            }
        };
        assert_eq!(call(10_000).await, [1, 0, 2, 1000]);
        assert_eq!(call(10_000).await, [1, 0, 1, 2000]);
        assert_eq!(call(10_000).await, [1, 0, 0, 3000]);
        assert_eq!(call(10_000).await, [0, 1000, 0, 3000]);
        // One emission interval later, one request is allowed again.
        assert_eq!(call(11_000).await[0], 1);
        assert_eq!(call(11_000).await[0], 0);
    }
}
