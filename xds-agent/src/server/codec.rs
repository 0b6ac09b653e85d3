//! The ADS codec: prost messages, each response's space reserved at its exact encoded length
//! before it is written. tonic writes every response of a stream into one buffer and keeps that
//! buffer, at the largest size it ever grew to, for the stream's life; prost alone grows it by
//! doubling while it writes, so a 300 KB response left 512 KiB behind on every stream. Reserved
//! exactly, what a stream keeps is its largest response. Requests decode as tonic-prost's do.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic_prost::ProstDecoder;

/// Encodes `T` (responses), decodes `U` (requests).
pub struct ExactCodec<T, U>(PhantomData<fn(T) -> U>);

impl<T, U> Default for ExactCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ExactCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ExactEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ExactEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// Reserves a message's encoded length, then encodes it.
pub struct ExactEncoder<T>(PhantomData<fn(T)>);

impl<T: Message> Encoder for ExactEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }
}
