//! How do HTTP clients speak the proto messages? As the proto3 JSON mapping (lowerCamelCase names, the
//! original names accepted too, timestamps as RFC 3339 strings, enums by name, 64-bit integers as
//! strings), derived by `prost-reflect` from the same file descriptors as gRPC reflection, so the JSON
//! cannot drift from the proto and no message is described twice.

use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};

use super::proto;
use crate::error::{Error, Result};

/// Converts proto messages from and to JSON.
#[derive(Clone, Debug)]
pub struct JsonCodec {
    pool: DescriptorPool,
}

impl JsonCodec {
    /// A codec for the messages of `weitere.v1`.
    pub fn new() -> Self {
        Self {
            pool: DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("the compiled descriptors decode"),
        }
    }

    fn descriptor<M: prost::Name>(&self) -> MessageDescriptor {
        self.pool
            .get_message_by_name(&M::full_name())
            .expect("every generated message is in the descriptor set")
    }

    /// Reads `M` from a JSON request body. Malformed JSON, unknown fields and values of the wrong type are
    /// an [`Error::InvalidArgument`] for the field `body`.
    pub fn decode<M: prost::Message + prost::Name + Default>(&self, json: &[u8]) -> Result<M> {
        let invalid = |reason: String| Error::invalid("body", reason);
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let message = DynamicMessage::deserialize_with_options(
            self.descriptor::<M>(),
            &mut deserializer,
            &DeserializeOptions::new(),
        )
        .map_err(|err| invalid(format!("not a JSON {}: {err}", M::NAME)))?;
        deserializer
            .end()
            .map_err(|err| invalid(format!("trailing characters after the JSON object: {err}")))?;
        message
            .transcode_to::<M>()
            .map_err(|err| invalid(format!("cannot convert to {}: {err}", M::NAME)))
    }

    /// `message` as JSON, fields with default values included (an empty list, a zero score), so that
    /// clients find every field.
    pub fn encode<M: prost::Message + prost::Name>(&self, message: &M) -> Vec<u8> {
        let mut dynamic = DynamicMessage::new(self.descriptor::<M>());
        dynamic
            .transcode_from(message)
            .expect("a generated message matches its own descriptor");
        let mut serializer = serde_json::Serializer::new(Vec::new());
        dynamic
            .serialize_with_options(&mut serializer, &SerializeOptions::new().skip_default_fields(false))
            .expect("serialising to memory does not fail");
        serializer.into_inner()
    }
}

impl Default for JsonCodec {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_accept_camel_case_and_original_names() {
        let codec = JsonCodec::new();
        for json in [
            r#"{"articleId": "a-1", "k": 3, "filter": {"excludeIds": ["b"], "publishedAfter": "2020-01-01T00:00:00Z"}}"#,
            r#"{"article_id": "a-1", "k": 3, "filter": {"exclude_ids": ["b"], "published_after": "2020-01-01T00:00:00Z"}}"#,
        ] {
            let request: proto::RelatedRequest = codec.decode(json.as_bytes()).unwrap();
            assert_eq!(
                request.source,
                Some(proto::related_request::Source::ArticleId("a-1".into()))
            );
            assert_eq!(request.k, 3);
            let filter = request.filter.unwrap();
            assert_eq!(filter.exclude_ids, vec!["b".to_owned()]);
            assert_eq!(filter.published_after.unwrap().seconds, 1_577_836_800);
        }
    }

    #[test]
    fn bad_json_is_an_invalid_body() {
        let codec = JsonCodec::new();
        for json in [r#"{"k": "many"}"#, r#"{"kk": 1}"#, "{", r#"{"k": 1} x"#] {
            let refused = codec.decode::<proto::RelatedRequest>(json.as_bytes()).unwrap_err();
            assert!(
                matches!(refused, Error::InvalidArgument { ref field, .. } if field == "body"),
                "{json}: {refused}"
            );
        }
    }

    #[test]
    fn responses_use_camel_case_and_keep_default_fields() {
        let json = JsonCodec::new().encode(&proto::RelatedResponse {
            stories: vec![proto::RelatedStory {
                id: "a".into(),
                published_at: Some(prost_types::Timestamp {
                    seconds: 1_577_836_800,
                    nanos: 0,
                }),
                ..proto::RelatedStory::default()
            }],
            left_out: Vec::new(),
        });
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let story = &value["stories"][0];
        assert_eq!(story["publishedAt"], "2020-01-01T00:00:00Z");
        assert_eq!(story["sharedTerms"], serde_json::json!([]));
        assert_eq!(story["score"], 0.0);
    }
}
