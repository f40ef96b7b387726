//! The protobuf codec of every generated service and client: tonic-prost's, except
//! that bytes which are not a valid message answer INVALID_ARGUMENT.
//!
//! tonic-prost maps a decode error to INTERNAL, following gRPC's status-code
//! table for a library that cannot know who sent the bytes. Here the bytes are the
//! caller's request: random bytes, a wrong wire type or a string that is not UTF-8
//! are the caller's mistake, and a caller told INTERNAL would retry the same bytes
//! and report a server bug. `build.rs` points the generated code here with
//! `codec_path`. On the client side the same codec decodes replies, which our
//! server always encodes validly.

use crate::status::invalid_field;
use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// tonic-prost's codec with INVALID_ARGUMENT for undecodable messages.
#[derive(Debug, Clone)]
pub struct ValidatingCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for ValidatingCodec<T, U> {
    fn default() -> Self {
        ValidatingCodec { inner: ProstCodec::default() }
    }
}

impl<T, U> tonic::codec::Codec for ValidatingCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ValidatingDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ValidatingDecoder { inner: self.inner.decoder() }
    }
}

#[derive(Debug, Clone)]
pub struct ValidatingDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: Message + Default> Decoder for ValidatingDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // Decoded here rather than through the inner decoder, so that the
        // prost error (which names the field) is at hand, not a status to parse.
        U::decode(buf).map(Some).map_err(|error| invalid_message(&error))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// INVALID_ARGUMENT for bytes that are not the message, naming the field prost
/// was reading when it failed (`items.member_id`), or `request` when the bytes
/// broke before any field could be named.
pub fn invalid_message(error: &prost::DecodeError) -> Status {
    let text = error.to_string();
    let field = failing_field(&text).unwrap_or_else(|| "request".to_owned());
    invalid_field(&field, format!("the request is not a valid protobuf message of its type ({text})"))
}

/// prost writes its decode errors as `failed to decode Protobuf message:
/// Inner.field: Outer.field: description`, innermost first; the field names,
/// outermost first and joined by dots, are the path of the field that failed.
fn failing_field(text: &str) -> Option<String> {
    let mut rest = text.strip_prefix("failed to decode Protobuf message: ")?;
    let mut path = Vec::new();
    while let Some((frame, after)) = rest.split_once(": ") {
        let Some((message, field)) = frame.split_once('.') else { break };
        let is_name = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !is_name(message) || !is_name(field) {
            break;
        }
        path.push(field);
        rest = after;
    }
    path.reverse();
    (!path.is_empty()).then(|| path.join("."))
}

#[cfg(test)]
mod tests {
    use super::failing_field;

    #[test]
    fn the_failing_field_is_read_from_prosts_error() {
        let text = "failed to decode Protobuf message: BulkAddItem.member_id: BulkAddPointsRequest.items: \
                    invalid string value: data is not UTF-8 encoded";
        assert_eq!(failing_field(text).as_deref(), Some("items.member_id"));
        let text = "failed to decode Protobuf message: invalid wire type value: 7";
        assert_eq!(failing_field(text), None);
        let text = "failed to decode Protobuf message: AddPointsRequest.points: invalid wire type: \
                    LengthDelimited (expected Varint)";
        assert_eq!(failing_field(text).as_deref(), Some("points"));
    }
}
