// The LLM page's request log: the latest stream requests (filterable by outcome; a row opens its
// details) and the tokens per day as bars. Both refresh themselves while the page is open; the
// "Try it" chat's own requests are marked in the list.

import { call } from "./api.js";
import { formatTime, h, ms, nextId, svg } from "./dom.js";

const REFRESH_MS = 5_000;
const SOON_MS = 1_000;
const LIMIT = 20;
const DAYS = 7;
const CHART_WIDTH = 640;
const CHART_HEIGHT = 100;
const AXIS_HEIGHT = 16;
const OUTCOMES = ["ok", "client_disconnected", "session_revoked", "upstream_timeout", "upstream_server_error",
  "upstream_rate_limited", "upstream_unreachable", "upstream_unauthorized", "gateway_deadline"];

const sleep = (ms_, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms_);
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

function marks(record, own) {
  const list = [];
  if (record.attempts > 1) list.push("retried");
  if (record.hedged) list.push("hedged");
  if (record.continued) list.push("continued");
  if (record.fallbackLlmId) list.push("fallback");
  if (own.has(record.requestId)) list.push("this chat");
  return list;
}

const tokens = (usage) => (usage ? `${usage.inputTokens} in / ${usage.outputTokens} out` : "—");

function details(record) {
  const rows = [
    ["Request ID", record.requestId], ["Session", record.sessionId || "—"], ["Client label", record.clientLabel || "—"],
    ["Outcome", record.outcome], ["HTTP status", String(record.httpStatus ?? "—")],
    ["Upstream status", String(record.upstreamStatus ?? "—")], ["Upstream TTFB", ms(record.upstreamTtfbMs)],
    ["Time to first token", ms(record.ttftMs)], ["Total", ms(record.totalMs)],
    ["Attempts", String(record.attempts)], ["URL that answered", record.urlIndex == null ? "—" : `#${record.urlIndex + 1}`],
    ["Fallback LLM", record.fallbackLlmId || "—"], ["Chunks", String(record.chunks)], ["Tokens", tokens(record.usage)],
  ];
  return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function requestRows(records, own, open) {
  return records.flatMap((record) => {
    const detailsId = nextId("request");
    const expanded = open.has(record.requestId);
    const toggle = h("button", {
      type: "button", class: "link", "aria-expanded": String(expanded), "aria-controls": detailsId,
    }, formatTime(record.at));
    toggle.addEventListener("click", () => {
      if (open.has(record.requestId)) open.delete(record.requestId); else open.add(record.requestId);
      const now = !expanded;
      toggle.setAttribute("aria-expanded", String(now));
      document.getElementById(detailsId).hidden = !now;
    });
    const row = h("tr", { dataset: { requestId: record.requestId } },
      h("td", null, toggle), h("td", null, record.outcome), h("td", null, ms(record.ttftMs)),
      h("td", null, ms(record.totalMs)), h("td", null, tokens(record.usage)),
      h("td", null, marks(record, own).join(", ") || "—"));
    const more = h("tr", { id: detailsId, hidden: !expanded }, h("td", { colspan: 6 }, details(record)));
    return [row, more];
  });
}

/** The region named "Requests"; ``noteOwn(requestId)`` marks a request of this page's chat. */
export function requestsSection({ llmId, signal }) {
  const headingId = nextId("requests");
  const own = new Set();
  const open = new Set();
  const outcome = h("select", { id: nextId("outcome") },
    h("option", { value: "" }, "All outcomes"), ...OUTCOMES.map((o) => h("option", { value: o }, o)));
  const body = h("div", null, h("p", { class: "muted" }, "Loading…"));
  const region = h("section", { class: "panel requests", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Requests"),
    h("p", { class: "muted" }, "The latest stream requests of this LLM: outcome, timings and tokens (never their content)."),
    h("p", null, h("label", { for: outcome.id }, "Outcome "), outcome),
    body);
  let wake = () => {};

  async function refresh() {
    const params = new URLSearchParams({ limit: String(LIMIT) });
    if (outcome.value) params.set("outcome", outcome.value);
    const { data } = await call("GET", `/v1/llms/${encodeURIComponent(llmId)}/requests?${params}`, { signal });
    if (signal.aborted) return;
    body.replaceChildren(data.data.length
      ? h("div", { class: "table-scroll" }, h("table", { "aria-label": "Latest requests" },
        h("thead", null, h("tr", null, ...["Time", "Outcome", "TTFT", "Total", "Tokens", "Marks"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", null, requestRows(data.data, own, open))))
      : h("p", { class: "muted" }, outcome.value ? `No ${outcome.value} requests kept.` : "No requests yet: try the chat below."));
  }

  outcome.addEventListener("change", () => wake());
  (async () => {
    while (!signal.aborted) {
      try { await refresh(); } catch { if (signal.aborted) return; }
      await new Promise((resolve) => {
        wake = resolve;
        sleep(REFRESH_MS, signal).then(resolve);
      });
    }
  })();
  function noteOwn(requestId) {
    if (!requestId) return;
    own.add(requestId);
    // The record arrives with the stream container's next flush: look again soon, a few times.
    (async () => {
      for (let i = 0; i < 15 && !signal.aborted && !body.querySelector(`[data-request-id="${CSS.escape(requestId)}"]`); i += 1) {
        await sleep(SOON_MS, signal);
        wake();
      }
    })();
  }
  return { region, noteOwn };
}

function usageChart(doc) {
  const peak = Math.max(1, ...doc.data.map((d) => d.inputTokens + d.outputTokens));
  const step = CHART_WIDTH / doc.data.length;
  const chart = svg("svg", {
    viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT + AXIS_HEIGHT}`, role: "img",
    "aria-label": `Last ${doc.days} days: ${doc.requests} requests, ${doc.inputTokens} input and ${doc.outputTokens} output tokens.`,
  });
  doc.data.forEach((day, i) => {
    const x = i * step + 2;
    const width = Math.max(1, step - 4);
    const input = (day.inputTokens / peak) * CHART_HEIGHT;
    const output = (day.outputTokens / peak) * CHART_HEIGHT;
    const label = `${day.day}: ${day.inputTokens} input, ${day.outputTokens} output tokens, ${day.requests} requests`;
    if (input) chart.append(svg("rect", { x, y: CHART_HEIGHT - input, width, height: input, class: "bar-requests" }, svg("title", null, label)));
    if (output) chart.append(svg("rect", { x, y: CHART_HEIGHT - input - output, width, height: output, class: "bar-output" }, svg("title", null, label)));
    chart.append(svg("text", { x: x + width / 2, y: CHART_HEIGHT + AXIS_HEIGHT - 3, "text-anchor": "middle" }, day.day.slice(5)));
  });
  return chart;
}

function usageTable(doc) {
  const rows = [...doc.data].reverse().map((d) => h("tr", null,
    h("td", null, d.day), h("td", null, String(d.requests)), h("td", null, String(d.errors)),
    h("td", null, String(d.inputTokens)), h("td", null, String(d.outputTokens)),
    h("td", null, d.ttftP50Ms == null ? "—" : `${ms(d.ttftP50Ms)} / ${ms(d.ttftP95Ms)}`)));
  return h("details", null, h("summary", null, "Usage by day (latest first)"),
    h("div", { class: "table-scroll" }, h("table", null,
      h("thead", null, h("tr", null, ...["Day (UTC)", "Requests", "Errors", "Input tokens", "Output tokens", "TTFT p50 / p95"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, rows))));
}

/** The region named "Usage": tokens per day as bars; refreshes itself while the page is open. */
export function usageSection({ llmId, signal }) {
  const headingId = nextId("usage");
  const region = h("section", { class: "panel usage", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Usage"), h("p", { class: "muted" }, "Loading…"));
  (async () => {
    while (!signal.aborted) {
      try {
        const { data } = await call("GET", `/v1/llms/${encodeURIComponent(llmId)}/usage?days=${DAYS}`, { signal });
        if (!signal.aborted) {
          region.replaceChildren(h("h2", { id: headingId }, "Usage"),
            h("figure", { class: "traffic" }, usageChart(data), h("figcaption", { class: "legend" },
              h("span", { class: "requests" }, "input tokens"), h("span", { class: "output" }, "output tokens"),
              h("span", null, `per UTC day, last ${data.days} days`))),
            usageTable(data));
        }
      } catch {
        if (signal.aborted) return;
      }
      await sleep(REFRESH_MS, signal);
    }
  })();
  return region;
}
