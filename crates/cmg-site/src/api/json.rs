//! The JSON body extractor of the admin API. A body is read as JSON (syntax, content
//! type and size refusals are axum's, mapped to the API's error shape), must be an
//! object (serde would otherwise take `[a, b]` for a struct of two fields, which the
//! document does not allow), and has its integral numbers normalised (`5.0` is the
//! integer 5, as JSON Schema counts it) before it is turned into the request type, whose
//! refusals (unknown field, wrong type, missing field) are `invalid_body`.
//!
//! It does not check values: the store does.

use axum::extract::{FromRequest, Request};
use axum::Json;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use super::error::ApiError;

/// A JSON object body turned into `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<Value>::from_request(req, state).await?;
        from_object(value).map(Self)
    }
}

/// `value` as `T`, when it is an object.
pub(super) fn from_object<T: DeserializeOwned>(mut value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body is a JSON object",
        ));
    }
    integral(&mut value);
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}

/// Turns each number with a zero fraction that fits `i64` or `u64` into that integer.
fn integral(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // `i64::MIN as f64` is -2^63 and `u64::MAX as f64` is 2^64, both exact; within
            // them the casts below are lossless.
            let int = if f.fract() != 0.0 {
                None
            } else if (i64::MIN as f64..0.0).contains(&f) {
                Some(Number::from(f as i64))
            } else if (0.0..u64::MAX as f64).contains(&f) {
                Some(Number::from(f as u64))
            } else {
                None
            };
            if let Some(int) = int {
                *n = int;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral),
        Value::Object(o) => o.values_mut().for_each(integral),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        a: Option<u64>,
        b: Option<i32>,
    }

    #[test]
    fn integral_numbers_are_integers() {
        let b: Body = from_object(json!({"a": 186.0, "b": -3.0})).expect("integral");
        assert_eq!(
            b,
            Body {
                a: Some(186),
                b: Some(-3)
            }
        );
        for bad in [json!({"a": 1.5}), json!({"a": -1.0}), json!({"a": 1e20})] {
            assert_eq!(
                from_object::<Body>(bad).expect_err("not a u64").code,
                "invalid_body"
            );
        }
    }

    #[test]
    fn only_an_object_is_a_body() {
        for bad in [json!([null, null]), json!(null), json!(1), json!("x")] {
            assert_eq!(
                from_object::<Body>(bad).expect_err("not an object").code,
                "invalid_body"
            );
        }
        assert_eq!(
            from_object::<Body>(json!({"c": 1}))
                .expect_err("unknown")
                .code,
            "invalid_body"
        );
    }
}
