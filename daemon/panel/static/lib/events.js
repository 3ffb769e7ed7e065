// The event stream, GET /api/v1/events, read with fetch: the browser's EventSource
// cannot send an Authorization header, and a token in the URL would end up in logs.
// The parsing follows the HTML standard's event-stream rules (fields, comments,
// blank line ends an event). The stream opens with a snapshot of every device, so a
// reconnect needs no other call to catch up.

const IDLE_MS = 45000; // the daemon pings every 15 s: three silent pings is a dead link

/** Yield {event, data, id} from a fetch Response's body. */
export async function* parseStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { event: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // a partial line waits for the rest
    for (const line of lines) {
      if (line === "") {
        if (message.data.length) {
          yield { event: message.event, data: message.data.join("\n"), id: message.id };
        }
        message = { event: "message", data: [], id: message.id };
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the keep-alive ping
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") message.event = value;
      else if (field === "data") message.data.push(value);
      else if (field === "id") message.id = value;
    }
  }
}

/**
 * Keep the stream open: `onEvent(type, payload)` for each event, `onStatus("live" |
 * "connecting" | "down")`, `onUnauthorized()` on 401. Reconnects with backoff (1 s
 * doubling to 15 s). Returns a function that closes it for good.
 */
export function openStream(token, { onEvent, onStatus, onUnauthorized }) {
  let closed = false;
  let controller = null;
  let delay = 1000;

  async function once() {
    controller = new AbortController();
    let idle = setTimeout(() => controller.abort(), IDLE_MS);
    const response = await fetch("/api/v1/events", {
      headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
      signal: controller.signal,
      cache: "no-store",
    });
    if (response.status === 401) {
      closed = true;
      onUnauthorized();
      return;
    }
    if (!response.ok) throw new Error(`events: HTTP ${response.status}`);
    for await (const message of parseStream(response.body)) {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), IDLE_MS);
      if (message.event === "snapshot") {
        delay = 1000;
        onStatus("live");
      }
      if (message.event === "lagged") {
        // The daemon dropped events this page was too slow for: what it shows may be
        // stale. A new connection starts with a fresh snapshot.
        controller.abort();
        break;
      }
      onEvent(message.event, JSON.parse(message.data));
    }
    clearTimeout(idle);
  }

  (async () => {
    onStatus("connecting");
    while (!closed) {
      try {
        await once();
      } catch (err) {
        if (closed) break;
      }
      if (closed) break;
      onStatus("down");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  })();

  return () => {
    closed = true;
    controller?.abort();
  };
}
