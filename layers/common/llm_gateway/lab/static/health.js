// The LLM page's health: the state beside the status, the last 15 minutes, and a chart of the
// last 24 hours of real traffic (requests and upstream errors per 5 minutes).

import { call } from "./api.js";
import { badge, formatTime, h, ms, nextId, svg } from "./dom.js";

const HOURS = 24;
const REFRESH_MS = 15_000;
const CHART_WIDTH = 640;
const CHART_HEIGHT = 120;
const AXIS_HEIGHT = 16;

const pct = (rate) => (rate === null || rate === undefined ? "—" : `${Math.round(rate * 100)}%`);

function windowFacts(window) {
  const codes = Object.entries(window.errorsByCode || {}).map(([code, n]) => `${code} × ${n}`).join(", ");
  const rows = [
    ["Requests (15 min)", String(window.requests)],
    ["Upstream errors", window.requests ? `${pct(window.errorRate)}${codes ? ` (${codes})` : ""}` : "—"],
    ["Time to first token", window.ttftP50Ms == null ? "—" : `p50 ${ms(window.ttftP50Ms)}, p95 ${ms(window.ttftP95Ms)}`],
  ];
  // Per URL: attempts that failed even when another URL then answered (the caller waited for them).
  for (const url of window.urls || []) {
    rows.push([`urls[${url.index}]`, `${url.failed} of ${url.attempts} attempts failed, served ${url.served}`]);
  }
  return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

/** Requests per bucket as bars, the upstream errors among them in red, over the whole range. */
function trafficChart(doc) {
  const size = doc.bucketSeconds * 1000;
  const end = Math.floor(Date.now() / size) * size + size;
  const start = end - doc.hours * 3_600_000;
  const columns = Math.round((end - start) / size);
  const buckets = new Map(doc.buckets.map((b) => [Math.floor(Date.parse(b.start) / size), b]));
  const peak = Math.max(1, ...doc.buckets.map((b) => b.requests));
  const step = CHART_WIDTH / columns;
  const total = doc.buckets.reduce((n, b) => n + b.requests, 0);
  const errors = doc.buckets.reduce((n, b) => n + Math.round((b.errorRate || 0) * b.requests), 0);
  const chart = svg("svg", {
    viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT + AXIS_HEIGHT}`,
    role: "img",
    "aria-label": `Last ${doc.hours} hours: ${total} requests, ${errors} upstream errors, at most ${peak === 1 && !total ? 0 : peak} requests in 5 minutes.`,
  });
  for (let i = 0; i < columns; i += 1) {
    const bucket = buckets.get(Math.floor(start / size) + i);
    if (!bucket || !bucket.requests) continue;
    const x = i * step;
    const height = Math.max(1, (bucket.requests / peak) * CHART_HEIGHT);
    const failed = Math.round((bucket.errorRate || 0) * bucket.requests);
    const label = `${formatTime(bucket.start)}: ${bucket.requests} requests, ${failed} upstream errors`;
    chart.append(svg("rect", { x, y: CHART_HEIGHT - height, width: Math.max(1, step - 0.5), height, class: "bar-requests" },
      svg("title", null, label)));
    if (failed) {
      const errorHeight = Math.max(1, (failed / peak) * CHART_HEIGHT);
      chart.append(svg("rect", { x, y: CHART_HEIGHT - errorHeight, width: Math.max(1, step - 0.5), height: errorHeight, class: "bar-errors" },
        svg("title", null, label)));
    }
  }
  for (let hour = 0; hour <= doc.hours; hour += 6) {
    const at = start + hour * 3_600_000;
    const x = ((at - start) / (end - start)) * CHART_WIDTH;
    const text = new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const anchor = hour === 0 ? "start" : hour === doc.hours ? "end" : "middle";
    chart.append(svg("text", { x, y: CHART_HEIGHT + AXIS_HEIGHT - 3, "text-anchor": anchor }, text));
  }
  return chart;
}

function trafficTable(doc) {
  const rows = doc.buckets.slice(-24).reverse().map((b) =>
    h("tr", null, h("td", null, formatTime(b.start)), h("td", null, String(b.requests)), h("td", null, pct(b.errorRate)),
      h("td", null, ms(b.ttftP50Ms)), h("td", null, ms(b.ttftP95Ms))));
  return h("details", null, h("summary", null, "Traffic by 5 minutes (latest first)"),
    h("div", { class: "table-scroll" }, h("table", null,
      h("thead", null, h("tr", null, ...["From", "Requests", "Upstream errors", "TTFT p50", "TTFT p95"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, rows))));
}

function render(region, headingId, doc) {
  region.replaceChildren(
    h("h2", { id: headingId }, "Health"),
    h("p", { class: "health-line" }, "Health: ", badge(doc.state), " ",
      h("span", { class: "muted" }, `since ${formatTime(doc.since)} · last checked ${formatTime(doc.lastCheckedAt)}`)),
    windowFacts(doc.window),
    h("figure", { class: "traffic" },
      trafficChart(doc),
      h("figcaption", { class: "legend" },
        h("span", { class: "requests" }, "requests"), h("span", { class: "errors" }, "upstream errors"),
        h("span", null, `per 5 minutes, last ${doc.hours} hours`))),
    doc.buckets.length ? trafficTable(doc) : h("p", { class: "muted" }, "No traffic in the last 24 hours."),
  );
}

const sleep = (ms_, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms_);
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

/** The region named "Health"; it refreshes itself while the page is open. */
export function healthSection({ llmId, signal }) {
  const headingId = nextId("health");
  const region = h("section", { class: "health", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Health"), h("p", { class: "muted" }, "Loading…"));
  const path = `/v1/llms/${encodeURIComponent(llmId)}/health?hours=${HOURS}`;
  (async () => {
    while (!signal.aborted) {
      try {
        const { data } = await call("GET", path, { signal });
        if (!signal.aborted) render(region, headingId, data);
      } catch {
        if (signal.aborted) return;
      }
      await sleep(REFRESH_MS, signal);
    }
  })();
  return region;
}
