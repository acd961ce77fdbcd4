//! Cancellation broadcast: a pub/sub subscription that re-subscribes after
//! the connection drops, exposed as an endless stream of run ids.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};

use crate::Result;

type Messages = BoxStream<'static, redis::Msg>;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn open(client: &redis::Client, channel: &str) -> Result<Messages> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message().boxed())
}

struct State {
    client: redis::Client,
    channel: String,
    messages: Option<Messages>,
    backoff: Duration,
}

/// Subscribe now (so a dead Redis is reported to the caller), then keep the
/// subscription alive for as long as the stream is polled.
pub(crate) async fn subscribe(
    client: redis::Client,
    channel: String,
) -> Result<BoxStream<'static, String>> {
    let messages = open(&client, &channel).await?;
    let state = State {
        client,
        channel,
        messages: Some(messages),
        backoff: Duration::from_millis(100),
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(messages) = st.messages.as_mut() {
                match messages.next().await {
                    Some(msg) => match msg.get_payload::<String>() {
                        Ok(run_id) => return Some((run_id, st)),
                        Err(e) => tracing::warn!(error = %e, "ignoring a malformed cancel message"),
                    },
                    None => {
                        tracing::warn!("cancel subscription dropped, re-subscribing");
                        st.messages = None;
                    }
                }
            } else {
                tokio::time::sleep(st.backoff).await;
                match open(&st.client, &st.channel).await {
                    Ok(messages) => {
                        st.messages = Some(messages);
                        st.backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cancel re-subscribe failed");
                        st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    });
    Ok(stream.boxed())
}
