//! Reading an HTTP body whole, for both ends of the gateway: client requests at the
//! front door and upstream answers.
//!
//! Nearly every such body arrives as one frame; it is kept as it came, without a copy.
//! (`http_body_util`'s `collect` first queues the frames, two allocations per body.) A
//! body of several frames is joined once.

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

/// Why [`read_whole`] stopped.
#[derive(Debug)]
pub enum ReadError<E> {
    /// The body grew past the limit; what was read so far is dropped.
    TooLarge,
    /// The body itself failed (the connection broke, bad chunked encoding, ...).
    Body(E),
}

/// The largest buffer made ahead of the data on a declared length's word.
const PREALLOCATE_AT_MOST: usize = 4 << 20;

/// Reads all of `body`'s data (trailers are ignored), refusing more than `limit` bytes.
/// `expected` is the declared length, if any: the buffer for a body of several frames is
/// made that large at once (up to 4 MiB; a peer's claim is not trusted further).
pub async fn read_whole<B>(body: B, limit: usize, expected: Option<usize>) -> Result<Bytes, ReadError<B::Error>>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut body = body;
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ReadError::Body)?.into_data() else { continue };
        let read = first.len() + joined.as_ref().map_or(0, BytesMut::len) + data.len();
        if read > limit {
            return Err(ReadError::TooLarge);
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let ahead = expected.filter(|&length| length <= PREALLOCATE_AT_MOST.min(limit));
                let mut buffer = BytesMut::with_capacity(ahead.unwrap_or(read).max(read));
                buffer.extend_from_slice(&first);
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    fn frames(parts: &[&'static str]) -> impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let frames = parts.iter().map(|p| Ok(http_body::Frame::data(Bytes::from_static(p.as_bytes())))).collect::<Vec<_>>();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_one_frame_body_is_returned_as_it_came() {
        let body = Bytes::from_static(b"{\"a\":1}");
        let read = read_whole(http_body_util::Full::new(body.clone()), 100, None).await.unwrap();
        assert_eq!(read, body);
        assert_eq!(read.as_ptr(), body.as_ptr(), "no copy");
    }

    #[tokio::test]
    async fn frames_are_joined_in_order_and_an_empty_body_is_empty() {
        let read = read_whole(frames(&["ab", "", "cd", "e"]), 100, Some(5)).await.unwrap();
        assert_eq!(&read[..], b"abcde");
        assert!(read_whole(frames(&[]), 100, None).await.unwrap().is_empty());
        assert_eq!(&read_whole(frames(&["", "x"]), 100, None).await.unwrap()[..], b"x");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_and_one_at_the_limit_is_not() {
        assert!(matches!(read_whole(frames(&["abc", "de"]), 4, None).await, Err(ReadError::TooLarge)));
        assert!(matches!(read_whole(frames(&["abcde"]), 4, None).await, Err(ReadError::TooLarge)));
        assert_eq!(&read_whole(frames(&["ab", "cd"]), 4, Some(1_000)).await.unwrap()[..], b"abcd");
    }

    #[tokio::test]
    async fn a_failing_body_reports_its_error() {
        let failing = StreamBody::new(futures_util::stream::iter(vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"ab"))),
            Err("connection reset"),
        ]));
        assert!(matches!(read_whole(failing, 100, None).await, Err(ReadError::Body("connection reset"))));
    }
}
