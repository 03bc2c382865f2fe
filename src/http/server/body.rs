//! A deadline on reading a request body.
//!
//! hyper's header-read timeout ends once the head is in; after that a client can send the body
//! a byte at a time and hold the request (and its connection, and a handler task) as long as
//! it likes. tower-http's `RequestBodyTimeoutLayer` does not help: its timer restarts with every
//! frame, so a byte every few seconds never trips it. `DeadlineBody` gives the whole body one
//! deadline, counted from when the head arrived, and records that it fired so the server can
//! answer `408` instead of the handler's generic "could not read the request body".

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a body read gets once its deadline passed.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body not received within {} ms", self.0.as_millis())
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails once `limit` has passed since it was created.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
    /// Set when the deadline fired, shared with the request's caller.
    expired: Arc<AtomicBool>,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, limit: Duration, expired: Arc<AtomicBool>) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep_until(Instant::now() + limit)), limit, expired }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        // Data already here is taken even at the deadline: only waiting is bounded.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    // On tokio's paused clock: `advance` stands for the client's pause between bytes, and the
    // wait for the deadline costs no real time.
    #[tokio::test(start_paused = true)]
    async fn a_body_slower_than_its_deadline_fails_and_says_so() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let stream = tokio_stream_from(rx);
        let expired = Arc::new(AtomicBool::new(false));
        let mut body = DeadlineBody::new(StreamBody::new(stream), Duration::from_millis(300), expired.clone());
        tx.send(Ok(Frame::data(Bytes::from_static(b"{")))).await.unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"{"));
        tokio::time::advance(Duration::from_millis(299)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"\"")))).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok(), "a byte within the deadline is taken");
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("300 ms"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_millis(1), "the deadline counts from the start");
        assert!(expired.load(Ordering::Acquire));
    }

    /// A channel as a stream of frames (no tokio-stream dependency for one test).
    fn tokio_stream_from<T: Send + 'static>(
        rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Unpin + Send {
        Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
    }
}
