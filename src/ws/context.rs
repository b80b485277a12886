//! The execution context of a socket actor: actix-web-actors' `WebsocketContext`
//! (same actor life cycle, same decoding of client frames), except for how frames go
//! out. `WebsocketContext` encodes every frame into a fresh buffer for each socket,
//! and actix's HTTP dispatcher then copies that buffer into the connection's write
//! buffer: two copies of each event per console. Here an event's frame is encoded
//! once for every socket ([`text_frame`], by `bus::wire` where the event is made) and
//! handed to the dispatcher as it is, so a console costs one copy (the dispatcher's)
//! and no allocation.
//!
//! As with `WebsocketContext`, the actor runs only while the connection takes output:
//! the body stream polls the actor only once what it queued has been written out, so
//! a client that stops reading stops draining its bus queue (PROTOCOL §7).

use actix::dev::{AsyncContextParts, ContextFut, ContextParts, Mailbox};
use actix::fut::ActorFuture;
use actix::{Actor, ActorContext, ActorState, Addr, AsyncContext, SpawnHandle, StreamHandler};
use actix_http::ws::{CloseReason, Codec, Frame, Message, OpCode, Parser, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_util::codec::{Decoder as _, Encoder as _};

/// A server text frame (unmasked, final) carrying `payload`, header included: what
/// [`WsContext::wire`] sends as is.
pub fn text_frame(payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + 10);
    Parser::write_message(&mut buf, payload, OpCode::Text, true, false);
    buf.freeze()
}

/// The payload of a frame made by [`text_frame`] (for tests and the bench).
pub fn text_payload(frame: &[u8]) -> &[u8] {
    let header = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
        None => return &[],
    };
    frame.get(header..).unwrap_or_default()
}

enum Out {
    /// A frame already encoded ([`text_frame`]), shared with other sockets.
    Wire(Bytes),
    /// A frame for this socket only, encoded when it goes out.
    Message(Message),
}

/// How many frames the connection takes between two calls of the progress hook
/// ([`WsContext::on_progress`]).
const PROGRESS_EVERY: u32 = 32;

/// The context of an actor serving one WebSocket.
pub struct WsContext<A>
where
    A: Actor<Context = WsContext<A>>,
{
    inner: ContextParts<A>,
    out: VecDeque<Out>,
    /// Called as the connection takes frames: the client is reading.
    progress: Option<Box<dyn Fn()>>,
    taken: u32,
}

impl<A> ActorContext for WsContext<A>
where
    A: Actor<Context = Self>,
{
    fn stop(&mut self) {
        self.inner.stop();
    }

    fn terminate(&mut self) {
        self.inner.terminate()
    }

    fn state(&self) -> ActorState {
        self.inner.state()
    }
}

impl<A> AsyncContext<A> for WsContext<A>
where
    A: Actor<Context = Self>,
{
    fn spawn<F>(&mut self, fut: F) -> SpawnHandle
    where
        F: ActorFuture<A, Output = ()> + 'static,
    {
        self.inner.spawn(fut)
    }

    fn wait<F>(&mut self, fut: F)
    where
        F: ActorFuture<A, Output = ()> + 'static,
    {
        self.inner.wait(fut)
    }

    fn waiting(&self) -> bool {
        self.inner.waiting()
            || self.inner.state() == ActorState::Stopping
            || self.inner.state() == ActorState::Stopped
    }

    fn cancel_future(&mut self, handle: SpawnHandle) -> bool {
        self.inner.cancel_future(handle)
    }

    fn address(&self) -> Addr<A> {
        self.inner.address()
    }
}

impl<A> AsyncContextParts<A> for WsContext<A>
where
    A: Actor<Context = Self>,
{
    fn parts(&mut self) -> &mut ContextParts<A> {
        &mut self.inner
    }
}

impl<A> WsContext<A>
where
    A: Actor<Context = Self> + StreamHandler<Result<Message, ProtocolError>>,
{
    /// Runs `actor` on the client's bytes (`payload`, frames of at most `max_frame`
    /// bytes); the returned stream is the response body.
    pub fn create<S>(
        actor: A,
        payload: S,
        max_frame: usize,
    ) -> impl Stream<Item = Result<Bytes, actix_web::Error>>
    where
        S: Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin + 'static,
    {
        let mailbox = Mailbox::default();
        let mut ctx = WsContext {
            inner: ContextParts::new(mailbox.sender_producer()),
            out: VecDeque::new(),
            progress: None,
            taken: 0,
        };
        ctx.add_stream(Incoming {
            payload,
            decoder: Codec::new().max_size(max_frame),
            max_frame,
            buf: BytesMut::new(),
            closed: false,
            failed: false,
        });
        Body {
            fut: ContextFut::new(ctx, actor, mailbox),
            encoder: Codec::new(),
        }
    }
}

impl<A> WsContext<A>
where
    A: Actor<Context = Self>,
{
    /// Calls `hook` every few frames the connection takes from this socket (once per
    /// [`PROGRESS_EVERY`]). The actor itself runs only once what it queued is out, so
    /// while a client works slowly through a long queue (a replay read at a few hundred
    /// frames a second behind megabytes of socket buffers) this is how the socket can
    /// tell it is still being read.
    pub fn on_progress(&mut self, hook: impl Fn() + 'static) {
        self.progress = Some(Box::new(hook));
    }

    /// Counts a frame the connection took.
    fn took_one(&mut self) {
        self.taken += 1;
        if self.taken >= PROGRESS_EVERY {
            self.taken = 0;
            if let Some(hook) = &self.progress {
                hook();
            }
        }
    }

    /// Sends a frame made by [`text_frame`].
    pub fn wire(&mut self, frame: Bytes) {
        self.out.push_back(Out::Wire(frame));
    }

    /// Sends a text frame.
    pub fn text(&mut self, text: impl Into<ByteString>) {
        self.out.push_back(Out::Message(Message::Text(text.into())));
    }

    /// Sends a ping.
    pub fn ping(&mut self, message: &[u8]) {
        self.out
            .push_back(Out::Message(Message::Ping(Bytes::copy_from_slice(message))));
    }

    /// Answers a ping.
    pub fn pong(&mut self, message: &[u8]) {
        self.out
            .push_back(Out::Message(Message::Pong(Bytes::copy_from_slice(message))));
    }

    /// Sends a close frame (the caller stops the actor).
    pub fn close(&mut self, reason: Option<CloseReason>) {
        self.out.push_back(Out::Message(Message::Close(reason)));
    }
}

/// The response body: runs the actor, then hands its frames to the dispatcher one at
/// a time, so that a frame shared by many sockets is never copied into a buffer of
/// this socket's own. The dispatcher polls it until its write buffer is full.
struct Body<A>
where
    A: Actor<Context = WsContext<A>>,
{
    fut: ContextFut<A, WsContext<A>>,
    encoder: Codec,
}

impl<A> Stream for Body<A>
where
    A: Actor<Context = WsContext<A>>,
{
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // The actor runs again once what it queued is out (the dispatcher polls until
        // its buffer is full, then again once the connection took the buffer).
        if this.fut.ctx().out.is_empty() && this.fut.alive() {
            let _ = Pin::new(&mut this.fut).poll(cx);
        }
        loop {
            let ctx = this.fut.ctx();
            let next = ctx.out.pop_front();
            if next.is_some() {
                ctx.took_one();
            }
            return match next {
                // Never an empty chunk: the dispatcher would take it for the body's end.
                Some(Out::Wire(frame)) if frame.is_empty() => continue,
                Some(Out::Wire(frame)) => Poll::Ready(Some(Ok(frame))),
                Some(Out::Message(message)) => {
                    let mut buf = BytesMut::new();
                    this.encoder.encode(message, &mut buf)?;
                    Poll::Ready(Some(Ok(buf.freeze())))
                }
                None if this.fut.alive() => Poll::Pending,
                None => Poll::Ready(None),
            };
        }
    }
}

/// The client's frames, decoded from the request's body (as actix-web-actors does).
/// It holds at most one frame's worth of bytes ahead of the decoder, and refuses a
/// frame whose header declares more than `max_frame` bytes as soon as the header is
/// in, not once its payload has arrived (which could be never).
struct Incoming<S> {
    payload: S,
    decoder: Codec,
    max_frame: usize,
    buf: BytesMut,
    closed: bool,
    /// An error was handed out: the stream ends.
    failed: bool,
}

/// Longest frame header (RFC 6455 §5.2): 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// The payload length declared by the header of the frame at the start of `buf`,
/// once enough of the header is there to tell.
fn declared_len(buf: &[u8]) -> Option<u64> {
    let b = buf.get(..2)?;
    match b[1] & 0x7f {
        126 => buf
            .get(2..4)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as u64),
        127 => buf
            .get(2..10)
            .map(|l| u64::from_be_bytes([l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]])),
        n => Some(n as u64),
    }
}

/// The error for a text frame that is not UTF-8 (RFC 6455 §8.1): the socket closes
/// with 1007 (see `socket.rs`).
fn not_utf8() -> ProtocolError {
    ProtocolError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "text that is not UTF-8",
    ))
}

/// The error for a frame with a reserved bit set: the socket closes with 1002 and this
/// reason (see `socket.rs`).
fn reserved_bits() -> ProtocolError {
    ProtocolError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "a reserved bit is set and no extension was negotiated",
    ))
}

/// The error for a close frame the decoder refused: a reason that is not UTF-8 closes
/// with 1007, like any such text, and a code RFC 6455 §7.4 does not allow with 1002
/// (see `socket.rs`); actix calls both a bad opcode.
fn bad_close(frame: &[u8]) -> ProtocolError {
    match close_payload(frame) {
        Some(p) if p.len() > 2 && std::str::from_utf8(&p[2..]).is_err() => not_utf8(),
        Some(p) if p.len() >= 2 => ProtocolError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "close code {} is not one a client may send (RFC 6455 §7.4)",
                u16::from_be_bytes([p[0], p[1]])
            ),
        )),
        _ => ProtocolError::BadOpCode,
    }
}

/// The unmasked payload of the client's control frame at the start of `frame`: at
/// most 125 bytes after a 2-byte header and the mask.
fn close_payload(frame: &[u8]) -> Option<Vec<u8>> {
    let len = usize::from(frame.get(1)? & 0x7f);
    if frame[1] & 0x80 == 0 || len > 125 {
        return None;
    }
    let mask = frame.get(2..6)?;
    let body = frame.get(6..6 + len)?;
    Some(
        body.iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect(),
    )
}

impl<S> Stream for Incoming<S>
where
    S: Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    type Item = Result<Message, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let res = this.next_frame(cx);
        this.failed = matches!(res, Poll::Ready(Some(Err(_))));
        res
    }
}

impl<S> Incoming<S>
where
    S: Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, ProtocolError>>> {
        loop {
            if declared_len(&self.buf).is_some_and(|n| n > self.max_frame as u64) {
                return Poll::Ready(Some(Err(ProtocolError::Overflow)));
            }
            // A whole frame is in once this much is: decode it before reading more.
            if self.closed || self.buf.len() >= self.max_frame + MAX_HEADER {
                break;
            }
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Poll::Ready(None) => self.closed = true,
                Poll::Pending => break,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(ProtocolError::Io(std::io::Error::other(
                        e.to_string(),
                    )))))
                }
            }
        }
        // No extension is negotiated, so a frame with a reserved bit set breaks the
        // protocol (RFC 6455 §5.2); the buffer always starts at a frame's header.
        if self.buf.first().is_some_and(|b| b & 0x70 != 0) {
            return Poll::Ready(Some(Err(reserved_bits())));
        }
        // A close frame's code and reason are checked by the decoder, which calls
        // either fault a bad opcode: keep the frame to say which (RFC 6455 §7.4, §8.1).
        let close_frame = (self.buf.first().map(|b| b & 0x0f) == Some(0x8))
            .then(|| self.buf[..self.buf.len().min(MAX_HEADER + 125)].to_vec());
        let decoded = self
            .decoder
            .decode(&mut self.buf)
            .map_err(|e| match close_frame {
                Some(frame) if matches!(e, ProtocolError::BadOpCode) => bad_close(&frame),
                _ => e,
            });
        match decoded? {
            None if self.closed => Poll::Ready(None),
            // Not reached: a frame that fits was checked whole above; never wait
            // without a waker.
            None if self.buf.len() >= self.max_frame + MAX_HEADER => {
                Poll::Ready(Some(Err(ProtocolError::Overflow)))
            }
            None => Poll::Pending,
            Some(frame) => Poll::Ready(Some(Ok(match frame {
                Frame::Text(data) => {
                    Message::Text(ByteString::try_from(data).map_err(|_| not_utf8())?)
                }
                Frame::Binary(data) => Message::Binary(data),
                Frame::Ping(p) => Message::Ping(p),
                Frame::Pong(p) => Message::Pong(p),
                Frame::Close(reason) => Message::Close(reason),
                Frame::Continuation(item) => Message::Continuation(item),
            }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header's declared length is read at each of the three widths, and only once
    /// those bytes are in.
    #[test]
    fn a_headers_declared_length_is_read_as_soon_as_it_is_in() {
        assert_eq!(declared_len(&[]), None);
        assert_eq!(declared_len(&[0x81]), None);
        assert_eq!(declared_len(&[0x81, 0x80 | 125]), Some(125));
        assert_eq!(declared_len(&[0x81, 0x80 | 126, 0x01]), None);
        assert_eq!(declared_len(&[0x81, 0x80 | 126, 0x01, 0x00]), Some(256));
        let mut long = vec![0x81, 0x80 | 127];
        long.extend_from_slice(&(1u64 << 62).to_be_bytes());
        assert_eq!(declared_len(&long[..9]), None);
        assert_eq!(declared_len(&long), Some(1 << 62));
    }

    /// A frame encoded once is what the codec would have written for the same text,
    /// at each of the three header lengths, and its payload reads back.
    #[test]
    fn a_shared_frame_is_the_codecs_text_frame() {
        for n in [0, 1, 125, 126, 1000, 65_535, 65_536, 70_000] {
            let text = "é".repeat(n / 2) + &"x".repeat(n % 2);
            let mut expected = BytesMut::new();
            Codec::new()
                .encode(Message::Text(text.clone().into()), &mut expected)
                .unwrap();
            let frame = text_frame(text.as_bytes());
            assert_eq!(&frame[..], &expected[..], "{n} bytes");
            assert_eq!(text_payload(&frame), text.as_bytes());
        }
    }
}
