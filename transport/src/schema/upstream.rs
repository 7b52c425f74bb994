//! Test support: values through `wrpc-transport` 0.29's own encoders and
//! decoders (what `wit-bindgen-wrpc` 0.11 generates code against), to check
//! the codec byte-exact against them.

use core::pin::Pin;
use core::task::{Context, Poll};

use bytes::BytesMut;
use tokio_util::codec::{Decoder as _, Encoder as _};
use wrpc_transport::{Decode, Encode};

/// A reader and writer that carry nothing: the synchronous codecs never use it.
pub(crate) struct Null;

impl tokio::io::AsyncWrite for Null {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncRead for Null {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl wrpc_transport::Index<Null> for Null {
    fn index(&self, _: &[usize]) -> anyhow::Result<Null> {
        Ok(Null)
    }
}

/// `v` as wRPC's own encoder writes it.
pub(crate) fn encode<T: Encode<Null>>(v: T) -> Vec<u8>
where
    <T::Encoder as tokio_util::codec::Encoder<T>>::Error: core::fmt::Debug,
{
    let mut buf = BytesMut::new();
    T::Encoder::default()
        .encode(v, &mut buf)
        .expect("upstream encodes");
    buf.to_vec()
}

/// How many bytes wRPC's own decoder takes from `bytes` (`None`: it wants more).
pub(crate) fn decoded_len<T: Decode<Null>>(bytes: &[u8]) -> Result<Option<usize>, String>
where
    <T::Decoder as tokio_util::codec::Decoder>::Error: core::fmt::Debug,
{
    let mut src = BytesMut::from(bytes);
    match T::Decoder::default().decode(&mut src) {
        Ok(Some(_)) => Ok(Some(bytes.len() - src.len())),
        Ok(None) => Ok(None),
        Err(err) => Err(format!("{err:?}")),
    }
}

/// `bytes` as wRPC's own decoder reads them, which must take all of them.
pub(crate) fn decode<T: Decode<Null>>(bytes: &[u8]) -> T
where
    <T::Decoder as tokio_util::codec::Decoder>::Error: core::fmt::Debug,
{
    let mut src = BytesMut::from(bytes);
    let v = T::Decoder::default()
        .decode(&mut src)
        .expect("upstream decodes")
        .expect("a whole value");
    assert!(src.is_empty(), "{} bytes left", src.len());
    v
}
