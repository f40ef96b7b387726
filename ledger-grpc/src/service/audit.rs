//! AuditService: activities, the event feed and log verification (SPEC §9).

use super::{Api, blocking};
use crate::auth::{self, Access};
use crate::limits::StreamPermit;
use crate::mapping;
use crate::pb::{self, audit_service_server::AuditService};
use crate::status::{from_ledger, invalid_field};
use ledger_core::limits::FEED_BATCH_EVENTS_MAX;
use ledger_store::Ledger;
use ledger_store::LedgerError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::Semaphore;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub use ledger_core::limits::{
    ACTIVITIES_PAGE_SIZE_DEFAULT as ACTIVITIES_PAGE_DEFAULT, ACTIVITIES_PAGE_SIZE_MAX as ACTIVITIES_PAGE_MAX,
};

#[tonic::async_trait]
impl AuditService for Api {
    async fn list_activities(
        &self,
        request: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ListActivitiesResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let query = mapping::activity_query(request.into_inner())?;
        let page = self.ledger.activities(query).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListActivitiesResponse {
            activities: page.activities.into_iter().map(mapping::activity).collect(),
            next_page_token: page.next_before.map(|before| before.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_activity(&self, request: Request<pb::GetActivityRequest>) -> Result<Response<pb::Activity>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let request = request.into_inner();
        mapping::read_id("reference", &request.reference)?;
        if request.transaction_id == 0 && request.reference.is_empty() {
            return Err(invalid_field("transaction_id", "give a transaction id or a reference"));
        }
        let activity = self
            .ledger
            .activity(&request.program_id, request.transaction_id, &request.reference)
            .await
            .map_err(from_ledger)?;
        Ok(Response::new(mapping::activity(activity)))
    }

    type StreamEventsStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send + 'static>>;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        Ok(Response::new(Box::pin(self.feed(request, false)?)))
    }

    type ReadEventsStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn read_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::ReadEventsStream>, Status> {
        Ok(Response::new(Box::pin(self.feed(request, true)?)))
    }

    async fn verify_log(
        &self,
        request: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<pb::VerifyLogResponse>, Status> {
        auth::check(&self.ledger, &request, Access::AnyToken)?;
        let ledger = self.ledger.clone();
        let report = blocking(move || ledger.verify()).await?.map_err(|error| from_ledger(error.into()))?;
        Ok(Response::new(pb::VerifyLogResponse {
            events: report.events,
            head_hash: report.head_hash,
            ok: report.ok,
            first_mismatch: report.first_mismatch,
        }))
    }
}

impl Api {
    /// The feed a StreamEvents or ReadEvents call asked for; `to_head` ends it at the log's
    /// durable head as of now. A caller that asked for one program cannot tell from the
    /// events it gets when the feed has passed the head (the others' events are not sent),
    /// so the server must end it.
    fn feed(&self, request: Request<pb::StreamEventsRequest>, to_head: bool) -> Result<Feed, Status> {
        let program = request.get_ref().program_id.clone();
        let access = if program.is_empty() { Access::Admin } else { Access::Read(&program) };
        let caller = auth::check(&self.ledger, &request, access)?;
        let permit = self.streams.acquire(&caller.token_id)?;
        let next = request.into_inner().from_sequence.max(1);
        Ok(Feed {
            ledger: self.ledger.clone(),
            reads: Arc::clone(&self.feed_reads),
            program,
            next,
            until: to_head.then(|| self.ledger.durable_sequence()),
            batch: Vec::new().into_iter(),
            reading: None,
            failed: false,
            _permit: permit,
        })
    }
}

/// An event stream: the durable log from `next` on, then the log as it grows,
/// read as its client reads. tonic polls it only when HTTP/2 flow control lets
/// the reply move on, so an idle or slow client costs one batch of at most
/// `FEED_BATCH_EVENTS_MAX` decoded events (besides what its window holds), not a
/// copy of the log, and no task or thread while it waits. It reads from the log
/// rather than a broadcast, so a slow client never loses events: it only falls
/// behind.
struct Feed {
    ledger: Ledger,
    reads: Arc<Semaphore>,
    program: String,
    next: u64,
    /// The last sequence to send (ReadEvents); `None` follows the log for ever.
    until: Option<u64>,
    batch: std::vec::IntoIter<pb::Event>,
    reading: Option<Reading>,
    failed: bool,
    _permit: StreamPermit,
}

/// A feed's read in progress.
type Reading = Pin<Box<dyn Future<Output = Result<Batch, Status>> + Send>>;

/// Events read for a feed, and the sequence to read next.
struct Batch {
    events: Vec<pb::Event>,
    next: u64,
}

impl Stream for Feed {
    type Item = Result<pb::Event, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.batch.next() {
                return Poll::Ready(Some(Ok(event)));
            }
            if this.failed || this.until.is_some_and(|until| this.next > until) {
                return Poll::Ready(None);
            }
            let reading = this.reading.get_or_insert_with(|| {
                let (ledger, reads, program) = (this.ledger.clone(), Arc::clone(&this.reads), this.program.clone());
                Box::pin(read_batch(ledger, reads, program, this.next, this.until))
            });
            let read = std::task::ready!(reading.as_mut().poll(cx));
            this.reading = None;
            match read {
                Ok(batch) => {
                    this.batch = batch.events.into_iter();
                    this.next = batch.next;
                }
                Err(status) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(status)));
                }
            }
        }
    }
}

/// The next events of `program` (every program when empty) from `next` on,
/// waiting until the log has some. Reads happen on a blocking thread, at most
/// `FEED_READS_MAX` feeds at once, one batch at a time. With `until`, reads no
/// further than it and answers an empty batch once past it.
async fn read_batch(
    ledger: Ledger,
    reads: Arc<Semaphore>,
    program: String,
    mut next: u64,
    until: Option<u64>,
) -> Result<Batch, Status> {
    loop {
        if until.is_some_and(|until| next > until) {
            return Ok(Batch { events: Vec::new(), next });
        }
        let durable = until.map_or(ledger.durable_sequence(), |until| until.min(ledger.durable_sequence()));
        if next > durable {
            ledger.wait_beyond(next - 1).await.map_err(from_ledger)?;
            continue;
        }
        let last = durable.min(next + FEED_BATCH_EVENTS_MAX - 1);
        let permit = Arc::clone(&reads)
            .acquire_owned()
            .await
            .map_err(|_| from_ledger(LedgerError::Closed("the server is stopping")))?;
        let reader = ledger.clone();
        let wanted = program.clone();
        let events = super::blocking(move || {
            let _reading = permit;
            reader
                .events(next, last)
                .filter(|event| {
                    event.as_ref().map_or(true, |event| wanted.is_empty() || event.envelope.event.program == wanted)
                })
                .map(|event| event.map(|event| mapping::event(&event)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
        .map_err(|error| from_ledger(error.into()))?;
        next = last + 1;
        // Another program's events only: read on rather than end the stream.
        if !events.is_empty() {
            return Ok(Batch { events, next });
        }
    }
}
