//! AuditService: activities, the event feed and log verification (SPEC §9).

use super::{Api, blocking};
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, audit_service_server::AuditService};
use crate::status::{bad_request, from_ledger};
use ledger_store::Ledger;
use std::pin::Pin;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub use ledger_core::limits::{
    ACTIVITIES_PAGE_SIZE_DEFAULT as ACTIVITIES_PAGE_DEFAULT, ACTIVITIES_PAGE_SIZE_MAX as ACTIVITIES_PAGE_MAX,
};
/// Events a feed reads from the log per step, and buffers toward a slow client.
pub const FEED_BATCH_MAX: u64 = 512;
pub const FEED_BUFFER_MAX: usize = 1_024;

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
            return Err(bad_request("transaction_id", "transaction_id: give a transaction id or a reference"));
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
        let program = request.get_ref().program_id.clone();
        let access = if program.is_empty() { Access::Admin } else { Access::Read(&program) };
        auth::check(&self.ledger, &request, access)?;
        let from = request.into_inner().from_sequence.max(1);
        let (sender, receiver) = tokio::sync::mpsc::channel(FEED_BUFFER_MAX);
        tokio::spawn(feed(self.ledger.clone(), program, from, sender));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
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

/// Sends the durable log from `next` on, then follows it live, until the client
/// goes away. It reads from the log rather than a broadcast, so a slow client
/// never loses events: it only falls behind.
async fn feed(
    ledger: Ledger,
    program: String,
    mut next: u64,
    sender: tokio::sync::mpsc::Sender<Result<pb::Event, Status>>,
) {
    loop {
        let durable = ledger.durable_sequence();
        if next > durable {
            tokio::select! {
                waited = ledger.wait_beyond(next - 1) => if let Err(error) = waited {
                    let _ = sender.send(Err(from_ledger(error))).await;
                    return;
                },
                () = sender.closed() => return,
            }
            continue;
        }
        let last = durable.min(next + FEED_BATCH_MAX - 1);
        let reader = ledger.clone();
        let wanted = program.clone();
        let read = super::blocking(move || {
            reader
                .events(next, last)
                .filter(|event| {
                    event.as_ref().map_or(true, |event| wanted.is_empty() || event.envelope.event.program == wanted)
                })
                .map(|event| event.map(|event| mapping::event(&event)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
        let events = match read {
            Ok(Ok(events)) => events,
            Ok(Err(error)) => {
                let _ = sender.send(Err(from_ledger(error.into()))).await;
                return;
            }
            Err(status) => {
                let _ = sender.send(Err(status)).await;
                return;
            }
        };
        for event in events {
            if sender.send(Ok(event)).await.is_err() {
                return;
            }
        }
        next = last + 1;
    }
}
