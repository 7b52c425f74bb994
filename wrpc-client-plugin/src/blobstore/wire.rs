//! The wire side of `wrpc:blobstore@0.2.0`: parameters encoded by hand, and
//! results decoded by the one codec against the wire WIT; bodies and
//! listings are read off their paths as they arrive (`transport::async_values`).

use std::io;

use std::sync::OnceLock;

use bytes::{BufMut as _, BytesMut};
use transport::frame::put_leb_u32;
use transport::schema::codec::{decode_tuple, ToValue, Value};
use transport::schema::{Signatures, Type, ValueLimits};

/// The wire instance every blobstore call goes to.
pub(crate) const INSTANCE: &str = "wrpc:blobstore/blobstore@0.2.0";

/// Appends a `string`.
pub(crate) fn put_string(buf: &mut BytesMut, s: &str) -> io::Result<()> {
    let len = u32::try_from(s.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name over 4 GiB"))?;
    put_leb_u32(buf, len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// The parameters `(object-id, …)` begin with.
pub(crate) fn object_id(container: &str, object: &str) -> io::Result<BytesMut> {
    let mut buf = BytesMut::new();
    put_string(&mut buf, container)?;
    put_string(&mut buf, object)?;
    Ok(buf)
}

fn malformed(what: impl core::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed results from the extension: {what}"),
    )
}

/// The wire functions, typed by the embedded WIT.
fn signatures() -> &'static Signatures {
    static SIGNATURES: OnceLock<Signatures> = OnceLock::new();
    // The embedded WIT is part of the plugin and parses (tested).
    SIGNATURES.get_or_init(|| Signatures::from_wit(super::WIRE_WIT).unwrap_or_default())
}

/// The one result of `wire_func`, decoded from its synchronous results;
/// its futures and streams are [`Value::Pending`] with their paths.
pub(crate) fn result(wire_func: &str, results: &[u8], limits: &ValueLimits) -> io::Result<Value> {
    let types = &signatures()
        .function(INSTANCE, wire_func)
        .ok_or_else(|| malformed(format!("`{wire_func}` is not in the wire WIT")))?
        .results;
    let (mut values, _) = decode_tuple(types, results, limits, &mut ToValue).map_err(malformed)?;
    values.pop().ok_or_else(|| malformed("no result"))
}

/// `result<_, string>` as the guest's outcome.
pub(crate) fn status(value: Value) -> io::Result<Result<(), String>> {
    match value.into_result() {
        Some(Ok(_)) => Ok(Ok(())),
        Some(Err(Some(why))) => Ok(Err(why.into_string().unwrap_or_default())),
        _ => Err(malformed("a status that is not result<_, string>")),
    }
}

/// The type of the status futures carry.
pub(crate) fn status_type() -> Type {
    Type::Result {
        ok: None,
        err: Some(Box::new(Type::String)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_decode_by_the_wire_wit() {
        let limits = ValueLimits {
            max_list: 16,
            max_bytes: 64,
            max_depth: 8,
        };
        // ok(tuple(stream pending, future pending)): the paths of both.
        let value = result("get-container-data", &[0, 0, 0], &limits).unwrap();
        assert_eq!(
            value,
            Value::Case(
                0,
                Some(Box::new(Value::Items(vec![
                    Value::Pending(vec![0, 0]),
                    Value::Pending(vec![0, 1])
                ])))
            )
        );
        // err("no")
        let value = result("get-container-data", &[1, 2, b'n', b'o'], &limits).unwrap();
        assert_eq!(
            value.into_result(),
            Some(Err(Some(Value::String("no".into()))))
        );
        // ok(ready future with ok)
        let value = result("write-container-data", &[0, 1, 0], &limits).unwrap();
        let Some(Ok(Some(Value::Ready(Some(verdict))))) = value.into_result() else {
            panic!("a ready future")
        };
        assert_eq!(status(*verdict).unwrap(), Ok(()));
        assert!(result("get-container-data", &[7], &limits).is_err());
        assert!(status(Value::Bool(true)).is_err());
    }

    #[test]
    fn object_ids_are_two_strings() {
        let buf = object_id("c", "ob").unwrap();
        assert_eq!(&buf[..], &[1, b'c', 2, b'o', b'b']);
    }
}
