// A conformance report as a table (one row per check) and the timings of the last reports as bars.

import { badge, formatTime, h, ms, nextId, svg } from "./dom.js";

/** Which URLs continue a prefilled answer (the "continuation" checks): where a cut answer is finished. */
function continuationText(report) {
  const checks = report.checks.filter((c) => c.id === "continuation" || c.id.startsWith("continuation@"));
  if (!checks.length) return "";
  const passed = checks.filter((c) => c.status === "pass").map((c) => {
    const at = c.id.split("@")[1];
    return `urls[${at ? Number(at) - 1 : 0}]`;
  });
  return passed.length
    ? `Continuation: a cut answer is continued on ${passed.join(", ")}.`
    : "Continuation: no URL continues a prefilled answer; a cut answer ends with an error event.";
}

/** The region named "Validation report": summary, then check, category, status, message, hint, evidence. */
export function reportRegion(report, { title = "Validation report", empty = "No report yet." } = {}) {
  const headingId = nextId("report");
  const region = h("section", { "aria-labelledby": headingId, class: "report" }, h("h2", { id: headingId }, title));
  if (!report) {
    region.append(h("p", { class: "muted" }, empty));
    return region;
  }
  const failed = report.checks.filter((c) => c.status === "fail").length;
  const warned = report.checks.filter((c) => c.status === "warn").length;
  region.append(
    h(
      "p",
      null,
      report.compatible ? badge("pass") : badge("fail"),
      " ",
      report.compatible ? "Compatible" : `Not compatible: ${failed} check${failed === 1 ? "" : "s"} failed`,
      warned ? `, ${warned} warning${warned === 1 ? "" : "s"}` : "",
      h("span", { class: "muted" }, ` · checked ${formatTime(report.checkedAt)} · `, h("span", { class: "mono" }, report.endpoint || "")),
    ),
  );
  const rotation = rotationText(report);
  if (rotation) region.append(h("p", { class: `notice ${rotation.ok ? "ok" : "bad"}` }, rotation.text));
  const continuation = continuationText(report);
  if (continuation) region.append(h("p", { class: "muted" }, continuation));
  const rows = report.checks.map((check) =>
    h(
      "tr",
      null,
      h("td", { class: "mono" }, check.id),
      h("td", null, check.category),
      h("td", null, badge(check.status)),
      h("td", { class: "wrap" }, check.message),
      h("td", { class: "wrap" }, check.hint || ""),
      h(
        "td",
        null,
        check.evidence
          ? h("details", null, h("summary", null, "Show evidence"), h("pre", { class: "evidence" }, check.evidence))
          : "",
      ),
    ),
  );
  region.append(
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        null,
        h("thead", null, h("tr", null, ["Check", "Category", "Status", "Message", "Hint", "Evidence"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, rows),
      ),
    ),
  );
  return region;
}

/** What a report says about a key rotation, if it was one. */
export function rotationText(report) {
  const details = report && report.details;
  if (!details || !details.rotation) return null;
  if (details.rotation === "accepted") {
    return { ok: true, text: `New key ${details.secretHint || ""} passed validation and is now in service.` };
  }
  return {
    ok: false,
    text: `New key was refused (${details.reason || "it did not pass validation"}). The previous key stays in service.`,
  };
}

const BAR_HEIGHT = 16;
const ROW_GAP = 12;
const LABEL_WIDTH = 150;
const CHART_WIDTH = 600;
const KINDS = [["ttfbMs", "ttfb", "TTFB"], ["ttftMs", "ttft", "TTFT"], ["totalMs", "total", "Total"]];

/** Bars for TTFB, TTFT and total time of the last reports (newest first). */
export function timingsFigure(reports) {
  const headingId = nextId("timings");
  const figure = h("section", { class: "timings", "aria-labelledby": headingId }, h("h2", { id: headingId }, "Timings"));
  const withTimes = reports.filter((r) => r.timings && r.timings.totalMs != null);
  if (!withTimes.length) {
    figure.append(h("p", { class: "muted" }, "No timings yet."));
    return figure;
  }
  const longest = Math.max(...withTimes.map((r) => Math.max(r.timings.totalMs || 0, r.timings.ttftMs || 0, 1)));
  const scale = (CHART_WIDTH - LABEL_WIDTH - 70) / longest;
  const groupHeight = KINDS.length * BAR_HEIGHT + ROW_GAP;
  const height = withTimes.length * groupHeight + 4;
  const latest = withTimes[0].timings;
  const chart = svg("svg", {
    viewBox: `0 0 ${CHART_WIDTH} ${height}`,
    role: "img",
    "aria-label": `Latest report: TTFB ${ms(latest.ttfbMs)}, TTFT ${ms(latest.ttftMs)}, total ${ms(latest.totalMs)}.`,
  });
  withTimes.forEach((report, index) => {
    const top = index * groupHeight;
    chart.append(svg("text", { x: 0, y: top + BAR_HEIGHT * 2 - 4 }, index === 0 ? "latest" : formatTime(report.checkedAt)));
    KINDS.forEach(([key, cls, label], k) => {
      const value = report.timings[key];
      if (value == null) return;
      const y = top + k * BAR_HEIGHT;
      const width = Math.max(1, value * scale);
      chart.append(
        svg("rect", { x: LABEL_WIDTH, y, width, height: BAR_HEIGHT - 4, class: `bar-${cls}`, rx: 2 },
          svg("title", null, `${label} ${ms(value)}`)),
        svg("text", { x: LABEL_WIDTH + width + 6, y: y + BAR_HEIGHT - 6 }, `${label} ${ms(value)}`),
      );
    });
  });
  figure.append(
    h("div", { class: "legend", "aria-hidden": "true" },
      h("span", { class: "ttfb" }, "time to first byte"), h("span", { class: "ttft" }, "time to first token"), h("span", { class: "total" }, "total")),
    chart,
  );
  return figure;
}
