//! The LLM's SSE stream: any bytes, decoded as events and applied chunk by chunk, give text,
//! tool calls or an error, never a panic.
#![no_main]
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use plangate::llm::stream::StepAccumulator;

fuzz_target!(|data: &[u8]| {
    let source = futures::stream::iter([Ok::<_, std::convert::Infallible>(
        bytes::Bytes::copy_from_slice(data),
    )]);
    let mut events = eventsource_stream::EventStream::new(source);
    let mut acc = StepAccumulator::default();
    futures::executor::block_on(async {
        while let Some(Ok(event)) = events.next().await {
            if let Ok(chunk) = serde_json::from_str::<serde_json::Value>(event.data.trim()) {
                let _ = acc.apply(&chunk);
            }
        }
    });
    let _ = acc.finish();
});
