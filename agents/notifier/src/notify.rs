//! Builds the notification and decides whether and how to deliver it.

use crate::http::{parse_url, post_json, resolve, UrlError};
use gantry_agent::{AgentError, Context};
use serde::{Deserialize, Serialize};

/// The secret holding the webhook URL.
pub(crate) const WEBHOOK_SECRET: &str = "SLACK_WEBHOOK_URL";
/// Longest text sent, in characters; chat webhooks reject or cut longer messages.
const MAX_TEXT_CHARS: usize = 3000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Input {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) channel: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<String>,
    pub(crate) sent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<u16>,
}

#[derive(Serialize)]
struct Payload<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
}

/// The message, cut to [`MAX_TEXT_CHARS`], with the run and node it came from when known.
fn format_text(message: &str, ctx: &Context) -> String {
    let message = message.trim();
    let mut text = match message.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    };
    if !ctx.run_id.is_empty() {
        text.push_str(&format!(" (run {}, node {})", ctx.run_id, ctx.node_id));
    }
    text
}

pub(crate) fn notify(input: Input, ctx: &Context) -> Result<Output, AgentError> {
    let text = format_text(&input.message, ctx);
    let channel = input.channel.filter(|c| !c.trim().is_empty());
    let unsent = |note: &str| Output {
        text: text.clone(),
        channel: channel.clone(),
        sent: false,
        note: Some(note.to_owned()),
        status: None,
    };
    if input.message.trim().is_empty() {
        return Ok(unsent("empty message; nothing to send"));
    }
    let Some(webhook) = ctx.secret(WEBHOOK_SECRET) else {
        return Ok(unsent(
            "no SLACK_WEBHOOK_URL secret; message returned as output",
        ));
    };
    let url = match parse_url(&webhook) {
        Ok(url) => url,
        Err(UrlError::Https) => {
            return Ok(unsent(
                "https webhooks are not supported by this agent; message returned as output",
            ))
        }
        Err(UrlError::Invalid) => {
            return Err(AgentError::permanent(
                "SLACK_WEBHOOK_URL is not a valid http URL",
            ))
        }
    };
    let addrs = resolve(&url);
    if addrs.is_empty() {
        return Ok(unsent(
            "webhook host does not resolve; message returned as output",
        ));
    }
    let body = serde_json::to_vec(&Payload {
        text: &text,
        channel: channel.as_deref(),
    })
    .map_err(|e| AgentError::permanent(format!("cannot encode payload: {e}")))?;
    let status = post_json(&url, &addrs, &body, &ctx.idempotency_key).map_err(|e| {
        if e.retryable {
            AgentError::Retryable(e.message)
        } else {
            AgentError::Permanent(e.message)
        }
    })?;
    match status {
        200..=299 => Ok(Output {
            text,
            channel,
            sent: true,
            note: None,
            status: Some(status),
        }),
        408 | 425 | 429 | 500..=599 => {
            Err(AgentError::retryable(format!("webhook answered {status}")))
        }
        _ => Err(AgentError::permanent(format!("webhook answered {status}"))),
    }
}

#[cfg(test)]
mod tests;
